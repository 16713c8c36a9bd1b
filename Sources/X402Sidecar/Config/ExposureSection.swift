import X402
import Yams

/// Exposure control: `exposure: {balance_cache_seconds}` at the top, and per route
/// `exposure: checked | unchecked` and `max_pending_per_payer: "PRICE"`.
///
/// A route that serves before its payment is on chain (`deferred`, `after`) is checked unless it
/// says `exposure: unchecked`: each payment is held against the payer's balance (`balanceOf`
/// through `rpc_urls`), together with the payer's other unsettled payments. A checked route on a
/// network without an RPC is a configuration error: it would serve wallets that cannot pay.
enum ExposureSection {
    enum Choice: String, CaseIterable {
        case checked, unchecked
    }

    static let routeKeys = ["exposure", "max_pending_per_payer"]

    /// Seconds a payer's balance is cached (`exposure.balance_cache_seconds`, default 5).
    static func cacheSeconds(_ node: Node?, _ r: inout ConfigReader) -> Int64 {
        guard let s = r.section(node, "exposure", allowed: ["balance_cache_seconds"]) else { return 5 }
        return Int64(r.int(s["balance_cache_seconds"], "exposure.balance_cache_seconds", range: 0...300) ?? 5)
    }

    static func parse(
        routesNode: Node?, routes: [String: RouteRequirements], settlement: [String: RouteSettlement],
        hasSettlement: Bool, rpcURLs: [UInt64: String], _ r: inout ConfigReader
    ) -> ExposurePolicy? {
        var checked: [String: ExposureRoute] = [:]
        for (name, route) in routes.sorted(by: { $0.key < $1.key }) {
            let node = routesNode?.mapping?[name]
            let members = node?.mapping
            let path = "routes.\(name)"
            let choice = r.enumValue(members?["exposure"], "\(path).exposure", Choice.self)
            let mode = settlement[name]?.mode
            let servesFirst = hasSettlement && (mode == .deferred || mode == .after)
            guard servesFirst, choice != .unchecked else {
                if members?["max_pending_per_payer"] != nil {
                    r.problem("\(path).max_pending_per_payer", servesFirst
                              ? "has no effect with exposure: unchecked"
                              : "applies to routes that serve before settling (deferred, after) only", node)
                }
                if choice == .checked && !servesFirst {
                    r.problem("\(path).exposure", "checked applies to routes that serve before settling "
                              + "(deferred, after); this one settles first", node, severity: .warning)
                }
                continue
            }
            var rule = ExposureRoute()
            for option in route.options {
                if rpcURLs[option.network.chainId] == nil {
                    r.problem("\(path).exposure", "this route serves before it is paid (\(mode!.rawValue)): "
                              + "exposure control reads the payer's balance through rpc_urls, and \(option.network.caip2) "
                              + "has none; add rpc_urls for it, or say exposure: unchecked to serve unfunded wallets",
                              node)
                }
                if let text = r.string(members?["max_pending_per_payer"], "\(path).max_pending_per_payer") {
                    switch Amount.atomicUnits(price: text, decimals: option.token.decimals) {
                    case .success(let atomic):
                        if let cap = ExposureHold.amount(atomic) {
                            rule.maxPending[option.network.caip2] = cap
                        } else {
                            r.problem("\(path).max_pending_per_payer", "is too large", members?["max_pending_per_payer"])
                        }
                    case .failure(let error):
                        r.problem("\(path).max_pending_per_payer", error.description, members?["max_pending_per_payer"])
                    }
                }
            }
            checked[name] = rule
        }
        return checked.isEmpty ? nil : ExposurePolicy(checked: checked)
    }
}
