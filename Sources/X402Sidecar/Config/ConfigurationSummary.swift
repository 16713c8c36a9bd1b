import X402

/// What `check-config` prints for a valid configuration: where it listens, which ledger, and every
/// route's price in tokens and atomic units with the EIP-712 domain clients will sign.
public enum ConfigurationSummary {
    public static func summary(of configuration: SidecarConfiguration) -> String {
        var lines: [String] = []
        lines.append("listen: " + configuration.server.listen.map(\.description).joined(separator: ", "))
        switch configuration.ledger {
        case .memory: lines.append("ledger: memory (forgets used authorizations on restart)")
        case .embedded(let path, let fsync): lines.append("ledger: embedded journal \(path)\(fsync ? " (fsync)" : "")")
        case .redis(let url, let prefix): lines.append("ledger: redis \(redactedURL(url)) (prefix \(prefix))")
        }
        if let settlement = configuration.settlement {
            let queue: String
            switch settlement.queue {
            case .memory: queue = "memory (lost on restart)"
            case .embedded(let path, _): queue = "embedded journal \(path)"
            case .redis(let url, _): queue = "redis \(redactedURL(url))"
            }
            lines.append("settlement: queue \(queue), up to \(settlement.maxAttempts) attempts")
            if let facilitator = configuration.facilitator {
                let auth = facilitator.cdp.map { " (CDP API key \($0.keyId))" } ?? ""
                lines.append("facilitator: \(facilitator.url)\(auth)")
            }
            if let relayer = configuration.relayer {
                lines.append("relayer: \(relayer.address) on chains "
                    + configuration.rpcURLs.keys.sorted().map(String.init).joined(separator: ", "))
            }
        } else {
            lines.append("settlement: not configured (payments are verified and reserved, never settled)")
        }
        lines.append("routes: \(configuration.routes.count)")
        var rows = [["route", "network", "price", "atomic", "asset", "pay_to", "eip712", "settlement"]]
        for name in configuration.routes.keys.sorted() {
            let settle = configuration.routeSettlement[name].map { "\($0.mode.rawValue) via \($0.via.rawValue)" } ?? "-"
            for option in configuration.routes[name]!.options {
                rows.append([
                    name, "\(option.network.caip2)\(option.network.v1Name.map { " (\($0))" } ?? "")",
                    "\(Amount.display(atomic: option.amount, decimals: option.token.decimals)) \(option.token.symbol)",
                    option.amount, option.token.address, option.payTo,
                    "\"\(option.token.eip712Name)\" v\(option.token.eip712Version)", settle,
                ])
            }
        }
        for name in configuration.routeLimits.keys.sorted() {
            let limits = configuration.routeLimits[name]!
            for rule in limits.rules {
                rows.append([name, "limit \(rule.name)", rule.rule.description, "per \(rule.key)", rule.applies.rawValue,
                             rule.failOpen ? "fails open" : "fails closed", "", ""])
            }
            if let free = limits.free {
                rows.append([name, "free", "\(free.calls) calls", "per \(free.key)", "every \(free.windowSeconds) s", "", "", ""])
            }
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }
            lines.append("  " + cells.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }

    /// Hides a password in a Redis URL.
    static func redactedURL(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
        return url[..<scheme.upperBound] + "***" + url[at...]
    }
}
