import Logging
import X402

/// Makes the payment decision for one request: pure verification first, then the one store call
/// that makes the authorization single-use.
public final class Authorizer: Sendable {
    public let routes: [String: RouteRequirements]
    public let verifier: PaymentVerifier
    public let ledger: any NonceLedger
    /// Takes granted payments to the chain; nil only in tests of the decision path alone.
    public let settlements: Settlements?
    /// Unix seconds; injectable for tests.
    let now: @Sendable () -> Int64
    /// Seconds past `validBefore` that a reservation is kept (the chain refuses the authorization
    /// after `validBefore`, so this only covers clock differences with the chain).
    let reservationMargin: Int64 = 120

    public init(
        routes: [String: RouteRequirements], verifier: PaymentVerifier, ledger: any NonceLedger,
        settlements: Settlements? = nil, now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }
    ) {
        self.routes = routes
        self.verifier = verifier
        self.ledger = ledger
        self.settlements = settlements
        self.now = now
    }

    /// The part of a decision that needs no I/O: either the final decision, or a verified payment
    /// that must still win its nonce reservation (`reserve`).
    public enum Step: Sendable {
        case decided(Decision)
        case reserve(VerifiedPayment, RouteRequirements)
    }

    public func begin(_ request: AuthorizeRequest) -> Step {
        guard let name = request.route, !name.isEmpty else {
            return .decided(.misconfigured(reason: "no route name: set $x402_route before including x402/protect.conf"))
        }
        guard let route = routes[name] else {
            return .decided(.misconfigured(reason: "unknown route"))
        }
        if request.payment.isEmpty {
            let challenge = route.challenge(resourceURL: request.resourceURL, error: "payment required")
            return .decided(.paymentRequired(challenge, failure: nil))
        }
        var verifier = self.verifier
        if settlements?.policy(name).verify == .facilitator { verifier.checksSignature = false }
        switch verifier.verify(request.payment, route: route, now: now()) {
        case .failure(let failure):
            return .decided(refuse(failure, route: route, request: request))
        case .success(let payment):
            return .reserve(payment, route)
        }
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
        guard let ledger = ledger as? any SynchronousNonceLedger, ledger.decidesWithoutBlocking else { return nil }
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
