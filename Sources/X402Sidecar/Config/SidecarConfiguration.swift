import X402

/// The validated configuration the sidecar runs with. Built only by `ConfigurationLoader`, which
/// checks the YAML as a whole and reports every problem at once; every value in it is already
/// parsed (listen addresses, the Redis URL, the CDP key, the relayer key), so that building the
/// sidecar from it cannot fail on configuration.
public struct SidecarConfiguration: Sendable {
    public var server: ServerSettings
    /// Routes by name (`X-X402-Route` / `$x402_route`).
    public var routes: [String: RouteRequirements]
    public var ledger: LedgerSettings
    /// The parsed Redis URL when `ledger` is `.redis` (the queue and the rate limiter share it).
    public var redis: RedisSettings?
    public var verifier: PaymentVerifier
    public var log: LogSettings
    /// nil: payments are verified and reserved but never settled (`check-config` warns).
    public var settlement: SettlementSettings?
    public var routeSettlement: [String: RouteSettlement]
    public var facilitator: FacilitatorSettings?
    public var relayer: RelayerSettings?
    /// JSON-RPC endpoints by chain id (the relayer's, and the facilitator path's on-chain checks).
    public var rpcURLs: [UInt64: String]
    /// Signs the context the backend receives (`backend.hmac_secret`, `backend.context_version`).
    public var backendContext: BackendContextSigner?
    /// Rate limits and free quotas by route.
    public var routeLimits: [String: RouteLimits] = [:]
    /// Peers whose `X-Forwarded-For` is believed (`rate_limiting.trusted_proxies`).
    public var trustedProxies = TrustedProxies()
    /// The admin listener (`admin.listen`) and the SHA-256 of its bearer token.
    public var admin: AdminSettings?
    /// Lease tokens: the keyring, lease routes and the routes they open (`leases:`).
    public var leases: LeaseSettings?
    /// Sign-In-With-X: the nonce key and the routes that let paying wallets back in.
    public var signIn: SignInSettings?
    /// Findings that did not refuse the file (printed by `check-config`, logged by `serve`).
    /// Routes that hold payments against the payer's balance (nil: none).
    public var exposure: ExposurePolicy?
    /// How long a payer's balance is cached for exposure control.
    public var balanceCacheSeconds: Int64 = 5
    public var warnings: [ConfigurationProblem] = []

    public init(
        server: ServerSettings = ServerSettings(), routes: [String: RouteRequirements],
        ledger: LedgerSettings = .memory, verifier: PaymentVerifier = PaymentVerifier(),
        log: LogSettings = LogSettings(),
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
