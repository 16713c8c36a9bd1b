/// What the sidecar answers for one request, decided without I/O by protocol code and the stores'
/// answers. Exactly one file (`DecisionResponse.swift` in the sidecar) turns it into HTTP.
public enum Decision: Sendable, Equatable {
    /// Paid: the payment verified and its authorization is reserved for this request.
    case allow(Grant)
    /// Payment needed: none was presented (`failure == nil`) or the one presented was refused.
    case paymentRequired(Challenge, failure: PaymentFailure?)
    /// Refused outright (rate limits, policy), with the status the client should see.
    case refused(status: Int, retryAfter: Int?, reason: String)
    /// The payment path is down. Fail closed: nothing is served.
    case unavailable(reason: String, retryAfter: Int)
    /// The auth request itself is wrong (e.g. an unknown route name): an operator error.
    case misconfigured(reason: String)
    /// Over a rate limit: the client sees 429 with `Retry-After` and the `RateLimit` headers.
    case rateLimited(RateLimitNotice)
    /// Allowed without payment, from the route's free quota.
    case free(remaining: Int)
    /// Let in by a lease token (no payment on this request).
    case leased(LeaseGrant)
    /// A lease token was presented and refused. `challenge`: what to pay instead (nil when paying
    /// would not help, e.g. the lease's concurrency limit).
    case leaseRefused(LeaseFailure, challenge: Challenge?)
    /// A lease was bought at a lease route: the token to hand to the client.
    case leaseIssued(LeaseIssue)
    /// Let in by Sign-In-With-X: a wallet that paid for this route within its access window.
    case signedIn(SignInGrant)
    /// A `SIGN-IN-WITH-X` proof was refused (`reason` is a `siwx_*` code); pay, or sign again.
    case signInRefused(reason: String, message: String, challenge: Challenge)
}

/// A wallet let in by Sign-In-With-X, and the payment that earned it.
public struct SignInGrant: Sendable, Equatable {
    public var payer: String
    public var paymentId: String
    public var amount: String
    public var asset: String
    public var network: String
    /// When the access window of that payment ends.
    public var expiresAt: Int64

    public init(payer: String, paymentId: String, amount: String, asset: String, network: String, expiresAt: Int64) {
        self.payer = payer
        self.paymentId = paymentId
        self.amount = amount
        self.asset = asset
        self.network = network
        self.expiresAt = expiresAt
    }
}

/// A request a lease let in.
public struct LeaseGrant: Sendable, Equatable {
    public var claims: LeaseClaims
    /// The concurrency slot it holds (released when nginx reports the end of the request).
    public var slot: String?
    /// This request's number under the lease (0 when the lease does not count requests).
    public var requests: Int

    public init(claims: LeaseClaims, slot: String?, requests: Int) {
        self.claims = claims
        self.slot = slot
        self.requests = requests
    }
}

/// A lease bought with a payment.
public struct LeaseIssue: Sendable, Equatable {
    public var grant: Grant
    public var claims: LeaseClaims
    /// The signed JWT.
    public var token: String
    /// The lease this one renews (now revoked), if any.
    public var renewed: String?

    public init(grant: Grant, claims: LeaseClaims, token: String, renewed: String? = nil) {
        self.grant = grant
        self.claims = claims
        self.token = token
        self.renewed = renewed
    }
}

/// Which limit refused a request, and when to come back.
public struct RateLimitNotice: Sendable, Equatable {
    /// The rule's name (`RateLimit-Policy` names it).
    public var policy: String
    public var rule: RateRule
    public var retryAfterSeconds: Int
    /// Seconds until the bucket is full again.
    public var resetSeconds: Int

    public init(policy: String, rule: RateRule, retryAfterSeconds: Int, resetSeconds: Int) {
        self.policy = policy
        self.rule = rule
        self.retryAfterSeconds = retryAfterSeconds
        self.resetSeconds = resetSeconds
    }
}

/// A paid request's permission, with what the backend is told about it.
public struct Grant: Sendable, Equatable {
    public var payment: VerifiedPayment
    /// Our id for this payment; it also owns the nonce reservation.
    public var paymentId: String
    /// The settlement transaction, when the payment was settled before the request was allowed.
    public var transaction: String?

    public init(payment: VerifiedPayment, paymentId: String, transaction: String? = nil) {
        self.payment = payment
        self.paymentId = paymentId
        self.transaction = transaction
    }

    /// The `PAYMENT-RESPONSE` (v2) / `X-PAYMENT-RESPONSE` (v1) value once settled: base64 of the
    /// settle response JSON.
    public var settlementResponseHeader: String? {
        guard let transaction else { return nil }
        var json = JSONWriter()
        json.beginObject()
        json.key("success")
        json.bool(true)
        json.field("transaction", transaction)
        json.field("network", payment.version == 1 ? (payment.option.network.v1Name ?? payment.option.network.caip2)
                   : payment.option.network.caip2)
        json.field("payer", payment.payer)
        json.endObject()
        return Base64.encode(json.bytes)
    }
}
