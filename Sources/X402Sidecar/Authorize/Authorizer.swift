import Logging
import Synchronization
import X402

/// Makes the payment decision for one request: pure verification first, then the one store call
/// that makes the authorization single-use.
public final class Authorizer: Sendable {
    public let routes: [String: RouteRequirements]
    public let verifier: PaymentVerifier
    public let ledger: any NonceLedger
    /// `ledger`, when it is in-process: it can answer without suspending (cast once, not per request).
    let synchronousLedger: (any SynchronousNonceLedger)?
    /// Takes granted payments to the chain; nil only in tests of the decision path alone.
    public let settlements: Settlements?
    /// Rate limits and free quotas by route, the store they live in, and whose `X-Forwarded-For`
    /// to believe.
    public let limits: [String: RouteLimits]
    public let limiter: (any RateLimiter)?
    public let trustedProxies: TrustedProxies
    let limitKeyPrefix: String
    let logger: Logger
    /// Store failures of the rate limiter (metrics).
    let limiterFailures = Atomic<Int>(0)
    /// Unix seconds; injectable for tests.
    let now: @Sendable () -> Int64
    /// Seconds past `validBefore` that a reservation is kept (the chain refuses the authorization
    /// after `validBefore`, so this only covers clock differences with the chain).
    let reservationMargin: Int64 = 120

    public init(
        routes: [String: RouteRequirements], verifier: PaymentVerifier, ledger: any NonceLedger,
        settlements: Settlements? = nil, limits: [String: RouteLimits] = [:], limiter: (any RateLimiter)? = nil,
        trustedProxies: TrustedProxies = TrustedProxies(), limitKeyPrefix: String = "x402",
        logger: Logger = Logger(label: "x402.sidecar"),
        now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }
    ) {
        self.routes = routes
        self.verifier = verifier
        self.ledger = ledger
        self.synchronousLedger = ledger as? any SynchronousNonceLedger
        self.settlements = settlements
        self.limits = limits.filter { !$0.value.isEmpty }
        self.limiter = limiter
        self.trustedProxies = trustedProxies
        self.limitKeyPrefix = limitKeyPrefix
        self.logger = logger
        self.now = now
    }

    /// The part of a decision that needs no I/O: either the final decision, or a verified payment
    /// that must still win its nonce reservation (`reserve`).
    public enum Step: Sendable {
        case decided(Decision)
        case reserve(VerifiedPayment, RouteRequirements)
        /// The route has rate limits or a free quota: the whole decision goes to `decideLimited`.
        case limited(RouteRequirements, RouteLimits)
    }

    public func begin(_ request: AuthorizeRequest) -> Step {
        guard let name = request.route, !name.isEmpty else {
            return .decided(.misconfigured(reason: "no route name: set $x402_route before including x402/protect.conf"))
        }
        guard let route = routes[name] else {
            return .decided(.misconfigured(reason: "unknown route"))
        }
        if let limits = limits[name], limiter != nil {
            return .limited(route, limits)
        }
        switch check(request, route: route) {
        case .failure(let outcome): return .decided(outcome.decision)
        case .success(let payment): return .reserve(payment, route)
        }
    }

    /// Local verification, or the decision that ends the request (challenge or refusal).
    private func check(_ request: AuthorizeRequest, route: RouteRequirements) -> Result<VerifiedPayment, DecisionError> {
        let name = route.name
        if request.payment.isEmpty {
            let challenge = route.challenge(resourceURL: request.resourceURL, error: "payment required")
            return .failure(DecisionError(.paymentRequired(challenge, failure: nil)))
        }
        var verifier = self.verifier
        if settlements?.policy(name).verify == .facilitator { verifier.checksSignature = false }
        switch verifier.verify(request.payment, route: route, now: now(),
                               alreadyUsed: { self.synchronousLedger?.isUsedImmediately($0) ?? false }) {
        case .failure(let failure):
            return .failure(DecisionError(refuse(failure, route: route, request: request)))
        case .success(let payment):
            return .success(payment)
        }
    }

    struct DecisionError: Error {
        var decision: Decision
        init(_ decision: Decision) { self.decision = decision }
    }

    // MARK: Rate limits and free quotas

    /// A route with limits: address-keyed rules first (they also protect the challenge path),
    /// then the free quota for unpaid requests, then payer-keyed rules once the payment verifies,
    /// and only then the nonce reservation (a limited request never consumes its authorization).
    public func decideLimited(_ request: AuthorizeRequest, route: RouteRequirements, limits: RouteLimits) async -> Decision {
        let unpaid = request.payment.isEmpty
        let early = limits.rules.filter { $0.key != .payer && ($0.applies == .all || ($0.applies == .unpaid) == unpaid) }
        if let decision = await enforce(early, route: route, request: request, payer: nil) { return decision }
        if unpaid, let free = limits.free, let limiter, let value = keyValue(free.key, request: request, payer: nil) {
            do {
                if let left = try await limiter.takeFree(
                    key: storeKey(route: route.name, rule: "free", value: value), limit: free.calls,
                    windowSeconds: free.windowSeconds)
                {
                    return .free(remaining: left)
                }
            } catch {
                // Money-safe either way: without the quota's store, ask for payment.
                limiterFailures.add(1, ordering: .relaxed)
                logger.warning("free quota store unavailable; asking for payment", metadata: ["error": "\(error)"])
            }
        }
        let payment: VerifiedPayment
        switch check(request, route: route) {
        case .failure(let outcome): return outcome.decision
        case .success(let verified): payment = verified
        }
        let late = limits.rules.filter { $0.key == .payer && $0.applies != .unpaid }
        if let decision = await enforce(late, route: route, request: request, payer: payment.payer) { return decision }
        return await reserve(payment, route: route, request: request)
    }

    /// The store key of one rule for one client: `prefix:rl:{route|rule|value}` (one hash slot).
    func storeKey(route: String, rule: String, value: String) -> String {
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

    private func enforce(_ rules: [RouteLimits.Rule], route: RouteRequirements, request: AuthorizeRequest, payer: String?)
        async -> Decision?
    {
        guard let limiter else { return nil }
        let (applied, checks) = checks(rules, route: route, request: request, payer: payer)
        guard !checks.isEmpty else { return nil }
        do {
            return verdict(applied, try await limiter.check(checks))
        } catch {
            return storeFailure(applied, route: route, error: error)
        }
    }

    private func checks(_ rules: [RouteLimits.Rule], route: RouteRequirements, request: AuthorizeRequest, payer: String?)
        -> ([RouteLimits.Rule], [RateCheck])
    {
        var applied: [RouteLimits.Rule] = []
        var checks: [RateCheck] = []
        for rule in rules {
            guard let value = keyValue(rule.key, request: request, payer: payer) else { continue }
            applied.append(rule)
            checks.append(RateCheck(key: storeKey(route: route.name, rule: rule.name, value: value), rule: rule.rule))
        }
        return (applied, checks)
    }

    private func verdict(_ applied: [RouteLimits.Rule], _ outcomes: [GCRA.Outcome]) -> Decision? {
        for (rule, outcome) in zip(applied, outcomes) where !outcome.allowed {
            return .rateLimited(RateLimitNotice(
                policy: rule.name, rule: rule.rule,
                retryAfterSeconds: Int(max(1, (outcome.retryAfterMicros + 999_999) / 1_000_000)),
                resetSeconds: Int(max(1, (outcome.resetMicros + 999_999) / 1_000_000))))
        }
        return nil
    }

    private func storeFailure(_ applied: [RouteLimits.Rule], route: RouteRequirements, error: any Error) -> Decision? {
        limiterFailures.add(1, ordering: .relaxed)
        let closed = applied.filter { !$0.failOpen }
        logger.warning("rate limiter store unavailable", metadata: [
            "error": "\(error)", "route": "\(route.name)",
            "policy": "\(closed.isEmpty ? "fail-open: allowed" : "fail-closed: refused")"])
        if closed.isEmpty { return nil }
        return .unavailable(reason: "rate limiter unavailable", retryAfter: 5)
    }

    /// An unpaid request on a route limited in process (the embedded store): decided on the
    /// event loop, like an unlimited one. nil when it needs the asynchronous path.
    public func decideLimitedImmediately(_ request: AuthorizeRequest, route: RouteRequirements, limits: RouteLimits)
        -> Decision?
    {
        guard request.payment.isEmpty, limits.free == nil, let limiter = limiter as? EmbeddedRateLimiter else { return nil }
        let early = limits.rules.filter { $0.key != .payer && $0.applies != .paid }
        let (applied, checks) = checks(early, route: route, request: request, payer: nil)
        if !checks.isEmpty, let limited = verdict(applied, limiter.checkImmediately(checks)) { return limited }
        return .paymentRequired(route.challenge(resourceURL: request.resourceURL, error: "payment required"), failure: nil)
    }

    /// Claims the authorization for this request. Fails closed when the ledger is unreachable.
    public func reserve(_ payment: VerifiedPayment, route: RouteRequirements, request: AuthorizeRequest) async -> Decision {
        if let refusal = await settlements?.facilitatorVerdict(payment, route: route, request: request) { return refusal }
        let paymentId = PaymentId.make()
        let won: Result<Bool, any Error>
        do {
            won = .success(
                try await ledger.reserve(payment.nonceKey, token: paymentId, expiresAt: payment.validBefore + reservationMargin))
        } catch {
            won = .failure(error)
        }
        let decision = outcome(won, payment: payment, paymentId: paymentId, route: route, request: request)
        guard case .allow(let grant) = decision, let settlements else { return decision }
        return await settlements.accept(grant, route: route, request: request)
    }

    /// The same, answered in place when the ledger is in-process and cannot block; `nil` otherwise.
    public func reserveImmediately(_ payment: VerifiedPayment, route: RouteRequirements, request: AuthorizeRequest)
        -> Decision?
    {
        guard let ledger = synchronousLedger, ledger.decidesWithoutBlocking else { return nil }
        if let settlements, !settlements.acceptsImmediately(route.name) { return nil }
        let paymentId = PaymentId.make()
        let won = Result {
            try ledger.reserveImmediately(payment.nonceKey, token: paymentId, expiresAt: payment.validBefore + reservationMargin)
        }
        let decision = outcome(won, payment: payment, paymentId: paymentId, route: route, request: request)
        guard case .allow(let grant) = decision, let settlements else { return decision }
        return settlements.acceptImmediately(grant, route: route, request: request) ?? decision
    }

    private func outcome(
        _ won: Result<Bool, any Error>, payment: VerifiedPayment, paymentId: String, route: RouteRequirements,
        request: AuthorizeRequest
    ) -> Decision {
        switch won {
        case .success(true):
            return .allow(Grant(payment: payment, paymentId: paymentId))
        case .success(false):
            let failure = PaymentFailure(.nonceAlreadyUsed, "this authorization was already used", payer: payment.payer)
            return refuse(failure, route: route, request: request)
        case .failure:
            return .unavailable(reason: "nonce ledger unavailable", retryAfter: 5)
        }
    }

    /// Both steps, for callers that do not need the synchronous fast path.
    public func decide(_ request: AuthorizeRequest) async -> Decision {
        switch begin(request) {
        case .decided(let decision): return decision
        case .reserve(let payment, let route): return await reserve(payment, route: route, request: request)
        case .limited(let route, let limits): return await decideLimited(request, route: route, limits: limits)
        }
    }

    private func refuse(_ failure: PaymentFailure, route: RouteRequirements, request: AuthorizeRequest) -> Decision {
        .paymentRequired(route.challenge(resourceURL: request.resourceURL, error: failure.reason.rawValue), failure: failure)
    }
}

/// Payment ids: 16 random bytes, hex. They name a payment in logs and to the backend, and own the
/// nonce reservation, so they must not be guessable.
enum PaymentId {
    static func make() -> String { Hex.encode(OpenSSL.randomBytes(16), prefix: false) }
}
