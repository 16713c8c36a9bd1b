import Logging
import NIOCore
import NIOPosix
import Testing
import X402

@testable import X402Sidecar

/// The lease store against a real redis-server (started by deploy/dev/run-tests.sh), with two
/// clients standing for two sidecars where it matters.
@Suite(.serialized, .enabled(if: IntegrationEnvironment.redisEnabled))
struct RedisLeaseStoreTests {
    static let now = UnixClock.seconds()

    static func claims(payer: String = randomPayer(), maxRequests: Int? = nil, maxConcurrent: Int? = nil) -> LeaseClaims
    {
        LeaseClaims(
            payer: payer, host: "api.example.com", routes: ["stream"],
            jti: Hex.encode(OpenSSL.randomBytes(16), prefix: false), issuedAt: now, notBefore: now,
            expiresAt: now + 3600, leaseRoute: "stream-hour", amount: "250000", asset: "0xasset",
            network: "eip155:84532", paymentID: "p", maxRequests: maxRequests, maxConcurrent: maxConcurrent)
    }

    static func randomPayer() -> String { Hex.encode(OpenSSL.randomBytes(20)) }

    /// A store with its own client and event loops, as a separate sidecar instance would have.
    static func withStore<T>(_ body: (RedisLeaseStore, RedisClient) async throws -> T) async throws -> T {
        let url = try IntegrationEnvironment.requireRedisURL()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let client = RedisClient(configuration: try .init(url: url), group: group, logger: Logger(label: "test"))
        let store = RedisLeaseStore(client: client, keyPrefix: "x402test", retentionSeconds: 60)
        do {
            let result = try await body(store, client)
            await client.close()
            try await group.shutdownGracefully()
            return result
        } catch {
            await client.close()
            try await group.shutdownGracefully()
            throw error
        }
    }

    @Test func twoInstances200ConcurrentAcquisitionsExactlyMaxConcurrentWin() async throws {
        let lease = Self.claims(maxConcurrent: 7)
        let wins = try await Self.withStore { first, _ in
            try await Self.withStore { second, _ in
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<200 {
                        let store = index.isMultiple(of: 2) ? first : second
                        group.addTask {
                            try await store.admit(LeaseUse(claims: lease, slot: "s\(index)"), now: Self.now).value
                                == .admitted(requests: 0)
                        }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
            }
        }
        #expect(wins == 7)
    }

    @Test func twoInstancesCountExactlyMaxRequests() async throws {
        let lease = Self.claims(maxRequests: 25)
        let numbers = try await Self.withStore { first, _ in
            try await Self.withStore { second, _ in
                try await withThrowingTaskGroup(of: Int?.self) { group in
                    for index in 0..<100 {
                        let store = index.isMultiple(of: 2) ? first : second
                        group.addTask {
                            if case .admitted(let n) = try await store.admit(
                                LeaseUse(claims: lease, slot: nil), now: Self.now).value
                            {
                                return n
                            }
                            return nil
                        }
                    }
                    return try await group.reduce(into: [Int]()) { if let n = $1 { $0.append(n) } }
                }
            }
        }
        #expect(numbers.sorted() == Array(1...25))
    }

    @Test func slotsReleaseAndExpireAndKeysCarryTTLs() async throws {
        try await Self.withStore { store, client in
            let lease = Self.claims(maxRequests: 10, maxConcurrent: 1)
            let use = LeaseUse(claims: lease, slot: "a", slotExpiresAt: Self.now + 30)
            #expect(try await store.admit(use, now: Self.now).value == .admitted(requests: 1))
            var other = use
            other.slot = "b"
            #expect(try await store.admit(other, now: Self.now).value == .refused(.concurrencyLimit))
            #expect(
                try await store.admit(other, now: Self.now + 30).value == .admitted(requests: 2), "a lost release expires")
            for key in [store.leaseKey(lease.jti), store.slotsKey(lease.jti)] {
                guard case .integer(let ttl) = try await client.send(["TTL", key]) else {
                    throw RedisClientError(code: .protocolError, message: "TTL")
                }
                #expect(ttl > 3600 && ttl <= 3660, "\(key): \(ttl)")
            }
            #expect(try await store.release(jti: lease.jti, slot: "b"))
            #expect(try await !store.release(jti: lease.jti, slot: "b"))
            // The last slot gone, Redis drops the set itself.
            #expect(try await client.send(["EXISTS", store.slotsKey(lease.jti)]) == .integer(0))
        }
    }

    @Test func revocationByJtiAndPayerAcrossInstances() async throws {
        try await Self.withStore { first, client in
            try await Self.withStore { second, _ in
                let payer = Self.randomPayer()
                let one = Self.claims(payer: payer), two = Self.claims(payer: payer, maxRequests: 5),
                    other = Self.claims()
                for lease in [one, two, other] { try await first.register(lease) }
                try await first.revoke(jti: other.jti, expiresAt: other.expiresAt)
                #expect(try await second.admit(LeaseUse(claims: other, slot: nil), now: Self.now).value == .refused(.revoked))
                #expect(
                    try await second.admit(LeaseUse(claims: two, slot: nil), now: Self.now).value == .admitted(requests: 1))
                #expect(try await second.revoke(payer: payer, now: Self.now) == 2)
                for lease in [one, two] {
                    #expect(
                        try await first.admit(LeaseUse(claims: lease, slot: nil), now: Self.now).value == .refused(.revoked))
                }
                guard case .integer(let ttl) = try await client.send(["TTL", first.leaseKey(one.jti)]) else {
                    throw RedisClientError(code: .protocolError, message: "TTL")
                }
                #expect(ttl > 3600 && ttl <= 3660)
            }
        }
    }

    /// ZRANGEBYSCORE answers `*0` for a payer without leases; it was read as a null array and the
    /// revocation failed (found by fuzz-redis-reply; see RESPReaderTests).
    @Test func revokingAPayerWithoutLeasesRevokesNothing() async throws {
        let revoked = try await Self.withStore { store, _ in
            try await store.revoke(payer: Self.randomPayer(), now: Self.now)
        }
        #expect(revoked == 0)
    }

    @Test func concurrentRenewalsOneWins() async throws {
        let old = Self.claims()
        let outcomes = try await Self.withStore { first, _ in
            try await Self.withStore { second, _ in
                try await withThrowingTaskGroup(of: LeaseRenewal.self) { group in
                    for index in 0..<20 {
                        let store = index.isMultiple(of: 2) ? first : second
                        group.addTask {
                            try await store.renew(jti: old.jti, successor: "next\(index)", expiresAt: old.expiresAt)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
        }
        #expect(outcomes.filter { $0 == .renewed }.count == 1)
        let successors = Set(outcomes.compactMap { if case .alreadyRenewed(let s) = $0 { s } else { nil } })
        #expect(successors.count == 1 && successors.first!.hasPrefix("next"))
        try await Self.withStore { store, _ in
            #expect(try await store.admit(LeaseUse(claims: old, slot: nil), now: Self.now).value == .refused(.revoked))
            let revoked = Self.claims()
            try await store.revoke(jti: revoked.jti, expiresAt: revoked.expiresAt)
            #expect(try await store.renew(jti: revoked.jti, successor: "x", expiresAt: revoked.expiresAt) == .revoked)
        }
    }

    @Test func siwxNonceConsumedOnceAcrossInstances() async throws {
        let nonce = Hex.encode(OpenSSL.randomBytes(16), prefix: false)
        let wins = try await Self.withStore { first, _ in
            try await Self.withStore { second, _ in
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<100 {
                        let store = index.isMultiple(of: 2) ? first : second
                        group.addTask { try await store.consumeSIWXNonce(nonce, expiresAt: Self.now + 300).value }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
            }
        }
        #expect(wins == 1)
    }

    @Test func paidAccessKeepsTheLongerRecordAndExpires() async throws {
        try await Self.withStore { store, client in
            let payer = Self.randomPayer()
            let access = PaidAccess(
                payer: payer, route: "weather", host: "api.example.com", amount: "10000", asset: "0xasset",
                network: "eip155:84532", paymentID: "p1", expiresAt: Self.now + 600)
            try await store.recordPaidAccess(access).value
            var shorter = access
            shorter.paymentID = "p0"
            shorter.expiresAt = Self.now + 60
            try await store.recordPaidAccess(shorter).value
            #expect(
                try await store.paidAccess(payer: payer, route: "weather", host: "api.example.com", now: Self.now).value
                    == access)
            #expect(
                try await store.paidAccess(payer: payer, route: "weather", host: "other.example.com", now: Self.now).value
                    == nil)
            #expect(
                try await store.paidAccess(payer: payer, route: "weather", host: "api.example.com", now: Self.now + 600).value
                    == nil)
            guard
                case .integer(let ttl) = try await client.send([
                    "TTL", store.paidKey(payer, "weather", "api.example.com"),
                ])
            else {
                throw RedisClientError(code: .protocolError, message: "TTL")
            }
            #expect(ttl > 590 && ttl <= 600)
        }
    }
}
