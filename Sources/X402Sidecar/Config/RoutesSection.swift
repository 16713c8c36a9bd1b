import X402
import Yams

/// `defaults:` — what every route option that does not set its own uses.
struct RouteDefaults {
    var payTo: String?
    /// Given but invalid: reported once there, not again for every route.
    var payToInvalid = false
    var network = "base-sepolia"
    var maxTimeoutSeconds = 60
    var mimeType = "application/json"

    static func parse(_ node: Node?, _ r: inout ConfigReader) -> RouteDefaults {
        var defaults = RouteDefaults()
        let allowed = ["pay_to", "network", "max_timeout_seconds", "mime_type"]
        guard let s = r.section(node, "defaults", allowed: allowed) else { return defaults }
        if let payTo = r.string(s["pay_to"], "defaults.pay_to"),
            NetworkCatalog.checkAddress(payTo, "defaults.pay_to", s["pay_to"], &r)
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
}

/// `routes:` — what each route costs, how it settles and how it is limited.
struct RouteTable {
    var requirements: [String: RouteRequirements] = [:]
    var settlement: [String: RouteSettlement] = [:]
    var limits: [String: RouteLimits] = [:]
    /// Each route's node, for the cross-section rules' line numbers.
    var nodes: [String: Node] = [:]

    static let optionKeys = ["price", "network", "pay_to", "asset", "max_timeout_seconds"]
    static let routeKeys = ["description", "mime_type", "accepts", "settlement", "settle_via", "verify", "rate_limits",
                            "free", "lease", "sign_in_with_x"] + ExposureSection.routeKeys

    static func parse(
        _ node: Node?, defaults: RouteDefaults, networks: NetworkCatalog, settlement: SettlementSettings?,
        _ r: inout ConfigReader
    ) -> RouteTable {
        var table = RouteTable()
        guard let node else {
            r.problem("routes", "is required: name at least one route to protect")
            return table
        }
        for (name, routeNode) in r.mapping(node, "routes") ?? [] {
            table.nodes[name] = routeNode
            if let route = route(name, routeNode, defaults: defaults, networks: networks, &r) {
                table.requirements[name] = route
            }
            if let settlement {
                if let choice = RouteSettlement.parse(name, routeNode, settlement: settlement, &r) {
                    table.settlement[name] = choice
                }
            } else if let keys = routeNode.mapping?.keys.compactMap(\.string),
                let key = keys.first(where: { ["settlement", "settle_via", "verify"].contains($0) })
            {
                r.problem("routes.\(name).\(key)", "needs a top-level settlement section", routeNode)
            }
        }
        for (name, routeNode) in r.mapping(node, "routes") ?? [] {
            if let limits = RouteLimits.parse(name, routeNode, &r), !limits.isEmpty { table.limits[name] = limits }
        }
        if node.mapping?.count == 0 { r.problem("routes", "must list at least one route", node) }
        return table
    }

    static func route(
        _ name: String, _ node: Node, defaults: RouteDefaults, networks: NetworkCatalog, _ r: inout ConfigReader
    ) -> RouteRequirements? {
        let path = "routes.\(name)"
        if name.isEmpty || name.count > 64 || !name.unicodeScalars.allSatisfy(\.isRouteNameCharacter) {
            r.problem(path, "route names use letters, digits, '_', '.' and '-' (at most 64)", node)
        }
        guard let s = r.section(node, path, allowed: routeKeys + optionKeys) else { return nil }
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
            let values: [String: Node]
            if optionPath == path {
                values = s
            } else {
                guard let entries = r.section(optionNode, optionPath, allowed: optionKeys) else { continue }
                values = entries
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
        _ s: [String: Node], _ path: String, _ node: Node, defaults: RouteDefaults, networks: NetworkCatalog,
        _ r: inout ConfigReader
    ) -> PaymentOption? {
        let networkName = r.string(s["network"], "\(path).network") ?? defaults.network
        let resolved = networks.resolve(networkName)
        if resolved == nil {
            r.problem("\(path).network", "\"\(networkName)\" is not a known network (\(networks.knownNames))",
                      s["network"] ?? node)
        }
        let token = s["asset"] == nil ? resolved?.token : NetworkCatalog.parseToken(s["asset"], "\(path).asset", &r)
        var payTo = defaults.payTo
        if let text = r.string(s["pay_to"], "\(path).pay_to") {
            payTo = NetworkCatalog.checkAddress(text, "\(path).pay_to", s["pay_to"], &r) ? text : nil
        } else if payTo == nil && s["pay_to"] == nil && !defaults.payToInvalid {
            r.problem("\(path).pay_to", "is required (here or in defaults.pay_to)", node)
        }
        let timeout = s["max_timeout_seconds"] == nil
            ? defaults.maxTimeoutSeconds
            : r.int(s["max_timeout_seconds"], "\(path).max_timeout_seconds", range: 1...3600)
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
        if PublicTestKeys.isPublicAddress(payTo) {
            let source = s["pay_to"] == nil ? " (from defaults.pay_to)" : ""
            SafetyRules.report(
                "\(path).pay_to", "pays to \(payTo)\(source), an account of the public Anvil/Hardhat test mnemonic",
                s["pay_to"] ?? node, testnet: resolved.testnet, &r)
        }
        do {
            return try PaymentOption(
                network: resolved.network, token: token, payTo: payTo, amount: amount, maxTimeoutSeconds: timeout)
        } catch {
            r.problem(path, "is not a valid payment option (\(error))", node)
            return nil
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isRouteNameCharacter: Bool {
        (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value)
            || "_.-".unicodeScalars.contains(self)
    }
}
