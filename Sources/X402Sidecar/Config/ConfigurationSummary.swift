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
        lines.append("routes: \(configuration.routes.count)")
        var rows = [["route", "network", "price", "atomic", "asset", "pay_to", "eip712"]]
        for name in configuration.routes.keys.sorted() {
            for option in configuration.routes[name]!.options {
                rows.append([
                    name, "\(option.network.caip2)\(option.network.v1Name.map { " (\($0))" } ?? "")",
                    "\(Amount.display(atomic: option.amount, decimals: option.token.decimals)) \(option.token.symbol)",
                    option.amount, option.token.address, option.payTo,
                    "\"\(option.token.eip712Name)\" v\(option.token.eip712Version)",
                ])
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
