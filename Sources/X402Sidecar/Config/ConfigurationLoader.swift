import X402
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Reads the YAML configuration and validates it as a whole: every problem is collected with its
/// YAML path, nothing is reported one at a time.
public enum ConfigurationLoader {
    public static func load(path: String, environment: [String: String]) -> Result<SidecarConfiguration, ConfigurationProblems> {
        guard let text = readFile(path) else {
            return .failure(ConfigurationProblems(problems: [
                ConfigurationProblem(path: "", message: "cannot read \(path): \(String(cString: strerror(errno)))")
            ]))
        }
        return load(yaml: text, environment: environment)
    }

    public static func load(yaml: String, environment: [String: String]) -> Result<SidecarConfiguration, ConfigurationProblems> {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                return .failure(ConfigurationProblems(problems: [ConfigurationProblem(path: "", message: "the file is empty")]))
            }
            root = node
        } catch {
            return .failure(ConfigurationProblems(problems: [ConfigurationProblem(path: "", message: "not valid YAML: \(error)")]))
        }
        var reader = ConfigReader(environment: environment)
        let configuration = Builder.build(root, &reader)
        if let configuration, reader.problems.isEmpty { return .success(configuration) }
        return .failure(ConfigurationProblems(problems: reader.problems))
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The walk over the document. Each section reports its own problems and carries on.
private enum Builder {
    struct Defaults {
        var payTo: String?
        /// Given but invalid: reported once there, not again for every route.
        var payToInvalid = false
        var network = "base-sepolia"
        var maxTimeoutSeconds = 60
        var mimeType = "application/json"
    }

    struct CustomNetwork {
        var network: Network
        var token: TokenInfo
    }

    static func build(_ root: Node, _ r: inout ConfigReader) -> SidecarConfiguration? {
        let sections = [
            "server", "log", "verification", "defaults", "networks", "routes", "stores", "settlement", "facilitator",
            "relayer", "rpc_urls", "backend", "rate_limiting", "admin",
        ]
        guard let entries = r.mapping(root, "", allowed: sections) else { return nil }
        let section = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        let server = serverSettings(section["server"], &r)
        let log = logSettings(section["log"], &r)
        let verifier = verification(section["verification"], &r)
        let defaults = defaultSettings(section["defaults"], &r)
        let networks = customNetworks(section["networks"], &r)
        let ledger = stores(section["stores"], &r)
        let settlement = settlementSettings(section["settlement"], ledger: ledger, &r)
        let facilitator = facilitatorSettings(section["facilitator"], &r)
        let relayer = relayerSettings(section["relayer"], &r)
        let rpcURLs = rpcURLSettings(section["rpc_urls"], networks: networks, &r)
        var routes: [String: RouteRequirements] = [:]
        var routeSettlement: [String: RouteSettlement] = [:]
        if let routesNode = section["routes"] {
            for (name, node) in r.mapping(routesNode, "routes") ?? [] {
                if let route = route(name, node, defaults: defaults, networks: networks, &r) { routes[name] = route }
                if section["settlement"] == nil, let keys = node.mapping?.keys.compactMap(\.string),
                    let key = keys.first(where: { ["settlement", "settle_via", "verify"].contains($0) })
                {
                    r.problem("routes.\(name).\(key)", "needs a top-level settlement section", node)
                }
                if section["settlement"] != nil, let choice = routeSettlementChoice(name, node, settlement: settlement, &r) {
                    routeSettlement[name] = choice
                    if let route = routes[name] {
                        checkSettler(choice, route: route, node: node, facilitator: facilitator, relayer: relayer,
                                     rpcURLs: rpcURLs, &r)
                    }
                }
            }
            if routesNode.mapping?.count == 0 { r.problem("routes", "must list at least one route", routesNode) }
        } else {
            r.problem("routes", "is required: name at least one route to protect")
        }
        let configured = section["settlement"] != nil
        var backendSecret: String?
        if let entries = r.mapping(section["backend"], "backend", allowed: ["hmac_secret"]) {
            let b = Dictionary(entries, uniquingKeysWith: { first, _ in first })
            backendSecret = r.string(b["hmac_secret"], "backend.hmac_secret")
            if let secret = backendSecret, secret.utf8.count < 16 {
                r.problem("backend.hmac_secret", "is too short: use at least 16 random characters (32 bytes of hex is good)",
                          b["hmac_secret"])
            }
        }
        var built = SidecarConfiguration(
            server: server, routes: routes, ledger: ledger, verifier: verifier, log: log,
            settlement: configured ? settlement : nil, routeSettlement: configured ? routeSettlement : [:], facilitator: facilitator, relayer: relayer,
            rpcURLs: rpcURLs)
        built.backendSecret = backendSecret
        if let routesNode = section["routes"] {
            for (name, node) in r.mapping(routesNode, "routes") ?? [] {
                if let limits = routeLimits(name, node, &r), !limits.isEmpty { built.routeLimits[name] = limits }
            }
        }
        if let entries = r.mapping(section["rate_limiting"], "rate_limiting", allowed: ["trusted_proxies"]) {
            let l = Dictionary(entries, uniquingKeysWith: { first, _ in first })
            if let items = r.list(l["trusted_proxies"], "rate_limiting.trusted_proxies") {
                let texts = items.enumerated().compactMap { r.string($1, "rate_limiting.trusted_proxies[\($0)]") }
                if let proxies = TrustedProxies(texts) { built.trustedProxies = proxies } else {
                    r.problem("rate_limiting.trusted_proxies", "must list addresses or CIDRs like 10.0.0.0/8 or ::1/128",
                              l["trusted_proxies"])
                }
            }
        }
        if let entries = r.mapping(section["admin"], "admin", allowed: ["listen", "token_sha256"]) {
            let a = Dictionary(entries, uniquingKeysWith: { first, _ in first })
            let listen = r.string(a["listen"], "admin.listen").flatMap { listenAddress($0, mode: 0o600) }
            if listen == nil { r.problem("admin.listen", "is required: unix:/path or 127.0.0.1:PORT", section["admin"]) }
            let hash = r.string(a["token_sha256"], "admin.token_sha256").flatMap { Hex.decode($0.hasPrefix("0x") ? $0 : "0x" + $0, byteCount: 32) }
            if hash == nil {
                r.problem("admin.token_sha256", "must be the SHA-256 (64 hex digits) of the admin token: x402-sidecar admin hash-token",
                          a["token_sha256"] ?? section["admin"])
            }
            if let listen, let hash { built.admin = AdminSettings(listen: listen, tokenSHA256: hash) }
        }
        return built
    }

    static func ruleKey(_ text: String) -> RouteLimits.Rule.Key? {
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

    static func routeLimits(_ name: String, _ node: Node, _ r: inout ConfigReader) -> RouteLimits? {
        guard let members = node.mapping else { return nil }
        var limits = RouteLimits()
        var names: Set<String> = []
        for (key, value) in members {
            switch key.string {
            case "rate_limits":
                for (index, item) in (r.list(value, "routes.\(name).rate_limits") ?? []).enumerated() {
                    let path = "routes.\(name).rate_limits[\(index)]"
                    let allowed = ["limit", "key", "applies_to", "on_store_failure", "name"]
                    guard let entries = r.mapping(item, path, allowed: allowed) else { continue }
                    let e = Dictionary(entries, uniquingKeysWith: { first, _ in first })
                    guard let limitText = r.string(e["limit"], "\(path).limit") else {
                        if e["limit"] == nil { r.problem("\(path).limit", "is required, e.g. \"10/s burst 20\"", item) }
                        continue
                    }
                    let rule: RateRule
                    switch RateRule.parse(limitText) {
                    case .success(let parsed): rule = parsed
                    case .failure(let error):
                        r.problem("\(path).limit", error.description, e["limit"])
                        continue
                    }
                    let keyText = r.string(e["key"], "\(path).key") ?? "ip"
                    guard let ruleKey = ruleKey(keyText) else {
                        r.problem("\(path).key", "must be ip, payer, lease or header:NAME, not \"\(keyText)\"", e["key"])
                        continue
                    }
                    let applies = enumValue(e["applies_to"], "\(path).applies_to", RouteLimits.Rule.Applies.self, &r) ?? .all
                    if ruleKey == .payer && applies == .unpaid {
                        r.problem("\(path).applies_to", "a payer-keyed limit can only count paid requests", e["applies_to"])
                    }
                    var failOpen = false
                    if let policy = r.string(e["on_store_failure"], "\(path).on_store_failure") {
                        switch policy {
                        case "open": failOpen = true
                        case "closed": failOpen = false
                        default: r.problem("\(path).on_store_failure", "must be open or closed, not \"\(policy)\"", e["on_store_failure"])
                        }
                    }
                    let ruleName = r.string(e["name"], "\(path).name") ?? keyText.replacingOccurrences(of: "header:", with: "")
                    if names.contains(ruleName) {
                        r.problem("\(path).name", "\"\(ruleName)\" is used twice in this route; give each rule a name", item)
                    }
                    names.insert(ruleName)
                    limits.rules.append(RouteLimits.Rule(name: ruleName, rule: rule, key: ruleKey, applies: applies,
                                                         failOpen: failOpen))
                }
            case "free":
                let path = "routes.\(name).free"
                guard let entries = r.mapping(value, path, allowed: ["calls", "per", "key"]) else { continue }
                let f = Dictionary(entries, uniquingKeysWith: { first, _ in first })
                let calls = r.int(f["calls"], "\(path).calls", range: 1...1_000_000)
                if f["calls"] == nil { r.problem("\(path).calls", "is required", value) }
                let perText = r.string(f["per"], "\(path).per") ?? "1d"
                let window = duration(perText)
                if window == nil { r.problem("\(path).per", "must be a duration like 60s, 10m, 1h or 1d, not \"\(perText)\"", f["per"]) }
                let keyText = r.string(f["key"], "\(path).key") ?? "ip"
                let key = ruleKey(keyText)
                if key == nil || key == .payer {
                    r.problem("\(path).key", "must be ip, lease or header:NAME (free calls have no payer), not \"\(keyText)\"", f["key"])
                }
                if let calls, let window, let key, key != .payer {
                    limits.free = RouteLimits.Free(calls: calls, windowSeconds: window, key: key)
                }
            default:
                break
            }
        }
        return limits
    }

    static func settlementSettings(_ node: Node?, ledger: LedgerSettings, _ r: inout ConfigReader) -> SettlementSettings {
        var settings = SettlementSettings()
        switch ledger {
        case .memory: settings.queue = .memory
        case .embedded(let journal, let fsync):
            let directory = journal.contains("/") ? String(journal[..<journal.lastIndex(of: "/")!]) : "."
            settings.queue = .embedded(journalPath: directory + "/settlements.journal", fsync: fsync)
        case .redis(let url, let prefix): settings.queue = .redis(url: url, keyPrefix: prefix)
        }
        let allowed = [
            "mode", "via", "journal", "fsync", "max_attempts", "retry_base_ms", "retry_max_seconds",
            "report_timeout_seconds", "report_timeout_policy", "before_timeout_seconds", "lease_seconds", "worker",
        ]
        guard let entries = r.mapping(node, "settlement", allowed: allowed) else { return settings }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        if let mode = enumValue(s["mode"], "settlement.mode", SettlementMode.self, &r) { settings.mode = mode }
        if let via = enumValue(s["via"], "settlement.via", SettlementVia.self, &r) { settings.via = via }
        if let journal = r.string(s["journal"], "settlement.journal") {
            if case .redis = ledger {
                r.problem("settlement.journal", "applies to the embedded store only; the redis store queues in Redis", s["journal"])
            }
            settings.queue = .embedded(journalPath: journal, fsync: r.bool(s["fsync"], "settlement.fsync") ?? false)
        }
        if let value = r.int(s["max_attempts"], "settlement.max_attempts", range: 1...1000) { settings.maxAttempts = value }
        if let value = r.int(s["retry_base_ms"], "settlement.retry_base_ms", range: 1...600_000) {
            settings.retryBaseMilliseconds = value
        }
        if let value = r.int(s["retry_max_seconds"], "settlement.retry_max_seconds", range: 1...86400) {
            settings.retryMaxSeconds = value
        }
        if let value = r.int(s["report_timeout_seconds"], "settlement.report_timeout_seconds", range: 1...3600) {
            settings.reportTimeoutSeconds = value
        }
        if let policy = enumValue(s["report_timeout_policy"], "settlement.report_timeout_policy",
                                  SettlementSettings.HoldTimeoutPolicy.self, &r) {
            settings.holdTimeoutPolicy = policy
        }
        if let value = r.int(s["before_timeout_seconds"], "settlement.before_timeout_seconds", range: 1...600) {
            settings.beforeTimeoutSeconds = value
        }
        if let value = r.int(s["lease_seconds"], "settlement.lease_seconds", range: 5...3600) { settings.leaseSeconds = value }
        if let value = r.bool(s["worker"], "settlement.worker") { settings.runsWorker = value }
        return settings
    }

    static func enumValue<E: RawRepresentable & CaseIterable>(
        _ node: Node?, _ path: String, _ type: E.Type, _ r: inout ConfigReader
    ) -> E? where E.RawValue == String {
        guard let text = r.string(node, path) else { return nil }
        if let value = E(rawValue: text) { return value }
        let names = E.allCases.map(\.rawValue).joined(separator: ", ")
        r.problem(path, "must be one of \(names), not \"\(text)\"", node)
        return nil
    }

    static func facilitatorSettings(_ node: Node?, _ r: inout ConfigReader) -> FacilitatorSettings? {
        let allowed = ["url", "timeout_ms", "retries", "bearer_token", "cdp_api_key_id", "cdp_api_key_secret"]
        guard let entries = r.mapping(node, "facilitator", allowed: allowed) else { return nil }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        guard let url = r.string(s["url"], "facilitator.url") else {
            if s["url"] == nil { r.problem("facilitator.url", "is required", node) }
            return nil
        }
        if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            r.problem("facilitator.url", "must be an http:// or https:// URL, not \"\(url)\"", s["url"])
        }
        var settings = FacilitatorSettings(url: url)
        if let value = r.int(s["timeout_ms"], "facilitator.timeout_ms", range: 100...120_000) {
            settings.timeoutMilliseconds = value
        }
        if let value = r.int(s["retries"], "facilitator.retries", range: 0...10) { settings.retries = value }
        settings.bearerToken = r.string(s["bearer_token"], "facilitator.bearer_token")
        settings.cdpKeyId = r.string(s["cdp_api_key_id"], "facilitator.cdp_api_key_id") ?? r.environment["CDP_API_KEY_ID"]
        settings.cdpKeySecret = r.string(s["cdp_api_key_secret"], "facilitator.cdp_api_key_secret")
            ?? r.environment["CDP_API_KEY_SECRET"]
        if settings.bearerToken?.isEmpty == true { settings.bearerToken = nil }
        if settings.cdpKeyId?.isEmpty == true { settings.cdpKeyId = nil }
        if settings.cdpKeySecret?.isEmpty == true { settings.cdpKeySecret = nil }
        switch (settings.cdpKeyId, settings.cdpKeySecret) {
        case (nil, nil):
            break
        case (let id?, let secret?):
            if CDPCredentials(keyId: id, secret: secret) == nil {
                r.problem("facilitator.cdp_api_key_secret",
                          "is neither an EC P-256 PEM key nor a base64 Ed25519 key (64 bytes) that can sign", node)
            }
            if settings.bearerToken != nil {
                r.problem("facilitator", "give either bearer_token or a CDP API key, not both", node)
            }
        default:
            r.problem("facilitator", "a CDP API key needs both cdp_api_key_id and cdp_api_key_secret (or CDP_API_KEY_ID and CDP_API_KEY_SECRET)", node)
        }
        return settings
    }

    static func relayerSettings(_ node: Node?, _ r: inout ConfigReader) -> RelayerSettings? {
        let allowed = ["private_key", "legacy_transactions", "simulate", "check_balance", "receipt_timeout_seconds"]
        guard let entries = r.mapping(node, "relayer", allowed: allowed) else { return nil }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        guard let key = r.string(s["private_key"], "relayer.private_key") else {
            if s["private_key"] == nil {
                r.problem("relayer.private_key", "is required (use ${X402_RELAYER_KEY}; never commit a key)", node)
            }
            return nil
        }
        guard let bytes = Hex.decode(key, byteCount: 32), Secp256k1.address(privateKey: bytes) != nil else {
            r.problem("relayer.private_key", "must be 0x followed by 64 hex digits (a valid secp256k1 key)", s["private_key"])
            return nil
        }
        var settings = RelayerSettings(privateKey: key)
        if let value = r.bool(s["legacy_transactions"], "relayer.legacy_transactions") { settings.legacyTransactions = value }
        if let value = r.bool(s["simulate"], "relayer.simulate") { settings.simulate = value }
        if let value = r.bool(s["check_balance"], "relayer.check_balance") { settings.checkBalance = value }
        if let value = r.int(s["receipt_timeout_seconds"], "relayer.receipt_timeout_seconds", range: 1...600) {
            settings.receiptTimeoutSeconds = value
        }
        return settings
    }

    static func rpcURLSettings(_ node: Node?, networks: [String: CustomNetwork], _ r: inout ConfigReader) -> [UInt64: String] {
        var urls: [UInt64: String] = [:]
        for (name, value) in r.mapping(node, "rpc_urls") ?? [] {
            let path = "rpc_urls.\(name)"
            guard let url = r.string(value, path) else { continue }
            guard let network = resolveNetwork(name, networks) else {
                r.problem(path, "\"\(name)\" is not a known network", value)
                continue
            }
            if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                r.problem(path, "must be an http:// or https:// URL, not \"\(url)\"", value)
            }
            urls[network.network.chainId] = url
        }
        return urls
    }

    static func routeSettlementChoice(
        _ name: String, _ node: Node, settlement: SettlementSettings, _ r: inout ConfigReader
    ) -> RouteSettlement? {
        guard let members = node.mapping else { return nil }
        var choice = RouteSettlement(mode: settlement.mode, via: settlement.via)
        for (key, value) in members {
            switch key.string {
            case "settlement":
                if let mode = enumValue(value, "routes.\(name).settlement", SettlementMode.self, &r) { choice.mode = mode }
            case "settle_via":
                if let via = enumValue(value, "routes.\(name).settle_via", SettlementVia.self, &r) { choice.via = via }
            case "verify":
                if let mode = enumValue(value, "routes.\(name).verify", VerifyMode.self, &r) { choice.verify = mode }
            default: break
            }
        }
        return choice
    }

    static func checkSettler(
        _ choice: RouteSettlement, route: RouteRequirements, node: Node, facilitator: FacilitatorSettings?,
        relayer: RelayerSettings?, rpcURLs: [UInt64: String], _ r: inout ConfigReader
    ) {
        let path = "routes.\(route.name)"
        if choice.verify != .local && facilitator == nil {
            r.problem(path, "verifies through a facilitator (verify: \(choice.verify.rawValue)), but no facilitator.url is configured", node)
        }
        if choice.verify == .facilitator && choice.via == .relayer {
            r.problem(path, "verify: facilitator accepts signatures our relayer cannot settle; use settle_via: facilitator", node)
        }
        switch choice.via {
        case .facilitator:
            if facilitator == nil {
                r.problem(path, "settles through a facilitator, but no facilitator.url is configured", node)
            }
        case .relayer:
            if relayer == nil {
                r.problem(path, "settles through our relayer, but no relayer.private_key is configured", node)
            }
            for option in route.options where rpcURLs[option.network.chainId] == nil {
                r.problem(path, "settles through our relayer on \(option.network.caip2), but rpc_urls has no entry for it", node)
            }
        }
    }

    static func serverSettings(_ node: Node?, _ r: inout ConfigReader) -> ServerSettings {
        var settings = ServerSettings()
        let allowed = [
            "listen", "unix_socket_mode", "event_loops", "max_header_bytes", "shutdown_grace_seconds", "report_socket",
        ]
        guard let entries = r.mapping(node, "server", allowed: allowed) else { return settings }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        var mode: UInt16 = 0o660
        if let text = r.string(s["unix_socket_mode"], "server.unix_socket_mode") {
            if let parsed = UInt16(text, radix: 8), parsed <= 0o777 { mode = parsed } else {
                r.problem("server.unix_socket_mode", "must be an octal mode like \"0660\", not \"\(text)\"", s["unix_socket_mode"])
            }
        }
        settings.unixSocketMode = mode
        if let text = r.string(s["report_socket"], "server.report_socket") {
            if text.hasPrefix("unix:"), text.count > 5 { settings.reportSocket = String(text.dropFirst(5)) } else {
                r.problem("server.report_socket", "must be unix:/path/to/report.sock, not \"\(text)\"", s["report_socket"])
            }
        }
        if let items = r.list(s["listen"], "server.listen") {
            var addresses: [ListenAddress] = []
            for (index, item) in items.enumerated() {
                let path = "server.listen[\(index)]"
                guard let text = r.string(item, path) else { continue }
                guard let address = listenAddress(text, mode: mode) else {
                    r.problem(path, "must be unix:/path/to.sock or HOST:PORT (port 0-65535), not \"\(text)\"", item)
                    continue
                }
                if addresses.contains(address) { r.problem(path, "\(text) is listed twice", item) }
                addresses.append(address)
            }
            if items.isEmpty { r.problem("server.listen", "must name at least one address", s["listen"]) }
            settings.listen = addresses
        }
        settings.eventLoops = r.int(s["event_loops"], "server.event_loops", range: 1...64)
        if let value = r.int(s["max_header_bytes"], "server.max_header_bytes", range: 1024...1_048_576) {
            settings.maxHeaderBytes = value
        }
        if let value = r.int(s["shutdown_grace_seconds"], "server.shutdown_grace_seconds", range: 0...300) {
            settings.shutdownGraceSeconds = value
        }
        return settings
    }

    static func listenAddress(_ text: String, mode: UInt16) -> ListenAddress? {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            return path.isEmpty ? nil : .unix(path: path, mode: mode)
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : .tcp(host: host, port: port)
    }

    static func logSettings(_ node: Node?, _ r: inout ConfigReader) -> LogSettings {
        var settings = LogSettings()
        guard let entries = r.mapping(node, "log", allowed: ["level", "decisions"]) else { return settings }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        if let text = r.string(s["level"], "log.level") {
            if let level = LogSettings.Level(rawValue: text) { settings.level = level } else {
                let names = LogSettings.Level.allCases.map(\.rawValue).joined(separator: ", ")
                r.problem("log.level", "must be one of \(names), not \"\(text)\"", s["level"])
            }
        }
        if let value = r.bool(s["decisions"], "log.decisions") { settings.decisions = value }
        return settings
    }

    static func verification(_ node: Node?, _ r: inout ConfigReader) -> PaymentVerifier {
        var verifier = PaymentVerifier()
        let allowed = ["valid_before_margin_seconds", "clock_skew_seconds"]
        guard let entries = r.mapping(node, "verification", allowed: allowed) else { return verifier }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        if let value = r.int(s["valid_before_margin_seconds"], "verification.valid_before_margin_seconds", range: 0...3600) {
            verifier.validBeforeMargin = Int64(value)
        }
        if let value = r.int(s["clock_skew_seconds"], "verification.clock_skew_seconds", range: 0...86400) {
            verifier.clockSkewAllowance = Int64(value)
        }
        return verifier
    }

    static func defaultSettings(_ node: Node?, _ r: inout ConfigReader) -> Defaults {
        var defaults = Defaults()
        let allowed = ["pay_to", "network", "max_timeout_seconds", "mime_type"]
        guard let entries = r.mapping(node, "defaults", allowed: allowed) else { return defaults }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        if let payTo = r.string(s["pay_to"], "defaults.pay_to"),
            checkAddress(payTo, "defaults.pay_to", s["pay_to"], &r)
        {
            defaults.payTo = payTo
        } else if s["pay_to"] != nil {
            defaults.payToInvalid = true
        }
        if let network = r.string(s["network"], "defaults.network") { defaults.network = network }
        if let value = r.int(s["max_timeout_seconds"], "defaults.max_timeout_seconds", range: 1...3600) {
            defaults.maxTimeoutSeconds = value
        }
        if let mime = r.string(s["mime_type"], "defaults.mime_type") { defaults.mimeType = mime }
        return defaults
    }

    static func checkAddress(_ text: String, _ path: String, _ node: Node?, _ r: inout ConfigReader) -> Bool {
        guard let bytes = Hex.decode(text, byteCount: 20) else {
            r.problem(path, "must be an address: 0x followed by 40 hex digits, not \"\(text)\"", node)
            return false
        }
        guard bytes.contains(where: { $0 != 0 }) else {
            r.problem(path, "is the zero address; payments to it are burned", node)
            return false
        }
        return true
    }

    static func token(_ node: Node?, _ path: String, _ r: inout ConfigReader) -> TokenInfo? {
        let allowed = ["address", "name", "version", "decimals", "symbol"]
        guard let entries = r.mapping(node, path, allowed: allowed) else { return nil }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        let address = r.string(s["address"], "\(path).address")
        if address == nil && s["address"] == nil { r.problem("\(path).address", "is required", node) }
        let addressOK = address.map { checkAddress($0, "\(path).address", s["address"], &r) } ?? false
        let name = r.string(s["name"], "\(path).name")
        let version = r.string(s["version"], "\(path).version")
        if s["name"] == nil || s["version"] == nil {
            r.problem(path, "needs name and version: the token's EIP-712 domain (missing_eip712_domain otherwise)", node)
        }
        let decimals = s["decimals"] == nil ? 6 : r.int(s["decimals"], "\(path).decimals", range: 0...36)
        let symbol = r.string(s["symbol"], "\(path).symbol") ?? "USDC"
        guard let address, addressOK, let name, let version, let decimals else { return nil }
        return TokenInfo(address: address, eip712Name: name, eip712Version: version, decimals: decimals, symbol: symbol)
    }

    static func customNetworks(_ node: Node?, _ r: inout ConfigReader) -> [String: CustomNetwork] {
        var networks: [String: CustomNetwork] = [:]
        for (name, value) in r.mapping(node, "networks") ?? [] {
            let path = "networks.\(name)"
            guard let entries = r.mapping(value, path, allowed: ["chain_id", "v1_name", "asset"]) else { continue }
            let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
            if s["chain_id"] == nil { r.problem("\(path).chain_id", "is required", value) }
            if s["asset"] == nil { r.problem("\(path).asset", "is required (address, name, version, decimals)", value) }
            let chainId = r.int(s["chain_id"], "\(path).chain_id", range: 1...Int(Int64.max))
            let v1Name = r.string(s["v1_name"], "\(path).v1_name")
            let token = token(s["asset"], "\(path).asset", &r)
            guard let chainId, let token else { continue }
            networks[name] = CustomNetwork(network: Network(chainId: UInt64(chainId), v1Name: v1Name), token: token)
        }
        return networks
    }

    static func resolveNetwork(_ name: String, _ networks: [String: CustomNetwork]) -> CustomNetwork? {
        if let custom = networks[name] { return custom }
        if let custom = networks.values.first(where: { $0.network.caip2 == name }) { return custom }
        return KnownNetwork.find(name).map { CustomNetwork(network: $0.network, token: $0.usdc) }
    }

    static func route(
        _ name: String, _ node: Node, defaults: Defaults, networks: [String: CustomNetwork], _ r: inout ConfigReader
    ) -> RouteRequirements? {
        let path = "routes.\(name)"
        if name.isEmpty || name.count > 64
            || !name.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit || $0.isASCIILetterOrDigit || "_.-".unicodeScalars.contains($0) })
        {
            r.problem(path, "route names use letters, digits, '_', '.' and '-' (at most 64)", node)
        }
        let optionKeys = ["price", "network", "pay_to", "asset", "max_timeout_seconds"]
        let routeKeys = ["description", "mime_type", "accepts", "settlement", "settle_via", "verify", "rate_limits", "free"]
        guard let entries = r.mapping(node, path, allowed: routeKeys + optionKeys) else {
            return nil
        }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        let description = r.string(s["description"], "\(path).description")
        if s["description"] == nil { r.problem("\(path).description", "is required (clients show it to payers)", node) }
        let mimeType = r.string(s["mime_type"], "\(path).mime_type") ?? defaults.mimeType
        var optionNodes: [(String, Node)] = []
        switch (s["price"], s["accepts"]) {
        case (.some, .some):
            r.problem(path, "give either price (one way to pay) or accepts (several), not both", node)
        case (.some, nil):
            optionNodes = [(path, node)]
        case (nil, .some(let accepts)):
            for (index, item) in (r.list(accepts, "\(path).accepts") ?? []).enumerated() {
                optionNodes.append(("\(path).accepts[\(index)]", item))
            }
            if optionNodes.isEmpty { r.problem("\(path).accepts", "must list at least one way to pay", accepts) }
        case (nil, nil):
            r.problem("\(path).price", "is required (or accepts: a list of ways to pay)", node)
        }
        var options: [PaymentOption] = []
        for (optionPath, optionNode) in optionNodes {
            let isShorthand = optionPath == path
            let values: [String: Node]
            if isShorthand {
                values = s
            } else {
                guard let entries = r.mapping(optionNode, optionPath, allowed: optionKeys) else { continue }
                values = Dictionary(entries, uniquingKeysWith: { first, _ in first })
            }
            guard let option = option(values, optionPath, optionNode, defaults: defaults, networks: networks, &r) else {
                continue
            }
            if options.contains(where: { $0.network == option.network }) {
                r.problem(optionPath, "\(option.network.caip2) is offered twice in this route", optionNode)
                continue
            }
            options.append(option)
        }
        guard let description, !options.isEmpty else { return nil }
        return RouteRequirements(name: name, description: description, mimeType: mimeType, options: options)
    }

    static func option(
        _ s: [String: Node], _ path: String, _ node: Node, defaults: Defaults, networks: [String: CustomNetwork],
        _ r: inout ConfigReader
    ) -> PaymentOption? {
        let networkName = r.string(s["network"], "\(path).network") ?? defaults.network
        let resolved = resolveNetwork(networkName, networks)
        if resolved == nil {
            let known = (KnownNetwork.builtIn.map(\.name) + networks.keys.sorted()).joined(separator: ", ")
            r.problem("\(path).network", "\"\(networkName)\" is not a known network (\(known))", s["network"] ?? node)
        }
        let token = s["asset"] == nil ? resolved?.token : token(s["asset"], "\(path).asset", &r)
        var payTo = defaults.payTo
        if let text = r.string(s["pay_to"], "\(path).pay_to") {
            payTo = checkAddress(text, "\(path).pay_to", s["pay_to"], &r) ? text : nil
        } else if payTo == nil && s["pay_to"] == nil && !defaults.payToInvalid {
            r.problem("\(path).pay_to", "is required (here or in defaults.pay_to)", node)
        }
        let timeout = s["max_timeout_seconds"] == nil
            ? defaults.maxTimeoutSeconds : r.int(s["max_timeout_seconds"], "\(path).max_timeout_seconds", range: 1...3600)
        guard let priceText = r.string(s["price"], "\(path).price") else {
            if s["price"] == nil { r.problem("\(path).price", "is required", node) }
            return nil
        }
        // Checked even when the network is wrong, so that every problem shows at once.
        let amount: String
        switch Amount.atomicUnits(price: priceText, decimals: token?.decimals ?? 6) {
        case .failure(let error):
            r.problem("\(path).price", error.description, s["price"])
            return nil
        case .success(let atomic):
            amount = atomic
        }
        guard let resolved, let token, let payTo, let timeout else { return nil }
        do {
            return try PaymentOption(
                network: resolved.network, token: token, payTo: payTo, amount: amount, maxTimeoutSeconds: timeout)
        } catch {
            r.problem(path, "is not a valid payment option (\(error))", node)
            return nil
        }
    }

    static func stores(_ node: Node?, _ r: inout ConfigReader) -> LedgerSettings {
        let fallback = LedgerSettings.embedded(journalPath: "/var/lib/x402/nonces.journal", fsync: false)
        guard let entries = r.mapping(node, "stores", allowed: ["ledger", "embedded", "redis"]) else {
            if r.environment["X402_REDIS_URL"] != nil { return redis(nil, &r) }
            return fallback
        }
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        switch r.string(s["ledger"], "stores.ledger") ?? "embedded" {
        case "memory":
            return .memory
        case "embedded":
            guard let embedded = r.mapping(s["embedded"], "stores.embedded", allowed: ["journal", "fsync"]) else {
                return fallback
            }
            let e = Dictionary(embedded, uniquingKeysWith: { first, _ in first })
            let journal = r.string(e["journal"], "stores.embedded.journal") ?? "/var/lib/x402/nonces.journal"
            return .embedded(journalPath: journal, fsync: r.bool(e["fsync"], "stores.embedded.fsync") ?? false)
        case "redis":
            return redis(s["redis"], &r)
        case let other:
            r.problem("stores.ledger", "must be memory, embedded or redis, not \"\(other)\"", s["ledger"])
            return fallback
        }
    }

    static func redis(_ node: Node?, _ r: inout ConfigReader) -> LedgerSettings {
        let entries = r.mapping(node, "stores.redis", allowed: ["url", "key_prefix"]) ?? []
        let s = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        let url = r.environment["X402_REDIS_URL"] ?? r.string(s["url"], "stores.redis.url")
        let prefix = r.string(s["key_prefix"], "stores.redis.key_prefix") ?? "x402"
        guard let url else {
            r.problem("stores.redis.url", "is required for the redis ledger (or set X402_REDIS_URL)", node)
            return .redis(url: "", keyPrefix: prefix)
        }
        if !(url.hasPrefix("redis://") || url.hasPrefix("unix://")) {
            r.problem("stores.redis.url", "must start with redis:// or unix:// (TLS is not supported)", s["url"])
        }
        return .redis(url: url, keyPrefix: prefix)
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetterOrDigit: Bool {
        (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value)
    }
}
