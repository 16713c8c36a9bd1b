import Testing
import X402
@testable import X402Sidecar

/// Drives `AuthorizationFlow` through every path by feeding events, without sockets or stores.
@Suite struct AuthorizationFlowTests {
    static let now: Int64 = 1_800_000_000
    static let route = try! AuthServerTests.route()
    static let rule = try! RateRule.parse("10/s burst 3").get()
    struct Failure: Error {}

    static func policy(
        limits: RouteLimits? = nil, mode: SettlementMode? = nil, verify: VerifyMode = .local, facilitator: Bool = false,
        knownUsed: @escaping @Sendable (NonceKey) -> Bool = { _ in false }
    ) -> AuthorizationPolicy {
        var settings: SettlementSettings?
        if let mode {
            settings = SettlementSettings()
            settings?.mode = mode
        }
        return AuthorizationPolicy(
            routes: ["weather": route], verifier: PaymentVerifier(), limits: limits.map { ["weather": $0] } ?? [:],
            settlement: settings,
            routeSettlement: mode.map { ["weather": RouteSettlement(mode: $0, via: .facilitator, verify: verify)] } ?? [:],
            hasFacilitator: facilitator, now: { now }, makePaymentId: { "pid-1" }, knownUsed: knownUsed)
    }

    static func request(paid: Bool = false, nonce: String = "n1", route: String? = "weather") -> AuthorizeRequest {
        var request = AuthorizeRequest(route: route, uri: "/weather", scheme: "https", host: "api.example.com",
                                       clientAddress: "198.51.100.7")
        if paid {
            let header = AuthServerTests.payer.header(
                paying: Self.route.options[0],
                resource: ResourceInfo(url: "https://api.example.com/weather", description: "Weather",
                                       mimeType: "application/json"),
                now: now, nonce: Keccak256.hash(Array(nonce.utf8)))
            request.payment = PresentedPayment(v2Header: header)
        }
        return request
    }

    static func flow(_ request: AuthorizeRequest, _ policy: AuthorizationPolicy) -> (AuthorizationFlow, AuthorizationFlow.Action) {
        var flow = AuthorizationFlow(request, policy: policy)
        let first = flow.start()
        return (flow, first)
    }

    static func decision(_ action: AuthorizationFlow.Action) -> Decision? {
        if case .respond(let decision) = action { return decision }
        return nil
    }

    static func reason(_ action: AuthorizationFlow.Action) -> X402Reason? {
        if case .respond(.paymentRequired(_, let failure?)) = action { return failure.reason }
        return nil
    }

    static func outcome(_ allowed: Bool) -> GCRA.Outcome {
        GCRA.Outcome(allowed: allowed, newTAT: 0, retryAfterMicros: 1_500_000, remaining: 0, resetMicros: 2_000_000)
    }

    // MARK: Routes and challenges

    @Test func missingOrUnknownRoutesAreOperatorErrors() {
        let (_, none) = Self.flow(Self.request(route: nil), Self.policy())
        #expect(Self.decision(none) == .misconfigured(reason: "no route name: set $x402_route before including x402/protect.conf"))
        let (_, unknown) = Self.flow(Self.request(route: "nope"), Self.policy())
        #expect(Self.decision(unknown) == .misconfigured(reason: "unknown route"))
    }

    @Test func unpaidGetsTheChallengeAndInvalidGetsItsReason() {
        let (_, unpaid) = Self.flow(Self.request(), Self.policy())
        guard case .respond(.paymentRequired(let challenge, nil)) = unpaid else {
            Issue.record("\(unpaid)")
            return
        }
        #expect(challenge == Self.route.challenge(resourceURL: "https://api.example.com/weather", error: "payment required"))
        var bad = Self.request()
        bad.payment = PresentedPayment(v2Header: "not base64!")
        #expect(Self.reason(Self.flow(bad, Self.policy()).1) == .invalidPayload)
    }

    @Test func aKnownUsedAuthorizationIsRefusedBeforeReserving() {
        let (_, action) = Self.flow(Self.request(paid: true), Self.policy(knownUsed: { _ in true }))
        #expect(Self.reason(action) == .nonceAlreadyUsed)
    }

    // MARK: Reservation

    @Test func reservationOutcomes() throws {
        let (flow, action) = Self.flow(Self.request(paid: true), Self.policy())
        guard case .reserve(let key, let token, let expiresAt) = action else {
            Issue.record("\(action)")
            return
        }
        #expect(token == "pid-1")
        #expect(key.payer == AuthServerTests.payer.address.lowercased())
        var won = flow
        guard case .respond(.allow(let grant)) = won.receive(.reserved(.success(true))) else {
            Issue.record("a won reservation without settlement must allow")
            return
        }
        #expect(grant.paymentId == "pid-1" && grant.transaction == nil)
        #expect(expiresAt == grant.payment.validBefore + 120)
        var lost = flow
        #expect(Self.reason(lost.receive(.reserved(.success(false)))) == .nonceAlreadyUsed)
        var down = flow
        #expect(Self.decision(down.receive(.reserved(.failure(Failure()))))
                == .unavailable(reason: "nonce ledger unavailable", retryAfter: 5))
    }

    /// Runs a paid request up to its enqueue action.
    static func enqueued(_ mode: SettlementMode) -> (AuthorizationFlow, SettlementTransition) {
        var (flow, _) = Self.flow(Self.request(paid: true), Self.policy(mode: mode))
        guard case .enqueue(let transition) = flow.receive(.reserved(.success(true))) else {
            preconditionFailure("a won reservation with settlement must enqueue")
        }
        return (flow, transition)
    }

    @Test func deferredAndAfterAreQueuedThenAllowed() {
        let (deferred, job) = Self.enqueued(.deferred)
        #expect(job.job.state == .pending && job.outcome == .enqueued && job.job.id == "pid-1")
        var ok = deferred
        guard case .respond(.allow) = ok.receive(.enqueued(.success(()))) else {
            Issue.record("queued deferred payment must be allowed")
            return
        }
        let (_, held) = Self.enqueued(.after)
        #expect(held.job.state == .held && held.job.holdUntil == Self.now + 30)
    }

    @Test func aQueueFailureReleasesTheReservationAndFailsClosed() {
        var (flow, transition) = Self.enqueued(.deferred)
        #expect(flow.receive(.enqueued(.failure(Failure()))) == .release(transition.job))
        #expect(Self.decision(flow.receive(.released)) == .unavailable(reason: "settlement queue unavailable", retryAfter: 5))
    }

    // MARK: before: inline settlement

    static func settling() -> (AuthorizationFlow, SettlementJob) {
        var (flow, transition) = Self.enqueued(.before)
        #expect(transition.job.dueAt == Self.now + 20 + 5)
        guard case .settleInline(let job) = flow.receive(.enqueued(.success(()))) else {
            preconditionFailure("before must settle inline")
        }
        #expect(job.attempts == 1)
        return (flow, job)
    }

    @Test func beforeSettledServesWithTheTransaction() {
        var (flow, _) = Self.settling()
        guard case .apply(let transition) = flow.receive(.settledInline(.settled(transaction: "0xabc"))) else {
            Issue.record("a settlement must be recorded")
            return
        }
        #expect(transition.job.state == .settled && transition.ledger == .markSettled(transaction: "0xabc"))
        guard case .respond(.allow(let grant)) = flow.receive(.applied) else {
            Issue.record("settled before must allow")
            return
        }
        #expect(grant.transaction == "0xabc")
    }

    @Test func beforePendingServesWithoutATransaction() {
        var (flow, _) = Self.settling()
        guard case .apply(let transition) = flow.receive(.settledInline(.retry(reason: "slow", transaction: "0xdef")))
        else {
            Issue.record("pending must be recorded")
            return
        }
        #expect(transition.outcome == .pending && transition.job.transaction == "0xdef" && transition.ledger == .keep)
        guard case .respond(.allow(let grant)) = flow.receive(.applied) else {
            Issue.record("pending before must be served (the client must not pay twice)")
            return
        }
        #expect(grant.transaction == nil)
    }

    @Test func beforeWithNothingSentIsRefusedAndReleased() {
        var (flow, _) = Self.settling()
        guard case .apply(let transition) = flow.receive(.settledInline(.retry(reason: "down", transaction: nil))) else {
            Issue.record("a release must be recorded")
            return
        }
        #expect(transition.job.state == .released && transition.ledger == .release)
        #expect(Self.decision(flow.receive(.applied)) == .unavailable(reason: "settlement unavailable: down", retryAfter: 5))
    }

    @Test func beforeRefusedByTheChainAsksForPayment() {
        var (flow, _) = Self.settling()
        guard case .apply(let transition) = flow.receive(
            .settledInline(.failed(reason: .insufficientBalance, message: "transfer amount exceeds balance")))
        else {
            Issue.record("a refusal must be recorded")
            return
        }
        #expect(transition.ledger == .release)
        #expect(Self.reason(flow.receive(.applied)) == .insufficientBalance)
        var (used, _) = Self.settling()
        guard case .apply(let kept) = used.receive(.settledInline(.failed(reason: .nonceAlreadyUsed, message: "used")))
        else {
            Issue.record("a refusal must be recorded")
            return
        }
        #expect(kept.ledger == .keep)
        #expect(Self.reason(used.receive(.applied)) == .nonceAlreadyUsed)
    }

    // MARK: Rate limits and free quotas

    @Test func addressLimitsComeFirst() {
        let limits = RouteLimits(rules: [.init(name: "ip", rule: Self.rule, key: .ip)])
        let (flow, action) = Self.flow(Self.request(), Self.policy(limits: limits))
        #expect(action == .checkLimits([RateCheck(key: "x402:rl:{weather|ip|198.51.100.7}", rule: Self.rule)]))
        var refused = flow
        guard case .respond(.rateLimited(let notice)) = refused.receive(.limitsChecked(.success([Self.outcome(false)])))
        else {
            Issue.record("an exhausted limit must answer 429")
            return
        }
        #expect(notice.policy == "ip" && notice.retryAfterSeconds == 2 && notice.resetSeconds == 2)
        var allowed = flow
        guard case .respond(.paymentRequired(_, nil)) = allowed.receive(.limitsChecked(.success([Self.outcome(true)])))
        else {
            Issue.record("within the limit an unpaid request gets the challenge")
            return
        }
    }

    @Test func limiterStoreFailuresFollowEachRulesPolicy() {
        let closed = RouteLimits(rules: [.init(name: "ip", rule: Self.rule, key: .ip)])
        var (flow, _) = Self.flow(Self.request(), Self.policy(limits: closed))
        #expect(Self.decision(flow.receive(.limitsChecked(.failure(Failure()))))
                == .unavailable(reason: "rate limiter unavailable", retryAfter: 5))
        let open = RouteLimits(rules: [.init(name: "ip", rule: Self.rule, key: .ip, failOpen: true)])
        var (passing, _) = Self.flow(Self.request(), Self.policy(limits: open))
        guard case .respond(.paymentRequired) = passing.receive(.limitsChecked(.failure(Failure()))) else {
            Issue.record("a fail-open rule lets the request through")
            return
        }
    }

    @Test func freeQuota() {
        let limits = RouteLimits(free: .init(calls: 3, windowSeconds: 60, key: .ip))
        let (flow, action) = Self.flow(Self.request(), Self.policy(limits: limits))
        #expect(action == .takeFree(key: "x402:rl:{weather|free|198.51.100.7}", limit: 3, windowSeconds: 60))
        var left = flow
        #expect(Self.decision(left.receive(.freeTaken(.success(2)))) == .free(remaining: 2))
        var usedUp = flow
        guard case .respond(.paymentRequired) = usedUp.receive(.freeTaken(.success(nil))) else {
            Issue.record("a used-up quota asks for payment")
            return
        }
        var down = flow
        guard case .respond(.paymentRequired) = down.receive(.freeTaken(.failure(Failure()))) else {
            Issue.record("without the quota's store, payment is asked for")
            return
        }
        // A paid request never takes from the free quota.
        guard case .reserve = Self.flow(Self.request(paid: true), Self.policy(limits: limits)).1 else {
            Issue.record("a paid request goes straight to its reservation")
            return
        }
    }

    @Test func payerLimitsComeAfterVerificationAndBeforeReserving() {
        let limits = RouteLimits(rules: [.init(name: "payer", rule: Self.rule, key: .payer)])
        var (flow, action) = Self.flow(Self.request(paid: true), Self.policy(limits: limits))
        let payer = AuthServerTests.payer.address.lowercased()
        #expect(action == .checkLimits([RateCheck(key: "x402:rl:{weather|payer|\(payer)}", rule: Self.rule)]))
        guard case .reserve = flow.receive(.limitsChecked(.success([Self.outcome(true)]))) else {
            Issue.record("within its limit a payment is reserved")
            return
        }
        // Unpaid requests have no payer: the rule does not apply.
        guard case .respond(.paymentRequired) = Self.flow(Self.request(), Self.policy(limits: limits)).1 else {
            Issue.record("a payer rule does not apply to unpaid requests")
            return
        }
    }

    // MARK: Facilitator verification

    @Test func facilitatorVerification() {
        let policy = Self.policy(mode: .deferred, verify: .both, facilitator: true)
        let (flow, action) = Self.flow(Self.request(paid: true), policy)
        guard case .verifyWithFacilitator(let payment, _) = action else {
            Issue.record("\(action)")
            return
        }
        #expect(payment.payer == AuthServerTests.payer.address.lowercased())
        var valid = flow
        guard case .reserve = valid.receive(.facilitatorAnswered(.success(.init(isValid: true)))) else {
            Issue.record("a valid verdict goes on to the reservation")
            return
        }
        var invalid = flow
        let verdict = FacilitatorClient.Verdict(isValid: false, invalidReason: "invalid_exact_evm_insufficient_balance")
        #expect(Self.reason(invalid.receive(.facilitatorAnswered(.success(verdict)))) == .insufficientBalance)
        var down = flow
        #expect(Self.decision(down.receive(.facilitatorAnswered(.failure(Failure()))))
                == .unavailable(reason: "facilitator unavailable", retryAfter: 5))
        let none = Self.policy(mode: .deferred, verify: .facilitator, facilitator: false)
        #expect(Self.decision(Self.flow(Self.request(paid: true), none).1)
                == .unavailable(reason: "no facilitator configured for verification", retryAfter: 5))
    }
}
