/// One thing wrong with a configuration, located by its YAML path (and line, when known).
public struct ConfigurationProblem: Sendable, Equatable, CustomStringConvertible {
    /// Errors refuse the file (`check-config` exits 1, `serve` does not start); warnings are printed.
    public enum Severity: String, Sendable, Equatable {
        case error, warning
    }

    public var path: String
    public var message: String
    public var line: Int?
    public var severity: Severity = .error

    public var description: String {
        let location = line.map { " (line \($0))" } ?? ""
        let prefix = severity == .warning ? "warning: " : ""
        return "\(prefix)\(path.isEmpty ? "(root)" : path): \(message)\(location)"
    }
}

/// Every problem found, reported together (the way `nginx -t` users expect `check-config` to be).
public struct ConfigurationProblems: Error, Sendable, CustomStringConvertible {
    /// The errors: why the file is refused.
    public var problems: [ConfigurationProblem]
    /// Findings that do not refuse the file (e.g. a public test key on a testnet).
    public var warnings: [ConfigurationProblem] = []

    public var description: String {
        (problems + warnings).map { "  - \($0)" }.joined(separator: "\n")
    }
}
