import X402

/// What the decision flow knows besides the request: the routes and their limits, how each
/// route's payments are verified and settled, and the clock and id source (injectable, so the
/// flow is deterministic in tests). Built once from the configuration; shared by every request.
public final class AuthorizationPolicy: Sendable {
    public let routes: [String: RouteRequirements]
    public let verifier: PaymentVerifier
    /// Rate limits and free quotas by route (only non-empty ones), when a limiter is configured.
    public let limits: [String: RouteLimits]
    public let trustedProxies: TrustedProxies
    let limitKeyPrefix: String
    /// nil: payments are verified and reserved but never settled (a warning at start-up).
    public let settlement: SettlementSettings?
    public let routeSettlement: [String: RouteSettlement]
    /// Whether a facilitator is configured (routes with `verify: facilitator | both` need one).
    let hasFacilitator: Bool
    /// Seconds past `validBefore` that a reservation is kept (the chain refuses the authorization
    /// after `validBefore`, so this only covers clock differences with the chain).
    let reservationMargin: Int64 = 120
    /// Unix seconds.
    let now: @Sendable () -> Int64
    /// Payment ids: they name a payment in logs and to the backend and own its nonce reservation.
    let makePaymentId: @Sendable () -> String
    /// Lease keys, lease routes and the routes they open.
    public let leases: LeaseSettings?
    /// Sign-In-With-X: the nonce key and the routes that offer it.
    public let signIn: SignInSettings?
    /// An in-process peek at the nonce ledger (`NonceLedger.isKnownUsed`): it only ever refuses.
    let knownUsed: @Sendable (NonceKey) -> Bool
    /// Decoded payloads of headers refused as already used (a replay flood decodes once).
    let replays = ReplayedPayloads()
    /// Exposure control: nil when no route serves before it is paid (or every such route says
    /// `exposure: unchecked`); then reservations hold nothing.
    public let exposure: ExposurePolicy?

    public init(
        routes: [String: RouteRequirements], verifier: PaymentVerifier, limits: [String: RouteLimits] = [:],
        trustedProxies: TrustedProxies = TrustedProxies(), limitKeyPrefix: String = "x402",
        settlement: SettlementSettings? = nil, routeSettlement: [String: RouteSettlement] = [:],
        hasFacilitator: Bool = false, leases: LeaseSettings? = nil, signIn: SignInSettings? = nil,
        exposure: ExposurePolicy? = nil, now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() },
        makePaymentId: @escaping @Sendable () -> String = { PaymentId.make() },
        knownUsed: @escaping @Sendable (NonceKey) -> Bool = { _ in false }
    ) {
        self.routes = routes
        self.verifier = verifier
        self.limits = limits.filter { !$0.value.isEmpty }
        self.trustedProxies = trustedProxies
        self.limitKeyPrefix = limitKeyPrefix
        self.settlement = settlement
        self.routeSettlement = routeSettlement
        self.hasFacilitator = hasFacilitator
        self.leases = leases
        self.signIn = signIn
        self.exposure = exposure
        self.now = now
        self.makePaymentId = makePaymentId
        self.knownUsed = knownUsed
    }

    func settlementPolicy(_ route: String) -> RouteSettlement? {
        guard let settlement else { return nil }
        return routeSettlement[route] ?? RouteSettlement(mode: settlement.mode, via: settlement.via)
    }

    /// How a route's payments are verified (local unless its settlement says otherwise).
    func verifyMode(_ route: String) -> VerifyMode { settlementPolicy(route)?.verify ?? .local }

    /// The store key of one rule for one client: `prefix:rl:{route|rule|value}` (one hash slot).
    public func storeKey(route: String, rule: String, value: String) -> String {
        "\(limitKeyPrefix):rl:{\(route)|\(rule)|\(value)}"
    }

    /// The client identity a rule keys on, or nil when the request has none (then the rule does
    /// not apply). Header values (API keys, leases) are stored hashed.
    func keyValue(_ key: RouteLimits.Rule.Key, request: AuthorizeRequest, payer: String?) -> String? {
        switch key {
        case .ip:
            return trustedProxies.clientAddress(peer: request.clientAddress, forwardedFor: request.forwardedFor)
        case .payer:
            return payer
        case .lease:
            return request.keyHeaders["x-x402-lease"].map(Self.hashed)
        case .header(let name):
            return request.keyHeaders[name.lowercased()].map(Self.hashed)
        }
    }

    static func hashed(_ value: String) -> String {
        Hex.encode(OpenSSL.sha256(Array(value.utf8)).prefix(16), prefix: false)
    }

    /// The rules of `rules` that apply to this request, with their store checks.
    func checks(_ rules: [RouteLimits.Rule], route: String, request: AuthorizeRequest, payer: String?)
        -> (applied: [RouteLimits.Rule], checks: [RateCheck])
    {
        var applied: [RouteLimits.Rule] = []
        var checks: [RateCheck] = []
        for rule in rules {
            guard let value = keyValue(rule.key, request: request, payer: payer) else { continue }
            applied.append(rule)
            checks.append(RateCheck(key: storeKey(route: route, rule: rule.name, value: value), rule: rule.rule))
        }
        return (applied, checks)
    }
}

/// Which routes check a payer's balance before serving, and their caps.
public struct ExposurePolicy: Sendable, Equatable {
    /// Routes whose payments are held against the payer's balance: `deferred` and `after` routes
    /// (and lease routes settling later) unless they say `exposure: unchecked`.
    public var checked: [String: ExposureRoute]

    public init(checked: [String: ExposureRoute]) {
        self.checked = checked
    }
}

/// One checked route's cap on pending exposure (`max_pending_per_payer`), by CAIP-2 network.
public struct ExposureRoute: Sendable, Equatable {
    public var maxPending: [String: UInt128]

    public init(maxPending: [String: UInt128] = [:]) {
        self.maxPending = maxPending
    }
}

/// Payment ids: 16 random bytes, hex. They must not be guessable.
public enum PaymentId {
    public static func make() -> String { Hex.encode(OpenSSL.randomBytes(16), prefix: false) }
}
