import X402

/// The payment steps of the decision: local verification, the facilitator's verdict where the
/// route asks for it, the nonce reservation, settlement intake; and the answers they come to.
extension AuthorizationFlow {
    /// Local verification; then payer-keyed limits, if the route has any.
    mutating func verify(_ route: RouteRequirements, limits: RouteLimits?) -> Action {
        if request.payment.isEmpty {
            return respond(.paymentRequired(challenge(route, error: "payment required"), failure: nil))
        }
        var verifier = policy.verifier
        let mode = policy.verifyMode(route.name)
        if mode == .facilitator { verifier.checksSignature = false }
        let payload: PaymentPayload
        switch policy.replays.decode(request.payment) {
        case .failure(let failure): return refuse(failure, route: route)
        case .success(let decoded): payload = decoded
        }
        switch verifier.verify(payload, route: route, now: policy.now(), alreadyUsed: policy.knownUsed) {
        case .failure(let failure):
            if failure.reason == .nonceAlreadyUsed { policy.replays.remember(request.payment, payload) }
            return refuse(failure, route: route)
        case .success(let payment):
            if let mismatch = extensionEchoMismatch(payment, route: route) {
                return refuse(PaymentFailure(.extensionEchoMismatch, "the \(mismatch) extension came back changed",
                                             payer: payment.payer), route: route)
            }
            guard let limits else { return verifyRemotely(payment, route: route) }
            let late = limits.rules.filter { $0.key == .payer && $0.applies != .unpaid }
            return limit(late, route: route, payer: payment.payer, then: .payment(payment))
        }
    }

    mutating func verifyRemotely(_ payment: VerifiedPayment, route: RouteRequirements) -> Action {
        guard policy.verifyMode(route.name) != .local else { return reserve(payment, route: route) }
        guard policy.hasFacilitator else {
            return respond(.unavailable(reason: "no facilitator configured for verification", retryAfter: 5))
        }
        state = .verifyingRemotely(route, payment)
        return .verifyWithFacilitator(payment, route)
    }

    mutating func reserve(_ payment: VerifiedPayment, route: RouteRequirements) -> Action {
        let grant = Grant(payment: payment, paymentId: policy.makePaymentId())
        let expiresAt = payment.validBefore + policy.reservationMargin
        guard let exposure = policy.exposure else {
            state = .reserving(route, grant)
            return .reserve(payment.nonceKey, token: grant.paymentId, expiresAt: expiresAt)
        }
        guard let amount = ExposureHold.amount(payment.option.amount) else {
            return respond(.misconfigured(reason: "the route's price is not an amount exposure control can hold"))
        }
        guard let checked = exposure.checked[route.name] else {
            // Settled before serving: held without a check, so it counts against the others.
            state = .reserving(route, grant)
            return .reserveHeld(payment.nonceKey, token: grant.paymentId, expiresAt: expiresAt,
                                hold: ExposureHold(amount: amount, limit: nil))
        }
        state = .fetchingBalance(route, grant, amount: amount, cap: checked.maxPending[payment.option.network.caip2])
        return .fetchBalance(BalanceQuery(chainId: payment.option.network.chainId, asset: payment.option.token.address,
                                          payer: payment.payer))
    }

    /// The payer's balance is known: reserve, holding the payment against it.
    mutating func balanceFetched(
        _ answer: Result<UInt128, any Error>, grant: Grant, amount: UInt128, cap: UInt128?, route: RouteRequirements
    ) -> Action {
        guard case .success(let balance) = answer else {
            return respond(.unavailable(reason: "payer balance unavailable", retryAfter: 5))
        }
        let payment = grant.payment
        state = .reserving(route, grant)
        return .reserveHeld(payment.nonceKey, token: grant.paymentId, expiresAt: payment.validBefore + policy.reservationMargin,
                            hold: ExposureHold(amount: amount, limit: cap.map { min($0, balance) } ?? balance))
    }

    mutating func reservedHeld(_ answer: Result<Reservation, any Error>, grant: Grant, route: RouteRequirements)
        -> Action
    {
        switch answer {
        case .success(.reserved):
            return enqueue(grant, route: route)
        case .success(.alreadyUsed):
            return refuse(PaymentFailure(.nonceAlreadyUsed, "this authorization was already used",
                                         payer: grant.payment.payer), route: route)
        case .success(.overLimit(let pending)):
            let message = "the payer's balance does not cover this payment on top of \(pending) pending"
            return refuse(PaymentFailure(.insufficientBalance, message, payer: grant.payment.payer), route: route)
        case .failure:
            return respond(.unavailable(reason: "nonce ledger unavailable", retryAfter: 5))
        }
    }

    mutating func enqueue(_ grant: Grant, route: RouteRequirements) -> Action {
        guard let settings = policy.settlement, let settlement = policy.settlementPolicy(route.name) else {
            return granted(grant, route: route)
        }
        let resource = ResourceInfo(url: request.resourceURL, description: route.description, mimeType: route.mimeType)
        let transition = SettlementLifecycle.queued(
            grant, route: route, policy: settlement, settings: settings, resource: resource, now: policy.now())
        state = .enqueuing(route, grant, transition.job)
        return .enqueue(transition)
    }

    mutating func refuse(_ failure: PaymentFailure, route: RouteRequirements) -> Action {
        respond(refusal(failure, route: route))
    }

    func refusal(_ failure: PaymentFailure, route: RouteRequirements) -> Decision {
        .paymentRequired(challenge(route, error: failure.reason.rawValue), failure: failure)
    }

    /// The route's 402 challenge for this request, declaring the extensions the route offers
    /// (`sign-in-with-x`, with a fresh nonce).
    func challenge(_ route: RouteRequirements, error: String) -> Challenge {
        guard let signIn = policy.signIn, let settings = signIn.routes[route.name] else {
            return route.challenge(resourceURL: request.resourceURL, error: error)
        }
        let declaration = signIn.nonceKey.challenge(
            for: signInResource(route, settings), now: policy.now(), lifetimeSeconds: settings.proofLifetimeSeconds)
        return route.challenge(resourceURL: request.resourceURL, error: error,
                               extensions: Array(#""sign-in-with-x":"#.utf8) + declaration.declarationJSON)
    }

    static func verdict(_ applied: [RouteLimits.Rule], _ outcomes: [GCRA.Outcome]) -> Decision? {
        for (rule, outcome) in zip(applied, outcomes) where !outcome.allowed {
            return .rateLimited(RateLimitNotice(
                policy: rule.name, rule: rule.rule,
                retryAfterSeconds: Int(max(1, (outcome.retryAfterMicros + 999_999) / 1_000_000)),
                resetSeconds: Int(max(1, (outcome.resetMicros + 999_999) / 1_000_000))))
        }
        return nil
    }

    /// A facilitator's reason code as ours (its own when we share it).
    static func reason(_ code: String) -> X402Reason {
        if let known = X402Reason(rawValue: code) { return known }
        if code.contains("signature") { return .invalidSignature }
        if code.contains("balance") { return .insufficientBalance }
        if code.contains("simulation") { return .simulationFailed }
        return .invalidPayload
    }
}
