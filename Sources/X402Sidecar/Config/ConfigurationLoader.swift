import X402
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Reads the YAML configuration and validates it as a whole, in one pass: every section parses
/// its own options into typed, already-validated values and reports what is wrong with its YAML
/// path, then `ConfigurationRules` checks what spans sections. Nothing is reported one at a time,
/// and nothing is left for `serve` to find: `check-config` accepts a file if and only if `serve`
/// starts with it (given the same command-line `Options`).
public enum ConfigurationLoader {
    /// What the command line adds to the file; `serve` and `check-config` take the same flags.
    public struct Options: Sendable, Equatable {
        /// `--allow-memory-ledger`: accept `stores.ledger: memory` (tests and benchmarks only).
        public var allowMemoryLedger: Bool

        public init(allowMemoryLedger: Bool = false) {
            self.allowMemoryLedger = allowMemoryLedger
        }
    }

    static let sections = [
        "server", "log", "verification", "defaults", "networks", "routes", "stores", "settlement", "facilitator",
        "relayer", "rpc_urls", "backend", "rate_limiting", "admin", "leases", "sign_in_with_x",
        "exposure",
    ]

    public static func load(
        path: String, environment: [String: String], options: Options = Options()
    ) -> Result<SidecarConfiguration, ConfigurationProblems> {
        guard let text = readFile(path) else {
            return .failure(ConfigurationProblems(problems: [
                ConfigurationProblem(path: "", message: "cannot read \(path): \(String(cString: strerror(errno)))")
            ]))
        }
        return load(yaml: text, environment: environment, options: options)
    }

    public static func load(
        yaml: String, environment: [String: String], options: Options = Options()
    ) -> Result<SidecarConfiguration, ConfigurationProblems> {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                return .failure(ConfigurationProblems(problems: [
                    ConfigurationProblem(path: "", message: "the file is empty")
                ]))
            }
            root = node
        } catch {
            return .failure(ConfigurationProblems(problems: [
                ConfigurationProblem(path: "", message: "not valid YAML: \(error)")
            ]))
        }
        var reader = ConfigReader(environment: environment)
        let configuration = validate(root, options: options, &reader)
        if var configuration, reader.errors.isEmpty {
            configuration.warnings = reader.warnings
            return .success(configuration)
        }
        return .failure(ConfigurationProblems(problems: reader.errors, warnings: reader.warnings))
    }

    /// The one validation pass. Sections are read in dependency order (routes need the networks
    /// and the settlement defaults; the secrets' severity needs to know whether any network has
    /// value), each reporting its own problems and carrying on.
    static func validate(_ root: Node, options: Options, _ r: inout ConfigReader) -> SidecarConfiguration? {
        guard let section = r.section(root, "", allowed: sections) else { return nil }
        let server = ServerSettings.parse(section["server"], &r)
        let log = LogSettings.parse(section["log"], &r)
        let verifier = PaymentVerifier.parse(section["verification"], &r)
        let networks = NetworkCatalog.parse(section["networks"], &r)
        let defaults = RouteDefaults.parse(section["defaults"], &r)
        let stores = StoreSettings.parse(section["stores"], &r)
        let settlement = section["settlement"].map { SettlementSettings.parse($0, ledger: stores.ledger, &r) }
        let rpcURLs = networks.parseRPCURLs(section["rpc_urls"], &r)
        let routes = RouteTable.parse(section["routes"], defaults: defaults, networks: networks, settlement: settlement,
                                      &r)
        // Public test keys and placeholder secrets are errors unless every network here is a testnet.
        let chains = routes.requirements.values.flatMap { $0.options.map(\.network.chainId) } + rpcURLs.keys
        let onlyTestnets = chains.allSatisfy(networks.isTestnet)
        let facilitator = FacilitatorSettings.parse(section["facilitator"], &r)
        let relayer = RelayerSettings.parse(section["relayer"], &r)
        if let relayer {
            SafetyRules.checkRelayerKey(relayer, section["relayer"]?.mapping?["private_key"], testnet: onlyTestnets, &r)
        }
        var configuration = SidecarConfiguration(
            server: server, routes: routes.requirements, ledger: stores.ledger, verifier: verifier, log: log,
            settlement: settlement, routeSettlement: settlement == nil ? [:] : routes.settlement,
            facilitator: facilitator, relayer: relayer, rpcURLs: rpcURLs)
        configuration.redis = stores.redis
        configuration.backendContext = BackendSection.parse(section["backend"], testnet: onlyTestnets, &r)
        configuration.routeLimits = routes.limits
        configuration.trustedProxies = TrustedProxies.parse(section["rate_limiting"], &r)
        configuration.admin = AdminSettings.parse(section["admin"], testnet: onlyTestnets, &r)
        configuration.leases = LeaseSettings.parse(
            section["leases"], routes: section["routes"], known: Set(routes.requirements.keys), &r)
        configuration.signIn = SignInSettings.parse(
            section["sign_in_with_x"], routes: section["routes"], testnet: onlyTestnets, &r)
        if let leases = configuration.leases {
            // A lease is served for its whole life once issued: unless the route says otherwise, it is
            // issued only once its payment is on chain.
            for name in leases.leaseRoutes.keys {
                if routes.nodes[name]?.mapping?["settlement"] == nil {
                    configuration.routeSettlement[name]?.mode = .before
                } else if configuration.routeSettlement[name]?.mode == .after {
                    r.problem("routes.\(name).settlement", "after cannot apply to a lease route: the sidecar itself "
                              + "answers the purchase, there is no upstream status to wait for (use before or deferred)",
                              routes.nodes[name])
                }
            }
        }
        configuration.exposure = ExposureSection.parse(
            routesNode: section["routes"], routes: routes.requirements, settlement: configuration.routeSettlement,
            hasSettlement: settlement != nil, rpcURLs: rpcURLs, &r)
        configuration.balanceCacheSeconds = ExposureSection.cacheSeconds(section["exposure"], &r)
        ConfigurationRules.check(configuration, sections: section, routes: routes, options: options, &r)
        return configuration
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
