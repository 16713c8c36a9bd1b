/// A rate rule: `count` requests per `period`, with bursts of up to `burst` at once.
///
/// Written `10/s`, `10/s burst 20`, `1000/h`, `5/min burst 1`. Units: `s`, `m` or `min`, `h`, `d`.
/// Without `burst`, a burst is the whole count (`1000/h` admits 1000 at once, then one every 3.6 s).
public struct RateRule: Sendable, Equatable, CustomStringConvertible {
    public var count: Int
    /// The period, in microseconds.
    public var periodMicros: Int64
    public var burst: Int

    /// Microseconds between two requests at the sustained rate (GCRA's emission interval T).
    public var intervalMicros: Int64 { max(1, periodMicros / Int64(count)) }
    /// How far ahead of now the theoretical arrival time may run (τ = burst × T).
    public var toleranceMicros: Int64 { intervalMicros * Int64(burst) }

    public var periodSeconds: Int64 { max(1, periodMicros / 1_000_000) }

    public init(count: Int, periodMicros: Int64, burst: Int? = nil) {
        self.count = count
        self.periodMicros = periodMicros
        self.burst = burst ?? count
    }

    public var description: String {
        let unit: String
        switch periodMicros {
        case 1_000_000: unit = "s"
        case 60_000_000: unit = "min"
        case 3_600_000_000: unit = "h"
        case 86_400_000_000: unit = "d"
        default: unit = "\(periodMicros / 1_000_000)s"
        }
        return burst == count ? "\(count)/\(unit)" : "\(count)/\(unit) burst \(burst)"
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case syntax(String)
        case range(String)

        public var description: String {
            switch self {
            case .syntax(let text): return "\"\(text)\" is not a rate like \"10/s\", \"10/s burst 20\" or \"1000/h\""
            case .range(let text): return text
            }
        }
    }

    public static func parse(_ text: String) -> Result<RateRule, ParseError> {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 1 || (words.count == 3 && words[1] == "burst") else { return .failure(.syntax(text)) }
        let parts = words[0].split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), parts[0].allSatisfy(\.isASCII) else {
            return .failure(.syntax(text))
        }
        let period: Int64
        switch parts[1] {
        case "s", "sec", "second": period = 1_000_000
        case "m", "min", "minute": period = 60_000_000
        case "h", "hour": period = 3_600_000_000
        case "d", "day": period = 86_400_000_000
        default: return .failure(.syntax(text))
        }
        guard (1...1_000_000).contains(count) else { return .failure(.range("the count must be 1 to 1000000, not \(count)")) }
        var burst: Int?
        if words.count == 3 {
            guard let value = Int(words[2]), (1...1_000_000).contains(value) else {
                return .failure(.range("burst must be 1 to 1000000, not \"\(words[2])\""))
            }
            burst = value
        }
        return .success(RateRule(count: count, periodMicros: period, burst: burst))
    }
}

/// The generic cell rate algorithm: one stored number per key (the theoretical arrival time),
/// exact at any rate, no windows to straddle. The same arithmetic runs in Redis (a Lua script)
/// and in process.
public enum GCRA {
    public struct Outcome: Sendable, Equatable {
        public var allowed: Bool
        /// The key's new TAT when allowed (store it, expiring at `newTAT`); unchanged otherwise.
        public var newTAT: Int64
        /// When refused: microseconds until one request would be admitted.
        public var retryAfterMicros: Int64
        /// Requests that could still be admitted right now (after this one, if it was).
        public var remaining: Int
        /// Microseconds until the bucket is entirely full again.
        public var resetMicros: Int64

        public init(allowed: Bool, newTAT: Int64, retryAfterMicros: Int64, remaining: Int, resetMicros: Int64) {
            self.allowed = allowed
            self.newTAT = newTAT
            self.retryAfterMicros = retryAfterMicros
            self.remaining = remaining
            self.resetMicros = resetMicros
        }
    }

    /// - Parameters:
    ///   - tat: the stored theoretical arrival time (µs), nil for a new key.
    ///   - now: µs, from one clock for every instance (Redis `TIME`).
    public static func decide(tat: Int64?, now: Int64, rule: RateRule) -> Outcome {
        let interval = rule.intervalMicros
        let tolerance = rule.toleranceMicros
        let current = max(tat ?? now, now)
        let next = current + interval
        let allowAt = next - tolerance
        if now < allowAt {
            return Outcome(allowed: false, newTAT: current, retryAfterMicros: allowAt - now, remaining: 0,
                           resetMicros: current - now)
        }
        let remaining = Int((now - allowAt) / interval)
        return Outcome(allowed: true, newTAT: next, retryAfterMicros: 0, remaining: min(remaining, rule.burst - 1),
                       resetMicros: next - now)
    }
}
