import Synchronization
import Testing
import X402

@testable import X402Sidecar

/// The in-process lease store: limits, slots, revocation, renewal, SIWX nonces, paid access.
/// The same behaviour against a real Redis is in X402IntegrationTests/RedisLeaseStoreTests.swift.
@Suite struct LeaseStoreTests {
    static let now: Int64 = 1_767_225_600

    static func claims(
        _ jti: String = Hex.encode(OpenSSL.randomBytes(16), prefix: false),
        payer: String = "0x" + String(repeating: "a", count: 40),
        maxRequests: Int? = nil, maxConcurrent: Int? = nil, expiresAt: Int64 = now + 3600
    ) -> LeaseClaims {
        LeaseClaims(
            payer: payer, host: "api.example.com", routes: ["stream"], jti: jti, issuedAt: now, notBefore: now,
            expiresAt: expiresAt, leaseRoute: "stream-hour", amount: "250000", asset: "0xasset",
            network: "eip155:84532", paymentID: "p", maxRequests: maxRequests, maxConcurrent: maxConcurrent)
    }

    final class Clock: Sendable {
        let value = Atomic<Int64>(LeaseStoreTests.now)
        var read: @Sendable () -> Int64 { { self.value.load(ordering: .relaxed) } }
    }

    @Test func requestLimitCountsExactlyMaxRequests() async throws {
        let store = EmbeddedLeaseStore(now: { Self.now })
        let lease = Self.claims(maxRequests: 3)
        var outcomes: [LeaseAdmission] = []
        for _ in 0..<5 { outcomes.append(try await store.admit(LeaseUse(claims: lease, slot: nil), now: Self.now).value) }
        #expect(
            outcomes == [
                .admitted(requests: 1), .admitted(requests: 2), .admitted(requests: 3),
                .refused(.requestLimit), .refused(.requestLimit),
            ])
        // A lease without limits is neither counted nor stored.
        #expect(
            try await store.admit(LeaseUse(claims: Self.claims(), slot: nil), now: Self.now).value == .admitted(requests: 0))
        #expect(store.recordCount == 1)
    }

    @Test func concurrencySlotsAreHeldReleasedAndExpire() async throws {
        let store = EmbeddedLeaseStore(now: { Self.now })
        let lease = Self.claims(maxConcurrent: 2)
        func admit(_ slot: String?, at time: Int64 = LeaseStoreTests.now) async throws -> LeaseAdmission {
            try await store.admit(LeaseUse(claims: lease, slot: slot, slotExpiresAt: Self.now + 60), now: time).value
        }
        #expect(try await admit("a") == .admitted(requests: 0))
        #expect(try await admit("b") == .admitted(requests: 0))
        #expect(try await admit("c") == .refused(.concurrencyLimit))
        #expect(try await admit("a") == .admitted(requests: 0), "a slot already held is not a second one")
        #expect(try await admit(nil) == .refused(.concurrencyLimit), "a limited lease needs a slot id")
        #expect(try await store.release(jti: lease.jti, slot: "a"))
        #expect(try await !store.release(jti: lease.jti, slot: "a"))
        #expect(try await admit("c") == .admitted(requests: 0))
        // Lost releases: both slots free themselves at slotExpiresAt.
        #expect(try await admit("d", at: Self.now + 59) == .refused(.concurrencyLimit))
        #expect(try await admit("d", at: Self.now + 60) == .admitted(requests: 0))
    }

    @Test func concurrencyRefusalDoesNotCountARequest() async throws {
        let store = EmbeddedLeaseStore(now: { Self.now })
        let lease = Self.claims(maxRequests: 2, maxConcurrent: 1)
        #expect(try await store.admit(LeaseUse(claims: lease, slot: "a"), now: Self.now).value == .admitted(requests: 1))
        #expect(try await store.admit(LeaseUse(claims: lease, slot: "b"), now: Self.now).value == .refused(.concurrencyLimit))
        try await store.release(jti: lease.jti, slot: "a")
        #expect(try await store.admit(LeaseUse(claims: lease, slot: "b"), now: Self.now).value == .admitted(requests: 2))
        try await store.release(jti: lease.jti, slot: "b")
        #expect(try await store.admit(LeaseUse(claims: lease, slot: "c"), now: Self.now).value == .refused(.requestLimit))
        #expect(try await store.release(jti: lease.jti, slot: "c") == false, "a refused request holds no slot")
    }

    @Test func manyTasksAcquiringSlotsExactlyNWin() async throws {
        let store = EmbeddedLeaseStore(now: { Self.now })
        let lease = Self.claims(maxConcurrent: 5)
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await store.admit(LeaseUse(claims: lease, slot: "s\(index)"), now: Self.now).value
                        == .admitted(requests: 0)
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 5)
    }

    @Test func revocationByJtiAndByPayer() async throws {
        let clock = Clock()
        let store = EmbeddedLeaseStore(retentionSeconds: 60, now: clock.read)
        let payer = "0x" + String(repeating: "b", count: 40)
        let one = Self.claims(payer: payer), two = Self.claims(payer: payer), other = Self.claims()
        for lease in [one, two, other] { try await store.register(lease) }
        try await store.revoke(jti: other.jti, expiresAt: other.expiresAt)
        #expect(try await store.admit(LeaseUse(claims: other, slot: nil), now: Self.now).value == .refused(.revoked))
        #expect(try await store.admit(LeaseUse(claims: one, slot: nil), now: Self.now).value == .admitted(requests: 0))
        #expect(try await store.revoke(payer: payer, now: Self.now) == 2)
        for lease in [one, two] {
            #expect(try await store.admit(LeaseUse(claims: lease, slot: nil), now: Self.now).value == .refused(.revoked))
        }
        #expect(try await store.revoke(payer: "0x" + String(repeating: "c", count: 40), now: Self.now) == 0)
        // The revocation is kept until exp + retention, then forgotten with the lease.
        clock.value.store(other.expiresAt + 61, ordering: .relaxed)
        #expect(
            try await store.admit(LeaseUse(claims: other, slot: nil), now: other.expiresAt + 61).value
                == .admitted(requests: 0))
    }

    @Test func renewalSupersedesOnce() async throws {
        let store = EmbeddedLeaseStore(now: { Self.now })
        let old = Self.claims()
        let outcomes = try await withThrowingTaskGroup(of: LeaseRenewal.self) { group in
            for index in 0..<20 {
                group.addTask {
                    try await store.renew(jti: old.jti, successor: "next\(index)", expiresAt: old.expiresAt)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .renewed }.count == 1)
        let successors = Set(outcomes.compactMap { if case .alreadyRenewed(let s) = $0 { s } else { nil } })
        #expect(successors.count == 1 && outcomes.count == 20)
        #expect(try await store.admit(LeaseUse(claims: old, slot: nil), now: Self.now).value == .refused(.revoked))
        let revoked = Self.claims()
        try await store.revoke(jti: revoked.jti, expiresAt: revoked.expiresAt)
        #expect(try await store.renew(jti: revoked.jti, successor: "x", expiresAt: revoked.expiresAt) == .revoked)
    }

    @Test func siwxNonceIsConsumedOnceAndForgottenAfterItsExpiry() async throws {
        let clock = Clock()
        let store = EmbeddedLeaseStore(now: clock.read)
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<100 { group.addTask { try await store.consumeSIWXNonce("n1", expiresAt: Self.now + 300).value } }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
        #expect(try await store.consumeSIWXNonce("n2", expiresAt: Self.now + 300).value)
        clock.value.store(Self.now + 300, ordering: .relaxed)
        #expect(try await store.consumeSIWXNonce("n1", expiresAt: Self.now + 600).value, "an expired record is forgotten")
    }

    @Test func paidAccessIsBoundToPayerRouteHostAndExpires() async throws {
        let store = EmbeddedLeaseStore(now: { Self.now })
        let payer = "0x" + String(repeating: "d", count: 40)
        let access = PaidAccess(
            payer: payer, route: "weather", host: "api.example.com", amount: "10000", asset: "0xAsset",
            network: "eip155:84532", paymentID: "p1", expiresAt: Self.now + 600)
        try await store.recordPaidAccess(access).value
        var shorter = access
        shorter.paymentID = "p0"
        shorter.expiresAt = Self.now + 60
        try await store.recordPaidAccess(shorter).value
        #expect(
            try await store.paidAccess(payer: payer, route: "weather", host: "api.example.com", now: Self.now).value == access
        )
        #expect(try await store.paidAccess(payer: payer, route: "other", host: "api.example.com", now: Self.now).value == nil)
        #expect(
            try await store.paidAccess(payer: payer, route: "weather", host: "evil.example.com", now: Self.now).value == nil)
        #expect(
            try await store.paidAccess(payer: payer, route: "weather", host: "api.example.com", now: Self.now + 600).value
                == nil)
        #expect(access.covers(amount: "10000", asset: "0xasset", network: "eip155:84532", now: Self.now))
        #expect(access.covers(amount: "9999", asset: "0xasset", network: "eip155:84532", now: Self.now))
        #expect(!access.covers(amount: "10001", asset: "0xasset", network: "eip155:84532", now: Self.now))
        #expect(!access.covers(amount: "100000", asset: "0xasset", network: "eip155:84532", now: Self.now))
        #expect(!access.covers(amount: "10000", asset: "0xother", network: "eip155:84532", now: Self.now))
        #expect(!access.covers(amount: "10000", asset: "0xasset", network: "eip155:8453", now: Self.now))
    }
}
