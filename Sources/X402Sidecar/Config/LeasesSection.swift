import X402
import Yams

/// `routes.NAME.lease`: the route is a lease path — paying there buys a token for `opens`.
public struct LeaseRouteSettings: Sendable, Equatable {
    /// The routes the lease opens.
    public var opens: [String]
    public var seconds: Int64
    public var maxRequests: Int?
    public var maxConcurrent: Int?
    /// Paying again with a live token this close to its `exp` extends it (a successor that
    /// revokes the old token); earlier, a new lease is independent of the old one.
    public var renewalWindowSeconds: Int64
}

/// `leases:` — the keys lease tokens are signed with, and which routes take them.
public struct LeaseSettings: Sendable {
    public var keyring: LeaseKeyring
    public var clockSkewSeconds: Int64 = 30
    /// Lease routes (where the client pays) by name.
    public var leaseRoutes: [String: LeaseRouteSettings] = [:]
    /// Protected route → the lease routes whose tokens open it.
    public var openedBy: [String: [String]] = [:]
    /// Protected routes that also take the token as `?x402_lease=` (browsers' EventSource and
    /// WebSocket cannot set headers); nginx's JSON log scrubs it.
    public var queryTokenRoutes: Set<String> = []

    static let keys = ["key_file", "keys", "signing_key", "clock_skew_seconds", "query_token_routes"]

    /// Parses `leases:` and every route's `lease:`; nil when neither is given.
    static func parse(_ node: Node?, routes: Node?, known: Set<String>, _ r: inout ConfigReader) -> LeaseSettings? {
        var leaseRoutes: [String: LeaseRouteSettings] = [:]
        for (name, routeNode) in r.mapping(routes, "routes") ?? [] {
            guard let lease = routeNode.mapping?["lease"] else { continue }
            if let settings = LeaseRouteSettings.parse(lease, "routes.\(name).lease", known: known, &r) {
                leaseRoutes[name] = settings
            }
        }
        guard let node else {
            if let name = leaseRoutes.keys.sorted().first {
                r.problem("routes.\(name).lease", "needs a top-level leases section with the signing keys")
            }
            return nil
        }
        guard let s = r.section(node, "leases", allowed: keys) else { return nil }
        var text = ""
        if let path = r.string(s["key_file"], "leases.key_file") {
            if let file = ConfigurationLoader.readFile(path) {
                text += file + "\n"
            } else {
                r.problem("leases.key_file", "cannot read \(path)", s["key_file"])
            }
        }
        for (index, line) in (r.list(s["keys"], "leases.keys") ?? []).enumerated() {
            if let line = r.string(line, "leases.keys[\(index)]") { text += line + "\n" }
        }
        let signing = r.string(s["signing_key"], "leases.signing_key")
        let keyring: LeaseKeyring
        do {
            keyring = try LeaseKeyring(keyFile: text, signingKeyID: signing)
        } catch {
            r.problem("leases", "\(error.description) (keys come from key_file and keys: lines `KID ALG KEY`, "
                      + "made by `x402-sidecar lease keygen`)", node)
            return nil
        }
        var settings = LeaseSettings(keyring: keyring)
        if let skew = r.int(s["clock_skew_seconds"], "leases.clock_skew_seconds", range: 0...600) {
            settings.clockSkewSeconds = Int64(skew)
        }
        settings.leaseRoutes = leaseRoutes
        for (lease, route) in leaseRoutes.sorted(by: { $0.key < $1.key }) {
            for opened in route.opens { settings.openedBy[opened, default: []].append(lease) }
        }
        for (index, item) in (r.list(s["query_token_routes"], "leases.query_token_routes") ?? []).enumerated() {
            guard let name = r.string(item, "leases.query_token_routes[\(index)]") else { continue }
            if settings.openedBy[name] == nil {
                r.problem("leases.query_token_routes[\(index)]", "\"\(name)\" is not opened by any lease route", item)
            }
            settings.queryTokenRoutes.insert(name)
        }
        return settings
    }
}

extension LeaseRouteSettings {
    static let keys = ["opens", "seconds", "max_requests", "max_concurrent", "renewal_window_seconds"]

    static func parse(_ node: Node, _ path: String, known: Set<String>, _ r: inout ConfigReader) -> LeaseRouteSettings? {
        guard let s = r.section(node, path, allowed: keys) else { return nil }
        var opens: [String] = []
        for (index, item) in (r.list(s["opens"], "\(path).opens") ?? []).enumerated() {
            guard let name = r.string(item, "\(path).opens[\(index)]") else { continue }
            if !known.contains(name) { r.problem("\(path).opens[\(index)]", "\"\(name)\" is not a route", item) }
            opens.append(name)
        }
        if opens.isEmpty { r.problem("\(path).opens", "must name the routes the lease opens", node) }
        if opens.count > LeaseLimits.maxRoutes { r.problem("\(path).opens", "at most \(LeaseLimits.maxRoutes) routes", node) }
        guard let seconds = r.int(s["seconds"], "\(path).seconds", range: 1...(90 * 86400)) else {
            if s["seconds"] == nil { r.problem("\(path).seconds", "is required (how long a lease lasts)", node) }
            return nil
        }
        let window = r.int(s["renewal_window_seconds"], "\(path).renewal_window_seconds", range: 0...(90 * 86400))
        return LeaseRouteSettings(
            opens: opens, seconds: Int64(seconds),
            maxRequests: r.int(s["max_requests"], "\(path).max_requests", range: 1...1_000_000_000),
            maxConcurrent: r.int(s["max_concurrent"], "\(path).max_concurrent", range: 1...100_000),
            renewalWindowSeconds: Int64(window ?? min(seconds, 300)))
    }
}
