import Logging
import NIOCore
import NIOPosix
import Testing
import X402

@testable import X402Sidecar

/// Each sidecar's mirror of the lease revocations against a real redis-server: leases without
/// counters are admitted in place while the mirror is fresh, and a revocation is in force on every
/// instance once `revoke` has returned.
@Suite(.serialized, .enabled(if: IntegrationEnvironment.redisEnabled))
struct RevocationMirrorTests {
    static let now = UnixClock.seconds()

    /// Two instances on one Redis, each with its own client, store and running mirror.
    static func withInstances<T>(
        prefix: String = "x402mirror\(UInt32.random(in: 0...UInt32.max))",
        _ body: (_ first: RedisLeaseStore, _ second: RedisLeaseStore, _ client: RedisClient) async throws -> T
    ) async throws -> T {
        let url = try IntegrationEnvironment.requireRedisURL()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let clients = try (0..<2).map { _ in
            RedisClient(configuration: try .init(url: url), group: group, logger: Logger(label: "test"))
        }
        let stores = clients.map { client in
            RedisLeaseStore(
                client: client, keyPrefix: prefix, retentionSeconds: 60,
                mirror: RevocationMirror(client: client, keyPrefix: prefix))
        }
        let mirrors = stores.map { store in Task { try await store.mirror!.run() } }
        defer { mirrors.forEach { $0.cancel() } }
        for store in stores { try await waitUntilInPlace(store) }
        let result: Result<T, any Error>
        do { result = .success(try await body(stores[0], stores[1], clients[0])) } catch { result = .failure(error) }
        mirrors.forEach { $0.cancel() }
        for task in mirrors { _ = await task.result }
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
        return try result.get()
    }

    static func claims(maxRequests: Int? = nil) -> LeaseClaims {
        LeaseClaims(
            payer: Hex.encode(OpenSSL.randomBytes(20)), host: "api.example.com", routes: ["stream"],
            jti: Hex.encode(OpenSSL.randomBytes(16), prefix: false), issuedAt: now, notBefore: now,
            expiresAt: now + 3600, leaseRoute: "stream-hour", amount: "250000", asset: "0xasset",
            network: "eip155:84532", paymentID: "p", maxRequests: maxRequests)
    }

    /// What admit answers without awaiting anything, or nil when it needs a round trip.
    static func inPlace(_ store: RedisLeaseStore, _ lease: LeaseClaims) -> LeaseAdmission? {
        guard case .ready(let result) = store.admit(LeaseUse(claims: lease, slot: nil), now: now) else { return nil }
        return try? result.get()
    }

    static func waitUntilInPlace(_ store: RedisLeaseStore) async throws {
        for _ in 0..<100 {
            if inPlace(store, claims()) != nil { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the mirror never became fresh")
    }

    @Test func revocationIsInForceOnTheOtherInstanceOnceRevokeReturns() async throws {
        try await Self.withInstances { first, second, _ in
            let lease = Self.claims()
            #expect(Self.inPlace(second, lease) == .admitted(requests: 0))
            let started = ContinuousClock.now
            try await first.revoke(jti: lease.jti, expiresAt: lease.expiresAt)
            // revoke waits out the mirrors' staleness bound, and not much longer.
            #expect(started.duration(to: .now) >= first.mirror!.staleness)
            #expect(Self.inPlace(second, lease) == .refused(.revoked))
            #expect(Self.inPlace(first, lease) == .refused(.revoked))
            // A lease with counters still asks Redis, which agrees.
            var counted = lease
            counted.maxRequests = 5
            let use = LeaseUse(claims: counted, slot: nil)
            guard case .suspending = second.admit(use, now: Self.now) else {
                Issue.record("a lease with counters was admitted without Redis")
                return
            }
            #expect(try await second.admit(use, now: Self.now).value == .refused(.revoked))
        }
    }

    @Test func revocationByPayerAndRenewalReachTheMirrors() async throws {
        try await Self.withInstances { first, second, _ in
            var one = Self.claims(), two = Self.claims()
            two.payer = one.payer
            let renewed = Self.claims()
            for lease in [one, two, renewed] { try await first.register(lease) }
            #expect(try await first.revoke(payer: one.payer, now: Self.now) == 2)
            #expect(Self.inPlace(second, one) == .refused(.revoked))
            #expect(Self.inPlace(second, two) == .refused(.revoked))
            #expect(try await first.renew(jti: renewed.jti, successor: "next", expiresAt: renewed.expiresAt) == .renewed)
            try await Task.sleep(for: first.mirror!.staleness)
            #expect(Self.inPlace(second, renewed) == .refused(.revoked))
            one.jti = Hex.encode(OpenSSL.randomBytes(16), prefix: false)
            #expect(Self.inPlace(second, one) == .admitted(requests: 0))
        }
    }

    @Test func aMirrorThatIsNotPollingSendsAdmitsToRedis() async throws {
        let url = try IntegrationEnvironment.requireRedisURL()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RedisClient(configuration: try .init(url: url), group: group, logger: Logger(label: "test"))
        let mirror = RevocationMirror(client: client, keyPrefix: "x402mirror-idle", staleness: .milliseconds(200))
        let store = RedisLeaseStore(client: client, keyPrefix: "x402mirror-idle", mirror: mirror)
        let lease = Self.claims()
        #expect(Self.inPlace(store, lease) == nil)  // never polled
        try await mirror.refresh(now: Self.now)
        #expect(Self.inPlace(store, lease) == .admitted(requests: 0))
        try await Task.sleep(for: .milliseconds(250))
        #expect(Self.inPlace(store, lease) == nil)  // too old to trust
        #expect(try await store.admit(LeaseUse(claims: lease, slot: nil), now: Self.now).value == .admitted(requests: 0))
        await client.close()
        try await group.shutdownGracefully()
    }

    @Test func aMirrorStartsAgainWhenRedisLostTheLog() async throws {
        try await Self.withInstances { first, second, client in
            let before = Self.claims(), after = Self.claims()
            try await first.revoke(jti: before.jti, expiresAt: before.expiresAt)
            #expect(Self.inPlace(second, before) == .refused(.revoked))
            // As a flush would: the log and its counter are gone; the next revocation is number 1.
            let (sequence, log) = RevocationMirror.keys(prefix: first.keyPrefix)
            _ = try await client.send(["DEL", sequence, log])
            try await first.revoke(jti: after.jti, expiresAt: after.expiresAt)
            for _ in 0..<50 where Self.inPlace(second, after) != .refused(.revoked) {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(Self.inPlace(second, after) == .refused(.revoked))
        }
    }
}
