import Logging
import NIOCore
import NIOPosix
import Testing
import X402
@testable import X402Sidecar

/// The nonce ledger against a real redis-server (started by deploy/dev/run-tests.sh).
@Suite(.serialized, .enabled(if: IntegrationEnvironment.redisEnabled))
struct RedisNonceLedgerTests {
    static let future = UnixClock.seconds() + 3600

    static func key(_ name: String) -> NonceKey {
        NonceKey(
            network: "eip155:84532", asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            payer: "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a",
            nonce: Hex.encode(Keccak256.hash(Array("\(name)-\(UnixClock.monotonicNanoseconds())".utf8))))
    }

    /// A ledger with its own client and event loops, as a separate sidecar instance would have.
    static func withLedger<T>(
        url: String? = nil, _ body: (RedisNonceLedger) async throws -> T
    ) async throws -> T {
        let url = try url ?? IntegrationEnvironment.requireRedisURL()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let client = RedisClient(configuration: try .init(url: url), group: group, logger: Logger(label: "test"))
        let ledger = RedisNonceLedger(client: client, keyPrefix: "x402test")
        do {
            let result = try await body(ledger)
            await client.close()
            try await group.shutdownGracefully()
            return result
        } catch {
            await client.close()
            try await group.shutdownGracefully()
            throw error
        }
    }

    @Test func twoInstances200ConcurrentReservationsOneWinner() async throws {
        let key = Self.key("contended")
        let wins = try await Self.withLedger { first in
            try await Self.withLedger { second in
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<200 {
                        let ledger = index.isMultiple(of: 2) ? first : second
                        group.addTask { try await ledger.reserve(key, token: "t\(index)", expiresAt: Self.future).value }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
            }
        }
        #expect(wins == 1)
    }

    @Test func ownerOnlySettleAndRelease() async throws {
        try await Self.withLedger { ledger in
            let key = Self.key("owner")
            #expect(try await ledger.reserve(key, token: "a", expiresAt: Self.future).value)
            #expect(try await !ledger.reserve(key, token: "b", expiresAt: Self.future).value)
            #expect(try await !ledger.release(key, token: "b"))
            #expect(try await !ledger.markSettled(key, token: "b", transaction: "0xabc"))
            #expect(try await ledger.record(key) == NonceRecord(state: .reserved, token: "a", expiresAt: Self.future))
            #expect(try await ledger.release(key, token: "a"))
            #expect(try await ledger.record(key) == nil)
            #expect(try await ledger.reserve(key, token: "c", expiresAt: Self.future).value)
            #expect(try await ledger.markSettled(key, token: "c", transaction: "0xabc"))
            #expect(
                try await ledger.record(key)
                    == NonceRecord(state: .settled, token: "c", expiresAt: Self.future, transaction: "0xabc"))
            #expect(try await !ledger.release(key, token: "c"))
            #expect(try await !ledger.markSettled(key, token: "c", transaction: "0xdef"))
            #expect(try await !ledger.reserve(key, token: "d", expiresAt: Self.future).value)
            // The key carries the whole identity in its hash tag and expires with the authorization.
            let ttl = try await ledger.client.send(["TTL", ledger.redisKey(key)])
            guard case .integer(let seconds) = ttl else {
                Issue.record("TTL answered \(ttl)")
                return
            }
            #expect(seconds > 3500 && seconds <= 3600)
            #expect(ledger.redisKey(key).hasPrefix("x402test:nonce:{eip155:84532|"))
        }
    }

    @Test func reservationsExpireWithTheAuthorization() async throws {
        try await Self.withLedger { ledger in
            let key = Self.key("expiry")
            #expect(try await ledger.reserve(key, token: "a", expiresAt: UnixClock.seconds() + 1).value)
            try await Task.sleep(for: .milliseconds(2100))
            #expect(try await ledger.record(key) == nil)
            #expect(try await ledger.reserve(key, token: "b", expiresAt: Self.future).value)
        }
    }

    @Test func pipelinedCommandsReachTheirCallers() async throws {
        try await Self.withLedger { ledger in
            let replies = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for index in 0..<1000 {
                    group.addTask { (index, try await ledger.client.send(["ECHO", "m\(index)"]).string) }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            #expect(replies.count == 1000)
            #expect(replies.allSatisfy { $0.value == "m\($0.key)" })
        }
    }

    @Test func scriptsReloadAfterScriptFlush() async throws {
        try await Self.withLedger { ledger in
            let key = Self.key("noscript")
            #expect(try await ledger.reserve(key, token: "a", expiresAt: Self.future).value)
            _ = try await ledger.client.send(["SCRIPT", "FLUSH"])
            #expect(try await ledger.release(key, token: "a"))
        }
    }

    @Test(.enabled(if: IntegrationEnvironment.canControlRedis))
    func reconnectsAfterARedisRestartAndFailsClosedMeanwhile() async throws {
        try await IntegrationEnvironment.withPrivateRedis { redis in try await Self.withLedger(url: redis.url) { ledger in
            let key = Self.key("restart")
            #expect(try await ledger.reserve(key, token: "a", expiresAt: Self.future).value)
            try redis.control("stop")
            await #expect(throws: (any Error).self) { try await ledger.reserve(Self.key("down"), token: "x", expiresAt: Self.future).value }
            await #expect(throws: (any Error).self) { try await ledger.checkReady() }
            try redis.control("start")
            // Backoff is at most a few seconds; the client reconnects by itself.
            var ready = false
            for _ in 0..<100 where !ready {
                ready = (try? await ledger.checkReady()) != nil
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(ready)
            #expect(try await ledger.reserve(Self.key("after"), token: "b", expiresAt: Self.future).value)
        } }
    }
}

@Suite struct RedisURLTests {
    @Test func parsesTheForms() throws {
        let plain = try RedisClient.Configuration(url: "redis://127.0.0.1:6390/2")
        #expect(plain.endpoint == .tcp(host: "127.0.0.1", port: 6390))
        #expect(plain.database == 2)
        let auth = try RedisClient.Configuration(url: "redis://user:p%40ss:w@redis.internal")
        #expect(auth.username == "user")
        #expect(auth.password == "p%40ss:w")
        #expect(auth.endpoint == .tcp(host: "redis.internal", port: 6379))
        let passwordOnly = try RedisClient.Configuration(url: "redis://:secret@[::1]:6400")
        #expect(passwordOnly.username == nil)
        #expect(passwordOnly.password == "secret")
        #expect(passwordOnly.endpoint == .tcp(host: "::1", port: 6400))
        let unix = try RedisClient.Configuration(url: "unix:///run/redis/redis.sock?db=3")
        #expect(unix.endpoint == .unix(path: "/run/redis/redis.sock"))
        #expect(unix.database == 3)
        for bad in ["rediss://h", "http://h", "redis://", "redis://h:0", "redis://h:x", "redis://h/db", "unix://rel"] {
            #expect(throws: RedisClientError.self) { try RedisClient.Configuration(url: bad) }
        }
    }

    @Test func encodesCommandsAndParsesRepliesInPieces() throws {
        #expect(String(decoding: RESPEncoder.encode(["SET", "k", "a b"]), as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n")
        let reader = RESPReader()
        let stream = "+OK\r\n-ERR no\r\n:42\r\n$-1\r\n$3\r\nabc\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n*-1\r\n"
        var replies: [RedisValue] = []
        for byte in Array(stream.utf8) {
            try [byte].withUnsafeBytes { try reader.feed($0) }
            while let reply = try reader.next() { replies.append(reply) }
        }
        #expect(replies == [
            .simple("OK"), .error("ERR no"), .integer(42), .bulk(nil), .bulk(Array("abc".utf8)),
            // hiredis 0.14 reports the null array (*-1) as NIL, like the null bulk string.
            .array([.array([.integer(1)]), .bulk([])]), .bulk(nil),
        ])
        let broken = RESPReader()
        try Array("?what\r\n".utf8).withUnsafeBytes { try broken.feed($0) }
        #expect(throws: (any Error).self) { try broken.next() }
    }
}

/// The Redis queue keeps a job that does not decode aside instead of claiming it forever.
@Suite(.serialized, .enabled(if: IntegrationEnvironment.redisEnabled))
struct RedisSettlementQueueTests {
    @Test func anUndecodableJobIsQuarantinedAndCounted() async throws {
        let url = try IntegrationEnvironment.requireRedisURL()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RedisClient(configuration: try .init(url: url), group: group, logger: Logger(label: "test"))
        let prefix = "x402q\(UnixClock.monotonicNanoseconds())"
        let queue = RedisSettlementQueue(client: client, keyPrefix: prefix)
        let base = "\(prefix):settle:{q}"
        _ = try await client.send(["HSET", base + ":jobs", "bad-1", "{\"id\":\"bad-1\"}"])
        _ = try await client.send(["ZADD", base + ":due", "0", "bad-1"])
        #expect(try await queue.claim(now: 10, limit: 16, lease: 60).isEmpty)
        #expect(queue.undecodableJobs == 1)
        let kept = try await client.send(["HGET", base + ":undecodable", "bad-1"]).string
        #expect(kept?.hasPrefix("missing or invalid field authorization\t{") == true)
        #expect(try await client.send(["ZCARD", base + ":due"]) == .integer(0))
        // Claimed again: nothing, and nothing counted twice.
        #expect(try await queue.claim(now: 20, limit: 16, lease: 60).isEmpty)
        #expect(queue.undecodableJobs == 1)
        await client.close()
        try await group.shutdownGracefully()
    }
}
