import X402
import Yams

/// The rules that span sections, and the ones `serve` used to apply on its own (the memory
/// ledger). With these in the loader, `check-config` accepts a file if and only if `serve` builds
/// the sidecar from it: `SidecarApplication.build` checks nothing and parses nothing.
///
/// What `serve` can still fail on, which no look at the file can know (check-config may run on
/// another host, as another user, before the servers exist):
/// - binding a listener, the admin listener or the report socket (port in use, no permission, the
///   socket's directory missing);
/// - opening or replaying the nonce and settlement journals (directory missing, not writable, a
///   damaged journal);
/// - Redis, facilitator and RPC endpoints that are down: the sidecar starts and `/readyz` says 503.
enum ConfigurationRules {
    static func check(
        _ configuration: SidecarConfiguration, sections: [String: Node], routes: RouteTable,
        options: ConfigurationLoader.Options, _ r: inout ConfigReader
    ) {
        if case .memory = configuration.ledger, !options.allowMemoryLedger {
            r.problem("stores.ledger", "is memory: used authorizations would be forgotten on restart and could be "
                      + "paid with again; use embedded or redis (--allow-memory-ledger for tests only)",
                      sections["stores"]?.mapping?["ledger"] ?? sections["stores"])
        }
        for name in routes.settlement.keys.sorted() {
            guard let choice = routes.settlement[name], let route = configuration.routes[name] else { continue }
            checkSettler(choice, route: route, node: routes.nodes[name], configuration: configuration,
                         sections: sections, &r)
        }
    }

    /// A route's verifier and settler exist, and the relayer has an RPC endpoint for each network.
    static func checkSettler(
        _ choice: RouteSettlement, route: RouteRequirements, node: Node?, configuration: SidecarConfiguration,
        sections: [String: Node], _ r: inout ConfigReader
    ) {
        let path = "routes.\(route.name)"
        // A section that is present but wrong has been reported already; only its absence is news.
        let facilitatorMissing = configuration.facilitator == nil && sections["facilitator"] == nil
        let relayerMissing = configuration.relayer == nil && sections["relayer"] == nil
        if choice.verify != .local && facilitatorMissing {
            r.problem(path, "verifies through a facilitator (verify: \(choice.verify.rawValue)), "
                      + "but no facilitator.url is configured", node)
        }
        if choice.verify == .facilitator && choice.via == .relayer {
            r.problem(path, "verify: facilitator accepts signatures our relayer cannot settle; "
                      + "use settle_via: facilitator", node)
        }
        switch choice.via {
        case .facilitator:
            if facilitatorMissing {
                r.problem(path, "settles through a facilitator, but no facilitator.url is configured", node)
            }
        case .relayer:
            if relayerMissing {
                r.problem(path, "settles through our relayer, but no relayer.private_key is configured", node)
            }
            for option in route.options where configuration.rpcURLs[option.network.chainId] == nil {
                r.problem(path, "settles through our relayer on \(option.network.caip2), "
                          + "but rpc_urls has no entry for it", node)
            }
        }
    }
}
