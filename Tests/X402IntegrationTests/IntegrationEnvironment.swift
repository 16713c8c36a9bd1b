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

    /// Runs `deploy/dev/redis.sh ACTION DIR PORT` for restart tests.
    static func redisControl(_ action: String) throws {
        guard let script = environment["X402_TEST_REDIS_CTL"], let dir = environment["X402_TEST_REDIS_DIR"],
            let port = environment["X402_TEST_REDIS_PORT"]
        else { throw MissingServer() }
        // system(3), not Foundation's Process: its waitUntilExit spins a run loop that never
        // finishes on a cooperative-pool thread here. The daemonised redis-server must not inherit
        // the test runner's output pipe either, or `swift test` waits for that pipe to close.
        let status = system("'\(script)' \(action) '\(dir)' \(port) </dev/null >/dev/null 2>&1")
        guard status == 0 else { throw MissingServer() }
    }

    static var canControlRedis: Bool { environment["X402_TEST_REDIS_CTL"] != nil }
}
