import Synchronization
import X402

/// One rate-limit check: a rule applied to one client key.
public struct RateCheck: Sendable, Equatable {
    /// The store key (already hash-tagged and prefixed by the limiter).
    public var key: String
    public var rule: RateRule
}

/// Where GCRA state lives. Each check is decided atomically on its own key (refused requests do
/// not advance it); a decision with several rules sends them together.
public protocol RateLimiter: Sendable {
    /// In-process limiters answer in place (`.ready`); shared ones suspend.
    func check(_ checks: [RateCheck]) -> StoreAnswer<[GCRA.Outcome]>
    /// Takes one call from a free quota of `limit` per `windowSeconds` (the window starts at the
    /// key's first use). Returns the calls left after this one, or nil when the quota is used up.
    func takeFree(key: String, limit: Int, windowSeconds: Int64) -> StoreAnswer<Int?>
    /// The stored TAT (µs) of a GCRA key, or a free quota's count; nil when absent.
    func inspect(key: String) async throws -> Int64?
    /// Forgets a key (GCRA state or free quota). Returns whether it existed.
    func reset(key: String) async throws -> Bool
    func checkReady() async throws
}

/// In-process limits with the same arithmetic, for one host (the embedded store).
public final class EmbeddedRateLimiter: RateLimiter {
    private struct State {
        var tats: [String: Int64] = [:]
        var free: [String: (count: Int, until: Int64)] = [:]
        var operations = 0
    }
    private let state = Mutex(State())
    let now: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> Int64 = { UnixClock.microseconds() }) {
        self.now = now
    }

    public func check(_ checks: [RateCheck]) -> StoreAnswer<[GCRA.Outcome]> {
        let time = now()
        return .ready(.success(state.withLock { state in
            state.operations += 1
            if state.operations % 65536 == 0 { state.tats = state.tats.filter { $0.value > time } }
            return checks.map { check in
                let outcome = GCRA.decide(tat: state.tats[check.key], now: time, rule: check.rule)
                if outcome.allowed { state.tats[check.key] = outcome.newTAT }
                return outcome
            }
        }))
    }

    public func takeFree(key: String, limit: Int, windowSeconds: Int64) -> StoreAnswer<Int?> {
        let time = now()
        return .ready(.success(state.withLock { state in
            var entry = state.free[key] ?? (0, time + windowSeconds * 1_000_000)
            if entry.until <= time { entry = (0, time + windowSeconds * 1_000_000) }
            entry.count += 1
            state.free[key] = entry
            return entry.count > limit ? nil : limit - entry.count
        }))
    }

    public func inspect(key: String) async throws -> Int64? {
        state.withLock { state in state.tats[key] ?? state.free[key].map { Int64($0.count) } }
    }

    public func reset(key: String) async throws -> Bool {
        state.withLock { state in
            let existed = state.tats.removeValue(forKey: key) != nil
            return state.free.removeValue(forKey: key) != nil || existed
        }
    }

    public func checkReady() async throws {}
}

/// Limits shared by every sidecar through Redis: one `EVALSHA` per rule key (sent together),
/// time from Redis (`TIME`) so that instances with skewed clocks agree, keys hash-tagged.
public final class RedisRateLimiter: RateLimiter {
    public let client: RedisClient

    /// KEYS[1]: the TAT key. ARGV: interval µs, tolerance µs. Returns {allowed, retry µs, remaining, reset µs}.
    static let gcra = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local interval = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local nxt = tat + interval
        local allow_at = nxt - tolerance
        if now < allow_at then
          return {0, allow_at - now, 0, tat - now}
        end
        redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PXAT', string.format('%.0f', math.ceil(nxt / 1000)))
        return {1, 0, math.floor((now - allow_at) / interval), nxt - now}
        """)

    /// KEYS[1]: the counter. ARGV: limit, window ms. Returns calls left, or -1.
    static let free = RedisScript(
        """
        local c = redis.call('INCR', KEYS[1])
        if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        if c > tonumber(ARGV[1]) then return -1 end
        return tonumber(ARGV[1]) - c
        """)

    public init(client: RedisClient) {
        self.client = client
    }

    public func check(_ checks: [RateCheck]) -> StoreAnswer<[GCRA.Outcome]> {
        .suspending { try await self.checkRemotely(checks) }
    }

    private func checkRemotely(_ checks: [RateCheck]) async throws -> [GCRA.Outcome] {
        let client = self.client
        return try await withThrowingTaskGroup(of: (Int, GCRA.Outcome).self) { group in
            for (index, check) in checks.enumerated() {
                group.addTask {
                    let reply = try await client.run(
                        Self.gcra, keys: [check.key],
                        arguments: [String(check.rule.intervalMicros), String(check.rule.toleranceMicros)])
                    guard case .array(let items?) = reply, items.count == 4 else {
                        throw RedisClientError(code: .protocolError, message: "unexpected GCRA reply")
                    }
                    let numbers = items.map { value -> Int64 in
                        if case .integer(let n) = value { return n }
                        return 0
                    }
                    return (index, GCRA.Outcome(
                        allowed: numbers[0] == 1, newTAT: 0, retryAfterMicros: numbers[1],
                        remaining: min(Int(numbers[2]), check.rule.burst - 1), resetMicros: numbers[3]))
                }
            }
            var outcomes = [GCRA.Outcome?](repeating: nil, count: checks.count)
            for try await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes.map { $0! }
        }
    }

    public func takeFree(key: String, limit: Int, windowSeconds: Int64) -> StoreAnswer<Int?> {
        .suspending { try await self.takeFreeRemotely(key: key, limit: limit, windowSeconds: windowSeconds) }
    }

    private func takeFreeRemotely(key: String, limit: Int, windowSeconds: Int64) async throws -> Int? {
        let reply = try await client.run(Self.free, keys: [key], arguments: [String(limit), String(windowSeconds * 1000)])
        guard case .integer(let left) = reply else {
            throw RedisClientError(code: .protocolError, message: "unexpected free-quota reply")
        }
        return left < 0 ? nil : Int(left)
    }

    public func inspect(key: String) async throws -> Int64? {
        try await client.send(["GET", key]).string.flatMap { Int64($0) }
    }

    public func reset(key: String) async throws -> Bool {
        try await client.send(["DEL", key]) == .integer(1)
    }

    public func checkReady() async throws { try await client.ping() }
}
