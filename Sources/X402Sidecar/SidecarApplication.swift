import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import X402

/// Builds the whole sidecar from a validated configuration: the one function `main` and the
/// tests call (Hummingbird's `buildApplication` pattern).
public enum SidecarApplication {
    /// The one Redis client the ledger, the queue and the rate limiter share, from the URL the
    /// loader parsed (`SidecarConfiguration.redis`).
    struct SharedRedis {
        let client: RedisClient?
        let logger: Logger

        init(_ configuration: SidecarConfiguration, group: any EventLoopGroup, logger: Logger) {
            self.logger = logger
            client = configuration.redis.map { RedisClient(configuration: $0.client, group: group, logger: logger) }
        }

        func get() throws -> RedisClient {
            guard let client else {
                // Only a hand-made configuration gets here: the loader always parses the URL.
                throw ConfigurationProblems(problems: [ConfigurationProblem(
                    path: "stores.redis.url",
                    message: "a redis store needs SidecarConfiguration.redis (the parsed URL)")])
            }
            return client
        }
    }

    /// What `serve` runs.
    public struct Assembly: Sendable {
        public var server: AuthServer
        public var ledger: any NonceLedger
        public var settlements: Settlements?
        public var services: [any Service]
    }

    static func makeQueue(_ kind: SettlementSettings.QueueKind, redis: SharedRedis) throws -> any SettlementQueue {
        switch kind {
        case .memory:
            return try EmbeddedSettlementQueue(path: nil, logger: redis.logger)
        case .embedded(let path, let fsync):
            return try EmbeddedSettlementQueue(path: path, fsync: fsync, logger: redis.logger)
        case .redis(_, let prefix):
            return RedisSettlementQueue(client: try redis.get(), keyPrefix: prefix, logger: redis.logger)
        }
    }

    static func makeSettlements(
        _ configuration: SidecarConfiguration, ledger: any NonceLedger, redis: SharedRedis, logger: Logger,
        metrics: SidecarMetrics
    ) throws -> Settlements? {
        guard let settings = configuration.settlement else { return nil }
        let queue = try makeQueue(settings.queue, redis: redis)
        let chains = configuration.rpcURLs.mapValues { EthereumRPC(url: $0) }
        var facilitator: FacilitatorClient?
        if let settings = configuration.facilitator {
            var headers: [(String, String)] = []
            if let token = settings.bearerToken { headers.append(("Authorization", "Bearer \(token)")) }
            facilitator = FacilitatorClient(
                baseURL: settings.url,
                http: HTTPJSONClient(
                    timeout: .milliseconds(Int64(settings.timeoutMilliseconds)), headers: headers,
                    cdp: settings.cdp),
                retries: settings.retries, chains: chains, logger: logger)
        }
        var relayers: [UInt64: Relayer] = [:]
        if let relayer = configuration.relayer {
            var options = Relayer.Options()
            options.legacyTransactions = relayer.legacyTransactions
            options.simulate = relayer.simulate
            options.checkBalance = relayer.checkBalance
            options.receiptTimeoutSeconds = Double(relayer.receiptTimeoutSeconds)
            options.replaceAfterSeconds = relayer.replaceAfterSeconds > 0 ? Double(relayer.replaceAfterSeconds) : nil
            options.feeBumpPercent = UInt64(relayer.feeBumpPercent)
            options.maxFeePerGas = relayer.maxFeePerGasWei
            for (chainId, rpc) in chains {
                relayers[chainId] = Relayer(rpc: rpc, chainId: chainId, privateKeyHex: relayer.privateKey, options: options,
                                            logger: logger)
            }
        }
        return Settlements(
            settings: settings, queue: queue, ledger: ledger, routes: configuration.routeSettlement,
            facilitator: facilitator, relayers: relayers, logger: logger, metrics: metrics)
    }

    static func makeLedger(_ settings: LedgerSettings, redis: SharedRedis, settledHoldSeconds: Int64) throws
        -> any NonceLedger
    {
        switch settings {
        case .memory:
            return MemoryNonceLedger(exposureSettledHoldSeconds: settledHoldSeconds)
        case .embedded(let path, let fsync):
            return try EmbeddedNonceLedger(path: path, fsync: fsync, exposureSettledHoldSeconds: settledHoldSeconds)
        case .redis(_, let prefix):
            return RedisNonceLedger(client: try redis.get(), keyPrefix: prefix,
                                    exposureSettledHoldSeconds: settledHoldSeconds)
        }
    }

    /// Builds from a configuration the loader accepted; checks and parses nothing itself (see
    /// `ConfigurationRules` for what may still fail here: journals that cannot be opened).
    public static func build(
        configuration: SidecarConfiguration, group: any EventLoopGroup, logger: Logger,
        decisionLog: DecisionLog? = nil
    ) throws -> Assembly {
        let redis = SharedRedis(configuration, group: group, logger: logger)
        let ledger = try makeLedger(
            configuration.ledger, redis: redis,
            settledHoldSeconds: PayerBalances.settledHoldSeconds(cacheSeconds: configuration.balanceCacheSeconds))
        let metrics = SidecarMetrics(routes: Array(configuration.routes.keys))
        let settlements = try makeSettlements(configuration, ledger: ledger, redis: redis, logger: logger,
                                              metrics: metrics)
        var limiter: (any RateLimiter)?
        var limitPrefix = "x402"
        if configuration.routeLimits.values.contains(where: { !$0.isEmpty }) {
            switch configuration.ledger {
            case .redis(_, let prefix):
                limiter = RedisRateLimiter(client: try redis.get())
                limitPrefix = prefix
            case .embedded, .memory:
                limiter = EmbeddedRateLimiter()
            }
        }
        if settlements == nil {
            logger.warning("no settlement section: payments are verified and reserved but never settled on chain")
        }
        var leaseStore: (any LeaseStore)?
        var revocationMirror: RevocationMirror?
        if configuration.leases != nil || configuration.signIn != nil {
            switch configuration.ledger {
            case .redis(_, let prefix):
                let client = try redis.get()
                if configuration.leases != nil {
                    revocationMirror = RevocationMirror(client: client, keyPrefix: prefix, logger: logger)
                }
                leaseStore = RedisLeaseStore(client: client, keyPrefix: prefix, mirror: revocationMirror)
            case .embedded, .memory: leaseStore = EmbeddedLeaseStore()
            }
        }
        let authorizer = Authorizer(
            routes: configuration.routes, verifier: configuration.verifier, ledger: ledger, settlements: settlements,
            limits: configuration.routeLimits, limiter: limiter, trustedProxies: configuration.trustedProxies,
            limitKeyPrefix: limitPrefix, leases: configuration.leases, signIn: configuration.signIn,
            leaseStore: leaseStore, exposure: configuration.exposure,
            balances: configuration.exposure == nil ? nil : PayerBalances(
                chains: configuration.rpcURLs.mapValues { EthereumRPC(url: $0) },
                cacheSeconds: configuration.balanceCacheSeconds),
            logger: logger)
        let core = SidecarCore(
            authorizer: authorizer, decisionLog: decisionLog ?? DecisionLog(enabled: configuration.log.decisions),
            maxHeaderBytes: configuration.server.maxHeaderBytes,
            backendContext: configuration.backendContext,
            adminTokenSHA256: configuration.admin?.tokenSHA256,
            decisionCacheSeconds: configuration.server.decisionCacheSeconds)
        let server = AuthServer(
            core: core, addresses: configuration.server.listen, group: group, logger: logger,
            graceSeconds: configuration.server.shutdownGraceSeconds)
        var services: [any Service] = [server]
        if let admin = configuration.admin {
            services.append(AuthServer(core: core, addresses: [admin.listen], group: group, logger: logger,
                                       graceSeconds: 1, admin: true))
        }
        if let revocationMirror { services.append(revocationMirror) }
        if let settlements, settlements.settings.runsWorker {
            services.append(SettlementWorker(settlements: settlements))
        }
        if let path = configuration.server.reportSocket, settlements != nil || leaseStore != nil {
            services.append(ReportListener(path: path, mode: configuration.server.unixSocketMode, settlements: settlements,
                                           leases: leaseStore, logger: logger))
        }
        return Assembly(server: server, ledger: ledger, settlements: settlements, services: services)
    }
}
