import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Integration tests talk to servers that `deploy/dev/run-tests.sh` starts on loopback and names
/// in the environment. Run alone (`swift test`) without them, they are skipped; with
/// `X402_REQUIRE_INTEGRATION=1` (as `make test` and CI set it) a missing server is a failure.
enum IntegrationEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static var redisURL: String? { environment["X402_TEST_REDIS_URL"] }
    static var required: Bool { environment["X402_REQUIRE_INTEGRATION"] == "1" }

    /// Enabled when Redis is configured, or when it is required (the test then fails loudly).
    static var redisEnabled: Bool { redisURL != nil || required }

    static func requireRedisURL() throws -> String {
        guard let url = redisURL else {
            Issue.record("X402_REQUIRE_INTEGRATION=1 but X402_TEST_REDIS_URL is not set")
            throw MissingServer()
        }
        return url
    }

    struct MissingServer: Error {}

    /// A redis-server of the test's own (`deploy/dev/redis.sh` on a free port, in a temporary
    /// folder), for tests that stop and start it: restarting the shared one would wipe what tests
    /// running beside them keep there (a revocation log, a reservation) in the middle of their checks.
    struct PrivateRedis {
        let script: String
        let directory: String
        let port: Int
        var url: String { "redis://127.0.0.1:\(port)" }

        /// Runs `deploy/dev/redis.sh ACTION DIR PORT`.
        func control(_ action: String) throws {
            // system(3), not Foundation's Process: its waitUntilExit spins a run loop that never
            // finishes on a cooperative-pool thread here. The daemonised redis-server must not inherit
            // the test runner's output pipe either, or `swift test` waits for that pipe to close.
            let status = system("'\(script)' \(action) '\(directory)' \(port) </dev/null >/dev/null 2>&1")
            guard status == 0 else { throw MissingServer() }
        }
    }

    static func withPrivateRedis<T>(_ body: (PrivateRedis) async throws -> T) async throws -> T {
        guard let script = environment["X402_TEST_REDIS_CTL"] else { throw MissingServer() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("x402-redis-\(UUID().uuidString)")
        let redis = PrivateRedis(script: script, directory: directory.path, port: try freePort())
        try redis.control("start")
        defer {
            try? redis.control("stop")
            try? FileManager.default.removeItem(at: directory)
        }
        return try await body(redis)
    }

    /// A loopback port nobody listens on now (bound to port 0, read back, closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MissingServer() }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw MissingServer() }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static var canControlRedis: Bool { environment["X402_TEST_REDIS_CTL"] != nil }
}
