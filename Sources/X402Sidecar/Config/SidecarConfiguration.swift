import X402

/// The validated configuration the sidecar runs with. Built only by `ConfigurationLoader`, which
/// checks the YAML as a whole and reports every problem at once.
public struct SidecarConfiguration: Sendable {
    public var server: ServerSettings
    /// Routes by name (`X-X402-Route` / `$x402_route`).
    public var routes: [String: RouteRequirements]
    public var ledger: LedgerSettings
    public var verifier: PaymentVerifier
    public var log: LogSettings
    /// nil: payments are verified and reserved but never settled (`check-config` warns).
    public var settlement: SettlementSettings?
    public var routeSettlement: [String: RouteSettlement]
    public var facilitator: FacilitatorSettings?
    public var relayer: RelayerSettings?
    /// JSON-RPC endpoints by chain id (the relayer's, and the facilitator path's on-chain checks).
    public var rpcURLs: [UInt64: String]
    /// Secret for the HMAC over the context the backend receives (`backend.hmac_secret`).
    public var backendSecret: String?
    /// Rate limits and free quotas by route.
    public var routeLimits: [String: RouteLimits] = [:]
    /// Peers whose `X-Forwarded-For` is believed (`rate_limiting.trusted_proxies`).
    public var trustedProxies = TrustedProxies()
    /// The admin listener (`admin.listen`) and the SHA-256 of its bearer token.
    public var admin: AdminSettings?

    public init(
        server: ServerSettings = ServerSettings(), routes: [String: RouteRequirements],
        ledger: LedgerSettings = .memory, verifier: PaymentVerifier = PaymentVerifier(), log: LogSettings = LogSettings(),
        settlement: SettlementSettings? = nil, routeSettlement: [String: RouteSettlement] = [:],
        facilitator: FacilitatorSettings? = nil, relayer: RelayerSettings? = nil, rpcURLs: [UInt64: String] = [:]
    ) {
        self.server = server
        self.routes = routes
        self.ledger = ledger
        self.verifier = verifier
        self.log = log
        self.settlement = settlement
        self.routeSettlement = routeSettlement
        self.facilitator = facilitator
        self.relayer = relayer
        self.rpcURLs = rpcURLs
    }
}

/// Where the sidecar listens.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// A unix socket; `mode` is applied after bind so that nginx's worker user can connect.
    case unix(path: String, mode: UInt16)
    case tcp(host: String, port: Int)

    public var description: String {
        switch self {
        case .unix(let path, _): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

public struct ServerSettings: Sendable, Equatable {
    public var listen: [ListenAddress]
    /// NIO event loops; nil means one per core.
    public var eventLoops: Int?
    /// Upper bound on a request's head (request line + headers); larger requests get 431.
    public var maxHeaderBytes: Int
    /// Seconds to let in-flight requests finish on shutdown.
    public var shutdownGraceSeconds: Int
    /// Unix datagram socket where Nginx reports paid requests' upstream statuses (syslog format).
    public var reportSocket: String?
    public var unixSocketMode: UInt16 = 0o660

    public init(
        listen: [ListenAddress] = [.tcp(host: "127.0.0.1", port: 8402)], eventLoops: Int? = nil,
        maxHeaderBytes: Int = 32768, shutdownGraceSeconds: Int = 10
    ) {
        self.listen = listen
        self.eventLoops = eventLoops
        self.maxHeaderBytes = maxHeaderBytes
        self.shutdownGraceSeconds = shutdownGraceSeconds
    }
}

public enum LedgerSettings: Sendable, Equatable {
    /// In-process only, forgotten on restart: for tests and benchmarks, refused by `serve` unless
    /// explicitly allowed.
    case memory
    /// In-process, persisted to an append-only journal file (one host, no servers).
    case embedded(journalPath: String, fsync: Bool)
    /// Shared by every sidecar instance through Redis.
    case redis(url: String, keyPrefix: String)
}

public struct LogSettings: Sendable, Equatable {
    public enum Level: String, Sendable, CaseIterable { case trace, debug, info, notice, warning, error, critical }
    public var level: Level
    /// One JSON line per `/authorize` decision.
    public var decisions: Bool

    public init(level: Level = .info, decisions: Bool = true) {
        self.level = level
        self.decisions = decisions
    }
}

public struct AdminSettings: Sendable, Equatable {
    public var listen: ListenAddress
    /// SHA-256 of the admin token (`x402-sidecar admin hash-token`), never the token itself.
    public var tokenSHA256: [UInt8]

    public init(listen: ListenAddress, tokenSHA256: [UInt8]) {
        self.listen = listen
        self.tokenSHA256 = tokenSHA256
    }
}
