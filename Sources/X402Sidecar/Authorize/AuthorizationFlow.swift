import X402

/// The decision for one `/authorize` request, as a pure state machine: events in, actions out.
///
/// The executor (`Authorizer`) performs each action against the stores and feeds the answer back
/// as an event, until the flow answers `.respond`. Nothing here does I/O, so every path is
/// unit-tested by feeding events (`AuthorizationFlowTests`).
///
/// Order of a decision: route → address-keyed limits (they protect the challenge path too) →
/// free quota (unpaid only) → local verification → payer-keyed limits → facilitator verification
/// (routes that ask for it) → the atomic nonce reservation → settlement intake → for `before`,
/// inline settlement. A limited or refused request never consumes its authorization.
public struct AuthorizationFlow: Sendable {
    public enum Action: Sendable, Equatable {
        case respond(Decision)
        /// Rate-limit checks, answered with `.limitsChecked`.
        case checkLimits([RateCheck])
        /// One call from a free quota, answered with `.freeTaken`.
        case takeFree(key: String, limit: Int, windowSeconds: Int64)
        /// The facilitator's `/verify`, answered with `.facilitatorAnswered`.
        case verifyWithFacilitator(VerifiedPayment, RouteRequirements)
        /// The atomic nonce reservation, answered with `.reserved`.
        case reserve(NonceKey, token: String, expiresAt: Int64)
        /// The payer's balance (exposure control), answered with `.balanceFetched`.
        case fetchBalance(BalanceQuery)
        /// The nonce reservation with the payment held against the payer's exposure, in one
        /// atomic step, answered with `.reservedHeld`.
        case reserveHeld(NonceKey, token: String, expiresAt: Int64, hold: ExposureHold)
        /// Settlement intake (durably queue the job), answered with `.enqueued`.
        case enqueue(SettlementTransition)
        /// A `before` payment's settlement, answered with `.settledInline`.
        case settleInline(SettlementJob)
        /// Store a transition (queue and ledger together), answered with `.applied`.
        case apply(SettlementTransition)
        /// Give a reservation back (the queue refused the job), answered with `.released`.
        case release(SettlementJob)
        /// A lease's revocation, request count and concurrency slot, answered with `.leaseAdmitted`.
        case admitLease(LeaseUse)
        /// Note a lease just bought (and revoke the one it renews), answered with `.leaseRegistered`.
        case registerLease(LeaseClaims, renewing: LeaseClaims?)
        /// Consume a Sign-In-With-X nonce once, answered with `.signInNonceConsumed`.
        case consumeSignInNonce(String, expiresAt: Int64)
        /// The wallet's payment for this route, answered with `.paidAccessFound`.
        case findPaidAccess(payer: String, route: String, host: String)
        /// Remember that a wallet paid (for Sign-In-With-X), answered with `.paidAccessRecorded`.
        case recordPaidAccess(PaidAccess)
    }

    public enum Event: Sendable {
        case limitsChecked(Result<[GCRA.Outcome], any Error>)
        case freeTaken(Result<Int?, any Error>)
        case facilitatorAnswered(Result<FacilitatorClient.Verdict, any Error>)
        case reserved(Result<Bool, any Error>)
        case balanceFetched(Result<UInt128, any Error>)
        case reservedHeld(Result<Reservation, any Error>)
        case enqueued(Result<Void, any Error>)
        /// `sent`: the transactions the settler recorded, kept with the job (a replaced one may win).
        case settledInline(SettleOutcome, sent: [String] = [])
        case applied
        case released
        case leaseAdmitted(Result<LeaseAdmission, any Error>)
        case leaseRegistered(Result<LeaseRenewal?, any Error>)
        case signInNonceConsumed(Result<Bool, any Error>)
        case paidAccessFound(Result<PaidAccess?, any Error>)
        case paidAccessRecorded
    }

    enum State: Sendable {
        case idle
        /// Waiting for the limits of `applied`; then `next`.
        case limiting(RouteRequirements, applied: [RouteLimits.Rule], next: AfterLimits)
        case takingFree(RouteRequirements, RouteLimits)
        case verifyingRemotely(RouteRequirements, VerifiedPayment)
        case reserving(RouteRequirements, Grant)
        /// Waiting for the payer's balance; the hold's amount and the route's cap.
        case fetchingBalance(RouteRequirements, Grant, amount: UInt128, cap: UInt128?)
        case enqueuing(RouteRequirements, Grant, SettlementJob)
        case settling(RouteRequirements, Grant, SettlementJob)
        /// Waiting for a store write; then this answer (for `.allow` on a lease route: the lease).
        case finishing(Decision, RouteRequirements?)
        case admittingLease(RouteRequirements, LeaseClaims, slot: String?)
        case issuingLease(LeaseIssue)
        case signingIn(RouteRequirements, SIWXEntry, consumed: Bool)
        case recordingPaidAccess(Grant, RouteRequirements)
        case done
    }

    enum AfterLimits: Sendable {
        case freeQuota(RouteLimits)
        case payment(VerifiedPayment)
    }

    let policy: AuthorizationPolicy
    public let request: AuthorizeRequest
    var state: State = .idle

    public init(_ request: AuthorizeRequest, policy: AuthorizationPolicy) {
        self.request = request
        self.policy = policy
    }

    public mutating func start() -> Action {
        guard case .idle = state else { preconditionFailure("flow started twice") }
        guard let name = request.route, !name.isEmpty else {
            return respond(.misconfigured(reason: "no route name: set $x402_route before including x402/protect.conf"))
        }
        guard let route = policy.routes[name] else { return respond(.misconfigured(reason: "unknown route")) }
        guard let limits = policy.limits[name] else { return leaseOrPay(route, limits: nil) }
        let unpaid = request.payment.isEmpty
        let early = limits.rules.filter { $0.key != .payer && ($0.applies == .all || ($0.applies == .unpaid) == unpaid) }
        return limit(early, route: route, payer: nil, then: .freeQuota(limits))
    }

    public mutating func receive(_ event: Event) -> Action {
        switch (state, event) {
        case (.limiting(let route, let applied, let next), .limitsChecked(let answer)):
            switch answer {
            case .success(let outcomes):
                if let limited = Self.verdict(applied, outcomes) { return respond(limited) }
            case .failure:
                // Money-safe either way: fail-closed rules refuse, fail-open ones let it through.
                if applied.contains(where: { !$0.failOpen }) {
                    return respond(.unavailable(reason: "rate limiter unavailable", retryAfter: 5))
                }
            }
            return afterLimits(next, route: route)

        case (.takingFree(let route, let limits), .freeTaken(let answer)):
            // Without the quota's store, ask for payment.
            if case .success(let left?) = answer { return respond(.free(remaining: left)) }
            return verify(route, limits: limits)

        case (.verifyingRemotely(let route, let payment), .facilitatorAnswered(let answer)):
            switch answer {
            case .success(let verdict) where verdict.isValid:
                return reserve(payment, route: route)
            case .success(let verdict):
                let code = verdict.invalidReason ?? "invalid_payload"
                return refuse(PaymentFailure(Self.reason(code), "facilitator: \(code)", payer: payment.payer), route: route)
            case .failure:
                return respond(.unavailable(reason: "facilitator unavailable", retryAfter: 5))
            }

        case (.reserving(let route, let grant), .reserved(let answer)):
            switch answer {
            case .success(true):
                return enqueue(grant, route: route)
            case .success(false):
                let failure = PaymentFailure(.nonceAlreadyUsed, "this authorization was already used",
                                             payer: grant.payment.payer)
                return refuse(failure, route: route)
            case .failure:
                return respond(.unavailable(reason: "nonce ledger unavailable", retryAfter: 5))
            }

        case (.fetchingBalance(let route, let grant, let amount, let cap), .balanceFetched(let answer)):
            return balanceFetched(answer, grant: grant, amount: amount, cap: cap, route: route)

        case (.reserving(let route, let grant), .reservedHeld(let answer)):
            return reservedHeld(answer, grant: grant, route: route)

        case (.enqueuing(let route, let grant, var job), .enqueued(let answer)):
            if case .failure = answer {
                state = .finishing(.unavailable(reason: "settlement queue unavailable", retryAfter: 5), nil)
                return .release(job)
            }
            guard job.mode == .before else { return granted(grant, route: route) }
            job.attempts = 1
            state = .settling(route, grant, job)
            return .settleInline(job)

        case (.settling(let route, var grant, var job), .settledInline(let outcome, let sent)):
            job.noteSent(sent)
            let (transition, verdict) = SettlementLifecycle.settledInline(job, outcome, now: policy.now())
            switch verdict {
            case .serve(let transaction):
                grant.transaction = transaction
                state = .finishing(.allow(grant), route)
            case .unavailable(let reason):
                state = .finishing(.unavailable(reason: reason, retryAfter: 5), nil)
            case .refuse(let reason, let message):
                state = .finishing(refusal(PaymentFailure(reason, message, payer: grant.payment.payer), route: route),
                                   nil)
            }
            return .apply(transition)

        case (.finishing(.allow(let grant), let route?), .applied):
            return granted(grant, route: route)

        case (.finishing(let decision, _), .applied), (.finishing(let decision, _), .released):
            return respond(decision)

        case (.admittingLease(let route, let claims, let slot), .leaseAdmitted(let answer)):
            return leaseAdmitted(answer, claims: claims, slot: slot, route: route)

        case (.issuingLease(let issue), .leaseRegistered(let answer)):
            return leaseRegistered(answer, issue)

        case (.signingIn(let route, let entry, false), .signInNonceConsumed(let answer)):
            return signInNonceConsumed(answer, entry, route: route)

        case (.signingIn(let route, let entry, true), .paidAccessFound(let answer)):
            return paidAccessFound(answer, entry, route: route)

        case (.recordingPaidAccess(let grant, let route), .paidAccessRecorded):
            return issueOrAllow(grant, route: route)

        default:
            preconditionFailure("event \(event) does not belong to state \(state)")
        }
    }

    // MARK: Steps

    mutating func respond(_ decision: Decision) -> Action {
        state = .done
        return .respond(decision)
    }

    mutating func limit(_ rules: [RouteLimits.Rule], route: RouteRequirements, payer: String?,
                                then next: AfterLimits) -> Action {
        let (applied, checks) = policy.checks(rules, route: route.name, request: request, payer: payer)
        guard !checks.isEmpty else { return afterLimits(next, route: route) }
        state = .limiting(route, applied: applied, next: next)
        return .checkLimits(checks)
    }

    mutating func afterLimits(_ next: AfterLimits, route: RouteRequirements) -> Action {
        switch next {
        case .freeQuota(let limits):
            if let lease = presentedLease(route) { return checkLease(lease, route: route) }
            if let proof = presentedSignIn(route) { return checkSignIn(proof, route: route) }
            if request.payment.isEmpty, let free = limits.free,
                let value = policy.keyValue(free.key, request: request, payer: nil)
            {
                state = .takingFree(route, limits)
                return .takeFree(key: policy.storeKey(route: route.name, rule: "free", value: value),
                                 limit: free.calls, windowSeconds: free.windowSeconds)
            }
            return verify(route, limits: limits)
        case .payment(let payment):
            return verifyRemotely(payment, route: route)
        }
    }

    /// A lease, if the request carries one the route takes; else a Sign-In-With-X proof; else payment.
    mutating func leaseOrPay(_ route: RouteRequirements, limits: RouteLimits?) -> Action {
        if let lease = presentedLease(route) { return checkLease(lease, route: route) }
        if let proof = presentedSignIn(route) { return checkSignIn(proof, route: route) }
        return verify(route, limits: limits)
    }
}
