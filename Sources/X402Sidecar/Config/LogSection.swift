import X402
import Yams

/// `log:` — the process log's level and the per-decision JSON lines.
public struct LogSettings: Sendable, Equatable {
    public enum Level: String, Sendable, CaseIterable { case trace, debug, info, notice, warning, error, critical }
    public var level: Level
    /// One JSON line per `/authorize` decision.
    public var decisions: Bool

    public init(level: Level = .info, decisions: Bool = true) {
        self.level = level
        self.decisions = decisions
    }
}

extension LogSettings {
    static func parse(_ node: Node?, _ r: inout ConfigReader) -> LogSettings {
        var settings = LogSettings()
        guard let s = r.section(node, "log", allowed: ["level", "decisions"]) else { return settings }
        if let level = r.enumValue(s["level"], "log.level", Level.self) { settings.level = level }
        if let value = r.bool(s["decisions"], "log.decisions") { settings.decisions = value }
        return settings
    }
}

/// `verification:` — the local verifier's time margins.
extension PaymentVerifier {
    static func parse(_ node: Node?, _ r: inout ConfigReader) -> PaymentVerifier {
        var verifier = PaymentVerifier()
        let allowed = ["valid_before_margin_seconds", "clock_skew_seconds"]
        guard let s = r.section(node, "verification", allowed: allowed) else { return verifier }
        if let value = r.int(s["valid_before_margin_seconds"], "verification.valid_before_margin_seconds",
                             range: 0...3600) {
            verifier.validBeforeMargin = Int64(value)
        }
        if let value = r.int(s["clock_skew_seconds"], "verification.clock_skew_seconds", range: 0...86400) {
            verifier.clockSkewAllowance = Int64(value)
        }
        return verifier
    }
}
