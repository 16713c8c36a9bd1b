import Yams

/// Typed, problem-collecting access to YAML nodes. Never stops at the first problem: every section
/// reads what it can, reports the rest and carries on, so that `check-config` lists everything.
struct ConfigReader {
    private(set) var problems: [ConfigurationProblem] = []
    let environment: [String: String]

    var errors: [ConfigurationProblem] { problems.filter { $0.severity == .error } }
    var warnings: [ConfigurationProblem] { problems.filter { $0.severity == .warning } }

    mutating func problem(
        _ path: String, _ message: String, _ node: Node? = nil, severity: ConfigurationProblem.Severity = .error
    ) {
        problems.append(ConfigurationProblem(path: path, message: message, line: node?.mark?.line, severity: severity))
    }

    /// A mapping's entries by key; reports non-mappings, duplicate and unknown keys (with a "did you
    /// mean" hint for near misses).
    mutating func mapping(_ node: Node?, _ path: String, allowed: [String]? = nil) -> [(String, Node)]? {
        guard let node else { return nil }
        guard let mapping = node.mapping else {
            problem(path, "must be a mapping", node)
            return nil
        }
        var entries: [(String, Node)] = []
        var seen = Set<String>()
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                problem(path, "keys must be plain strings", keyNode)
                continue
            }
            let child = path.isEmpty ? key : "\(path).\(key)"
            guard seen.insert(key).inserted else {
                problem(child, "is given twice", keyNode)
                continue
            }
            if let allowed, !allowed.contains(key) {
                let hint = allowed.min { editDistance(key, $0) < editDistance(key, $1) }
                    .flatMap { editDistance(key, $0) <= 2 ? " (did you mean \"\($0)\"?)" : nil } ?? ""
                problem(child, "is not a known setting\(hint)", keyNode)
                continue
            }
            entries.append((key, value))
        }
        return entries
    }

    /// `mapping` as a dictionary (first of duplicate keys wins; duplicates are reported).
    mutating func section(_ node: Node?, _ path: String, allowed: [String]? = nil) -> [String: Node]? {
        mapping(node, path, allowed: allowed).map { Dictionary($0, uniquingKeysWith: { first, _ in first }) }
    }

    /// A scalar's literal text with `${VAR}`, `${VAR:-default}` and `$${` (a literal `${`) expanded.
    mutating func string(_ node: Node?, _ path: String) -> String? {
        guard let node else { return nil }
        guard let scalar = node.scalar else {
            problem(path, "must be a single value, not a \(node.mapping != nil ? "mapping" : "list")", node)
            return nil
        }
        return interpolate(scalar.string, path, node)
    }

    mutating func int(_ node: Node?, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, path) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            problem(path, "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text)\"",
                    node)
            return nil
        }
        return value
    }

    mutating func bool(_ node: Node?, _ path: String) -> Bool? {
        guard let text = string(node, path) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem(path, "must be true or false, not \"\(text)\"", node)
            return nil
        }
    }

    mutating func list(_ node: Node?, _ path: String) -> [Node]? {
        guard let node else { return nil }
        if let sequence = node.sequence { return Array(sequence) }
        if node.scalar != nil { return [node] }  // a single value where a list is allowed
        problem(path, "must be a list", node)
        return nil
    }

    mutating func enumValue<E: RawRepresentable & CaseIterable>(
        _ node: Node?, _ path: String, _ type: E.Type
    ) -> E? where E.RawValue == String {
        guard let text = string(node, path) else { return nil }
        if let value = E(rawValue: text) { return value }
        let names = E.allCases.map(\.rawValue).joined(separator: ", ")
        problem(path, "must be one of \(names), not \"\(text)\"", node)
        return nil
    }

    private mutating func interpolate(_ text: String, _ path: String, _ node: Node) -> String? {
        guard text.contains("$") else { return text }
        var output = ""
        var rest = Substring(text)
        var ok = true
        while let dollar = rest.firstIndex(of: "$") {
            output += rest[..<dollar]
            let after = rest[dollar...]
            if after.hasPrefix("$${") {
                output += "${"
                rest = after.dropFirst(3)
            } else if after.hasPrefix("${"), let close = after.firstIndex(of: "}") {
                let inner = after[after.index(dollar, offsetBy: 2)..<close]
                let parts = inner.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0])
                if let value = environment[name], !(parts.count == 2 && value.isEmpty) {
                    output += value
                } else if parts.count == 2 {
                    output += parts[1]
                } else {
                    problem(path, "uses ${\(name)}, which is not set in the environment", node)
                    ok = false
                }
                rest = after[after.index(after: close)...]
            } else {
                output += "$"
                rest = after.dropFirst()
            }
        }
        output += rest
        return ok ? output : nil
    }
}

/// Levenshtein distance, for "did you mean" hints on misspelled keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
