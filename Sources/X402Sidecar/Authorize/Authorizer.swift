import Logging
import X402

/// Runs `AuthorizationFlow` against the stores: the one executor of every decision.
///
/// Each action goes to its store, and the store says how it answers (`StoreAnswer`): in place,
/// and the flow goes on right here — on the event loop, for in-process stores — or with work to
/// await, and the rest of the decision runs on a task (`resume`). There is no second copy of any
/// step for either case.
public final class Authorizer: Sendable {
    public let policy: AuthorizationPolicy
    public let ledger: any NonceLedger
    /// Takes granted payments to the chain; nil only when no settlement is configured.
    public let settlements: Settlements?
    public let limiter: (any RateLimiter)?
    /// Revocations, request counts and concurrency slots of leases (when `leases:` is configured).
    public let leaseStore: (any LeaseStore)?
    /// Payers' balances, for exposure control (`policy.exposure`).
    public let balances: PayerBalances?
    let logger: Logger
    let metrics: SidecarMetrics

    public var routes: [String: RouteRequirements] { policy.routes }
    public var limits: [String: RouteLimits] { policy.limits }

    public init(policy: AuthorizationPolicy, ledger: any NonceLedger, settlements: Settlements? = nil,
                limiter: (any RateLimiter)? = nil, leaseStore: (any LeaseStore)? = nil,
                balances: PayerBalances? = nil,
                logger: Logger = Logger(label: "x402.sidecar"), metrics: SidecarMetrics? = nil) {
        self.leaseStore = leaseStore
        self.balances = balances
        self.metrics = metrics ?? settlements?.metrics ?? SidecarMetrics(routes: Array(policy.routes.keys))
        self.policy = policy
        self.ledger = ledger
        self.settlements = settlements
        self.limiter = limiter
        self.logger = logger
    }

    /// The policy from its parts, with the ledger's in-process peek for replays.
    public convenience init(
        routes: [String: RouteRequirements], verifier: PaymentVerifier, ledger: any NonceLedger,
        settlements: Settlements? = nil, limits: [String: RouteLimits] = [:], limiter: (any RateLimiter)? = nil,
        trustedProxies: TrustedProxies = TrustedProxies(), limitKeyPrefix: String = "x402",
        leases: LeaseSettings? = nil, signIn: SignInSettings? = nil, leaseStore: (any LeaseStore)? = nil,
        exposure: ExposurePolicy? = nil, balances: PayerBalances? = nil,
        logger: Logger = Logger(label: "x402.sidecar"),
        now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }
    ) {
        let policy = AuthorizationPolicy(
            routes: routes, verifier: verifier, limits: limiter == nil ? [:] : limits, trustedProxies: trustedProxies,
            limitKeyPrefix: limitKeyPrefix, settlement: settlements?.settings, routeSettlement: settlements?.routes ?? [:],
            hasFacilitator: settlements?.facilitator != nil, leases: leases, signIn: signIn, exposure: exposure, now: now,
            knownUsed: { ledger.isKnownUsed($0) })
        self.init(policy: policy, ledger: ledger, settlements: settlements, limiter: limiter,
                  leaseStore: leases == nil && signIn == nil ? nil : (leaseStore ?? EmbeddedLeaseStore()),
                  balances: balances, logger: logger)
    }

    /// Where a decision stands after `start`.
    public enum Progress: Sendable {
        case decided(Decision)
        /// A store must be awaited: hand both to `resume` on a task.
        case suspended(AuthorizationFlow, @Sendable () async -> AuthorizationFlow.Event)
    }

    /// Decides as far as the stores answer in place (call it from the event loop).
    public func start(_ request: AuthorizeRequest) -> Progress {
        var flow = AuthorizationFlow(request, policy: policy)
        return drive(&flow, flow.start())
    }

    /// Finishes a suspended decision.
    public func resume(_ flow: AuthorizationFlow, _ work: @Sendable () async -> AuthorizationFlow.Event) async
        -> Decision
    {
        var flow = flow
        var event = await work()
        while true {
            switch drive(&flow, flow.receive(event)) {
            case .decided(let decision): return decision
            case .suspended(let next, let more):
                flow = next
                event = await more()
            }
        }
    }

    /// The whole decision, for callers that are on a task anyway.
    public func decide(_ request: AuthorizeRequest) async -> Decision {
        switch start(request) {
        case .decided(let decision): return decision
        case .suspended(let flow, let work): return await resume(flow, work)
        }
    }

    private func drive(_ flow: inout AuthorizationFlow, _ first: AuthorizationFlow.Action) -> Progress {
        var action = first
        while true {
            if case .respond(let decision) = action { return .decided(decision) }
            switch perform(action, request: flow.request) {
            case .ready(let event): action = flow.receive(event)
            case .suspending(let work): return .suspended(flow, work)
            }
        }
    }

    private enum Step {
        case ready(AuthorizationFlow.Event)
        case suspending(@Sendable () async -> AuthorizationFlow.Event)
    }

    private func perform(_ action: AuthorizationFlow.Action, request: AuthorizeRequest) -> Step {
        switch action {
        case .respond:
            preconditionFailure("respond is not performed")
        case .checkLimits(let checks):
            guard let limiter else { return .ready(.limitsChecked(.success([]))) }
            return step(limiter.check(checks)) { [self] answer in
                if case .failure(let error) = answer { limiterFailed("rate limiter store unavailable", error, request) }
                return .limitsChecked(answer)
            }
        case .takeFree(let key, let limit, let windowSeconds):
            guard let limiter else { return .ready(.freeTaken(.success(nil))) }
            return step(limiter.takeFree(key: key, limit: limit, windowSeconds: windowSeconds)) { [self] answer in
                if case .failure(let error) = answer {
                    limiterFailed("free quota store unavailable; asking for payment", error, request)
                }
                return .freeTaken(answer)
            }
        case .verifyWithFacilitator(let payment, let route):
            return .suspending { [self] in .facilitatorAnswered(await facilitatorVerdict(payment, route, request)) }
        case .reserve(let key, let token, let expiresAt):
            return step(ledger.reserve(key, token: token, expiresAt: expiresAt)) { [logger] answer in
                if case .failure(let error) = answer {
                    logger.warning("nonce ledger unavailable; failing closed", metadata: ["error": "\(error)"])
                }
                return .reserved(answer)
            }
        case .fetchBalance(let query):
            guard let balances else {
                return .ready(.balanceFetched(.failure(BalanceError(description: "no balance source configured"))))
            }
            return step(balances.balance(query)) { [logger] answer in
                if case .failure(let error) = answer {
                    logger.warning("payer balance unavailable; failing closed", metadata: [
                        "payer": "\(query.payer)", "chain_id": "\(query.chainId)", "error": "\(error)"])
                }
                return .balanceFetched(answer)
            }
        case .reserveHeld(let key, let token, let expiresAt, let hold):
            return step(ledger.reserve(key, token: token, expiresAt: expiresAt, holding: hold)) { [logger] answer in
                if case .failure(let error) = answer {
                    logger.warning("nonce ledger unavailable; failing closed", metadata: ["error": "\(error)"])
                }
                return .reservedHeld(answer)
            }
        case .enqueue(let transition):
            guard let settlements else { preconditionFailure("enqueue without settlements") }
            return step(settlements.queue.put(transition.job)) { [logger] answer in
                switch answer {
                case .success:
                    settlements.metrics.count(transition.outcome)
                    if transition.job.mode != .before { settlements.signal() }
                case .failure(let error):
                    logger.error("settlement queue refused a job; failing closed", metadata: [
                        "payment_id": "\(transition.job.id)", "error": "\(error)"])
                }
                return .enqueued(answer)
            }
        case .settleInline(let job):
            guard let settlements else { preconditionFailure("settlement without settlements") }
            return .suspending {
                let (outcome, sent) = await settlements.settleInline(job)
                return .settledInline(outcome, sent: sent)
            }
        case .apply(let transition):
            guard let settlements else { preconditionFailure("transition without settlements") }
            return .suspending {
                await settlements.recorder.apply(transition)
                return .applied
            }
        case .release(let job):
            guard let settlements else { preconditionFailure("release without settlements") }
            return .suspending {
                await settlements.recorder.change(.release, job)
                return .released
            }
        case .admitLease(let use):
            guard let leaseStore else { return .ready(.leaseAdmitted(.failure(SettlementIntakeError.noLeaseStore))) }
            return step(leaseStore.admit(use, now: policy.now())) { [logger] answer in
                if case .failure(let error) = answer {
                    logger.warning("lease store unavailable; failing closed", metadata: ["error": "\(error)"])
                }
                return .leaseAdmitted(answer)
            }
        case .consumeSignInNonce(let nonce, let expiresAt):
            guard let leaseStore else { return .ready(.signInNonceConsumed(.failure(SettlementIntakeError.noLeaseStore))) }
            return step(leaseStore.consumeSIWXNonce(nonce, expiresAt: expiresAt)) { [logger] answer in
                if case .failure(let error) = answer {
                    logger.warning("sign-in store unavailable; failing closed", metadata: ["error": "\(error)"])
                }
                return .signInNonceConsumed(answer)
            }
        case .findPaidAccess(let payer, let route, let host):
            guard let leaseStore else { return .ready(.paidAccessFound(.failure(SettlementIntakeError.noLeaseStore))) }
            return step(leaseStore.paidAccess(payer: payer, route: route, host: host, now: policy.now())) { answer in
                .paidAccessFound(answer)
            }
        case .recordPaidAccess(let access):
            guard let leaseStore else { return .ready(.paidAccessRecorded) }
            return step(leaseStore.recordPaidAccess(access)) { [logger] answer in
                if case .failure(let error) = answer {
                    // The payment stands; only a later sign-in will not find it (the wallet pays again).
                    logger.error("sign-in store did not record a payment", metadata: [
                        "payment_id": "\(access.paymentID)", "payer": "\(access.payer)", "error": "\(error)"])
                }
                return .paidAccessRecorded
            }
        case .registerLease(let claims, let renewing):
            guard let leaseStore else { return .ready(.leaseRegistered(.success(nil))) }
            return .suspending { [logger] in
                do {
                    try await leaseStore.register(claims)
                    guard let renewing else { return .leaseRegistered(.success(nil)) }
                    return .leaseRegistered(.success(
                        try await leaseStore.renew(jti: renewing.jti, successor: claims.jti, expiresAt: renewing.expiresAt)))
                } catch {
                    logger.error("lease store did not record a lease that was paid for; it is issued anyway", metadata: [
                        "lease_id": "\(claims.jti)", "payer": "\(claims.payer)", "error": "\(error)"])
                    return .leaseRegistered(.failure(error))
                }
            }
        }
    }

    @inline(__always)
    private func step<Value>(
        _ answer: StoreAnswer<Value>,
        _ event: @escaping @Sendable (Result<Value, any Error>) -> AuthorizationFlow.Event
    ) -> Step {
        switch answer {
        case .ready(let result):
            return .ready(event(result))
        case .suspending(let work):
            return .suspending {
                do { return event(.success(try await work())) } catch { return event(.failure(error)) }
            }
        }
    }

    private func limiterFailed(_ message: Logger.Message, _ error: any Error, _ request: AuthorizeRequest) {
        metrics.limiterFailures.increment()
        logger.warning(message, metadata: ["error": "\(error)", "route": "\(request.route ?? "-")"])
    }

    private func facilitatorVerdict(_ payment: VerifiedPayment, _ route: RouteRequirements, _ request: AuthorizeRequest)
        async -> Result<FacilitatorClient.Verdict, any Error>
    {
        guard let facilitator = settlements?.facilitator else {
            return .failure(SettlementIntakeError.noFacilitator)
        }
        let resource = ResourceInfo(url: request.resourceURL, description: route.description, mimeType: route.mimeType)
        let (payload, requirements) = SettlementJob.facilitatorParts(payment, resource: resource)
        do {
            return .success(try await facilitator.verify(
                SettlementJob.facilitatorRequest(version: payment.version, payload: payload, requirements: requirements)))
        } catch {
            logger.warning("facilitator /verify failed; failing closed", metadata: ["error": "\(error)"])
            return .failure(error)
        }
    }

    /// The store key of one rule for one client (admin inspection).
    func storeKey(route: String, rule: String, value: String) -> String {
        policy.storeKey(route: route, rule: rule, value: value)
    }

    static func hashed(_ value: String) -> String { AuthorizationPolicy.hashed(value) }
}
