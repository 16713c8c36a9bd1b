import Yams

/// `settlement:` — how and when accepted payments are settled on chain. Without the section,
/// payments are verified and reserved but never settled (`check-config` says so in its summary).
extension SettlementSettings {
    static let keys = [
        "mode", "via", "journal", "fsync", "max_attempts", "retry_base_ms", "retry_max_seconds",
        "report_timeout_seconds", "report_timeout_policy", "before_timeout_seconds", "lease_seconds", "worker",
    ]

    /// The queue follows the ledger: next to the nonce journal for `embedded`, in Redis for `redis`.
    static func parse(_ node: Node, ledger: LedgerSettings, _ r: inout ConfigReader) -> SettlementSettings {
        var settings = SettlementSettings()
        switch ledger {
        case .memory: settings.queue = .memory
        case .embedded(let journal, let fsync):
            let directory = journal.contains("/") ? String(journal[..<journal.lastIndex(of: "/")!]) : "."
            settings.queue = .embedded(journalPath: directory + "/settlements.journal", fsync: fsync)
        case .redis(let url, let prefix): settings.queue = .redis(url: url, keyPrefix: prefix)
        }
        guard let s = r.section(node, "settlement", allowed: keys) else { return settings }
        if let mode = r.enumValue(s["mode"], "settlement.mode", SettlementMode.self) { settings.mode = mode }
        if let via = r.enumValue(s["via"], "settlement.via", SettlementVia.self) { settings.via = via }
        if let journal = r.string(s["journal"], "settlement.journal") {
            if case .redis = ledger {
                r.problem("settlement.journal", "applies to the embedded store only; the redis store queues in Redis",
                          s["journal"])
            }
            settings.queue = .embedded(journalPath: journal, fsync: r.bool(s["fsync"], "settlement.fsync") ?? false)
        }
        if let value = r.int(s["max_attempts"], "settlement.max_attempts", range: 1...1000) {
            settings.maxAttempts = value
        }
        if let value = r.int(s["retry_base_ms"], "settlement.retry_base_ms", range: 1...600_000) {
            settings.retryBaseMilliseconds = value
        }
        if let value = r.int(s["retry_max_seconds"], "settlement.retry_max_seconds", range: 1...86400) {
            settings.retryMaxSeconds = value
        }
        if let value = r.int(s["report_timeout_seconds"], "settlement.report_timeout_seconds", range: 1...3600) {
            settings.reportTimeoutSeconds = value
        }
        if let policy = r.enumValue(s["report_timeout_policy"], "settlement.report_timeout_policy",
                                    HoldTimeoutPolicy.self) {
            settings.holdTimeoutPolicy = policy
        }
        if let value = r.int(s["before_timeout_seconds"], "settlement.before_timeout_seconds", range: 1...600) {
            settings.beforeTimeoutSeconds = value
        }
        if let value = r.int(s["lease_seconds"], "settlement.lease_seconds", range: 5...3600) {
            settings.leaseSeconds = value
        }
        if let value = r.bool(s["worker"], "settlement.worker") { settings.runsWorker = value }
        return settings
    }
}

/// `routes.NAME.settlement`, `settle_via` and `verify`: a route's own choices.
extension RouteSettlement {
    static func parse(_ name: String, _ node: Node, settlement: SettlementSettings, _ r: inout ConfigReader)
        -> RouteSettlement?
    {
        guard let members = node.mapping else { return nil }
        var choice = RouteSettlement(mode: settlement.mode, via: settlement.via)
        for (key, value) in members {
            switch key.string {
            case "settlement":
                if let mode = r.enumValue(value, "routes.\(name).settlement", SettlementMode.self) {
                    choice.mode = mode
                }
            case "settle_via":
                if let via = r.enumValue(value, "routes.\(name).settle_via", SettlementVia.self) { choice.via = via }
            case "verify":
                if let mode = r.enumValue(value, "routes.\(name).verify", VerifyMode.self) { choice.verify = mode }
            default: break
            }
        }
        return choice
    }
}
