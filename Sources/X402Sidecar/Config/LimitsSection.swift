import X402
import Yams

/// `routes.NAME.rate_limits` and `routes.NAME.free`.
extension RouteLimits {
    static func parse(_ name: String, _ node: Node, _ r: inout ConfigReader) -> RouteLimits? {
        guard let members = node.mapping else { return nil }
        var limits = RouteLimits()
        var names: Set<String> = []
        for (key, value) in members {
            switch key.string {
            case "rate_limits":
                for (index, item) in (r.list(value, "routes.\(name).rate_limits") ?? []).enumerated() {
                    let path = "routes.\(name).rate_limits[\(index)]"
                    guard let rule = rule(item, path, &r) else { continue }
                    if names.contains(rule.name) {
                        r.problem("\(path).name", "\"\(rule.name)\" is used twice in this route; give each rule a name",
                                  item)
                    }
                    names.insert(rule.name)
                    limits.rules.append(rule)
                }
            case "free":
                limits.free = free(value, "routes.\(name).free", &r)
            default:
                break
            }
        }
        return limits
    }

    static func rule(_ item: Node, _ path: String, _ r: inout ConfigReader) -> Rule? {
        let allowed = ["limit", "key", "applies_to", "on_store_failure", "name"]
        guard let e = r.section(item, path, allowed: allowed) else { return nil }
        guard let limitText = r.string(e["limit"], "\(path).limit") else {
            if e["limit"] == nil { r.problem("\(path).limit", "is required, e.g. \"10/s burst 20\"", item) }
            return nil
        }
        let rateRule: RateRule
        switch RateRule.parse(limitText) {
        case .success(let parsed): rateRule = parsed
        case .failure(let error):
            r.problem("\(path).limit", error.description, e["limit"])
            return nil
        }
        let keyText = r.string(e["key"], "\(path).key") ?? "ip"
        guard let ruleKey = ruleKey(keyText) else {
            r.problem("\(path).key", "must be ip, payer, lease or header:NAME, not \"\(keyText)\"", e["key"])
            return nil
        }
        let applies = r.enumValue(e["applies_to"], "\(path).applies_to", Rule.Applies.self) ?? .all
        if ruleKey == .payer && applies == .unpaid {
            r.problem("\(path).applies_to", "a payer-keyed limit can only count paid requests", e["applies_to"])
        }
        var failOpen = false
        if let policy = r.string(e["on_store_failure"], "\(path).on_store_failure") {
            switch policy {
            case "open": failOpen = true
            case "closed": failOpen = false
            default:
                r.problem("\(path).on_store_failure", "must be open or closed, not \"\(policy)\"",
                          e["on_store_failure"])
            }
        }
        let ruleName = r.string(e["name"], "\(path).name") ?? keyText.replacingOccurrences(of: "header:", with: "")
        return Rule(name: ruleName, rule: rateRule, key: ruleKey, applies: applies, failOpen: failOpen)
    }

    static func free(_ value: Node, _ path: String, _ r: inout ConfigReader) -> Free? {
        guard let f = r.section(value, path, allowed: ["calls", "per", "key"]) else { return nil }
        let calls = r.int(f["calls"], "\(path).calls", range: 1...1_000_000)
        if f["calls"] == nil { r.problem("\(path).calls", "is required", value) }
        let perText = r.string(f["per"], "\(path).per") ?? "1d"
        let window = duration(perText)
        if window == nil {
            r.problem("\(path).per", "must be a duration like 60s, 10m, 1h or 1d, not \"\(perText)\"", f["per"])
        }
        let keyText = r.string(f["key"], "\(path).key") ?? "ip"
        let key = ruleKey(keyText)
        if key == nil || key == .payer {
            r.problem("\(path).key", "must be ip, lease or header:NAME (free calls have no payer), not \"\(keyText)\"",
                      f["key"])
        }
        guard let calls, let window, let key, key != .payer else { return nil }
        return Free(calls: calls, windowSeconds: window, key: key)
    }

    static func ruleKey(_ text: String) -> Rule.Key? {
        switch text {
        case "ip": return .ip
        case "payer": return .payer
        case "lease": return .lease
        default:
            guard text.hasPrefix("header:"), text.count > 7 else { return nil }
            let name = String(text.dropFirst(7))
            guard name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else { return nil }
            return .header(name)
        }
    }

    static func duration(_ text: String) -> Int64? {
        guard let unit = text.last, let number = Int64(text.dropLast()), number > 0 else { return nil }
        switch unit {
        case "s": return number
        case "m": return number * 60
        case "h": return number * 3600
        case "d": return number * 86400
        default: return nil
        }
    }
}

/// `rate_limiting.trusted_proxies`.
extension TrustedProxies {
    static func parse(_ node: Node?, _ r: inout ConfigReader) -> TrustedProxies {
        guard let l = r.section(node, "rate_limiting", allowed: ["trusted_proxies"]),
            let items = r.list(l["trusted_proxies"], "rate_limiting.trusted_proxies")
        else { return TrustedProxies() }
        let texts = items.enumerated().compactMap { r.string($1, "rate_limiting.trusted_proxies[\($0)]") }
        if let proxies = TrustedProxies(texts) { return proxies }
        r.problem("rate_limiting.trusted_proxies", "must list addresses or CIDRs like 10.0.0.0/8 or ::1/128",
                  l["trusted_proxies"])
        return TrustedProxies()
    }
}
