import NIOHTTP1
import X402

/// The one place where decisions become HTTP.
///
/// Nginx's `auth_request` lets 2xx through, denies on 401/403, and turns every other status into
/// a 500. So the sidecar never answers 402, 429 or 503 itself: it answers 401 (payment needed) or
/// 403 (refused), puts the status the client must see in `X-X402-Status`, and Nginx's named
/// locations (or our module) rebuild the real answer from these headers.
///
/// The v1 challenge body travels in the `X-X402-Challenge` header as ASCII-only JSON so that Nginx
/// can `return 402 $x402_challenge;` from a single round trip (a second `/challenge` call would
/// double the cost of every unpaid request). It is also the response body, for direct callers.
public struct DecisionResponse: Sendable, Equatable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: String

    public enum Header {
        public static let status = "X-X402-Status"
        public static let reason = "X-X402-Reason"
        public static let challenge = "X-X402-Challenge"
        public static let paymentRequired = "PAYMENT-REQUIRED"
        public static let payer = "X-X402-Payer"
        public static let amount = "X-X402-Amount"
        public static let asset = "X-X402-Asset"
        public static let network = "X-X402-Network"
        public static let paymentId = "X-X402-Payment-Id"
        public static let version = "X-X402-Version"
        public static let transaction = "X-X402-Transaction"
        public static let timestamp = "X-X402-Timestamp"
        public static let free = "X-X402-Free"
        public static let freeRemaining = "X-X402-Free-Remaining"
        public static let signature = "X-X402-Signature"
        public static let contextVersion = "X-X402-Context-Version"
        public static let paymentResponse = "PAYMENT-RESPONSE"
        public static let paymentResponseV1 = "X-PAYMENT-RESPONSE"
        public static let lease = "X-X402-Lease"
        public static let leaseId = "X-X402-Lease-Id"
        public static let leaseExpires = "X-X402-Lease-Expires"
        public static let signedIn = "X-X402-Signed-In"
    }

    /// - Parameter backendContext: signs an allow answer's context, bound to the request it answers.
    /// - Parameter challengeBody: `false` leaves the v1 JSON out of the body of a 401 (nginx reads
    ///   it from `X-X402-Challenge` and discards the subrequest's body; half the bytes per challenge).
    public init(_ decision: Decision, backendContext: BackendContext? = nil, now: Int64 = UnixClock.seconds(),
                challengeBody: Bool = true) {
        // Built as an array and handed to `HTTPHeaders` at once (its `add` checks every name), with
        // room for the Content-Length and Connection the handler adds.
        var headers: [(String, String)] = []
        headers.reserveCapacity(16)
        switch decision {
        case .allow(let grant):
            self = Self.allowed(grant, leaseId: nil, backendContext: backendContext, now: now)

        case .paymentRequired(let challenge, let failure):
            headers.append((Header.status, "402"))
            if let failure { headers.append((Header.reason, failure.reason.rawValue)) }
            headers.append((Header.paymentRequired, challenge.paymentRequiredHeader))
            headers.append((Header.challenge, challenge.v1Body))
            headers.append(("Cache-Control", "no-store"))
            headers.append(("Content-Type", "application/json"))
            self.init(status: .unauthorized, headers: HTTPHeaders(headers), body: challengeBody ? challenge.v1Body : "")

        case .refused(let status, let retryAfter, let reason):
            headers.append((Header.status, String(status)))
            headers.append((Header.reason, reason))
            if let retryAfter { headers.append(("Retry-After", String(retryAfter))) }
            self.init(status: .forbidden, headers: HTTPHeaders(headers), body: "")

        case .unavailable(let reason, let retryAfter):
            headers.append((Header.status, "503"))
            headers.append((Header.reason, reason))
            headers.append(("Retry-After", String(retryAfter)))
            self.init(status: .forbidden, headers: HTTPHeaders(headers), body: "")

        case .rateLimited(let notice):
            // IETF draft-ietf-httpapi-ratelimit-headers: the policy (quota q per window w seconds)
            // and the current state (r remaining, t seconds until it frees up).
            let rule = notice.rule
            headers.append((Header.status, "429"))
            headers.append((Header.reason, "rate_limited"))
            headers.append(("Retry-After", String(notice.retryAfterSeconds)))
            headers.append(("RateLimit-Policy",
                            "\"\(notice.policy)\";q=\(rule.burst);w=\(max(1, Int(rule.toleranceMicros / 1_000_000)))"))
            headers.append(("RateLimit", "\"\(notice.policy)\";r=0;t=\(notice.retryAfterSeconds)"))
            self.init(status: .forbidden, headers: HTTPHeaders(headers), body: "")

        case .free(let remaining):
            headers.append((Header.status, "200"))
            headers.append((Header.free, "1"))
            headers.append((Header.freeRemaining, String(remaining)))
            self.init(status: .ok, headers: HTTPHeaders(headers), body: "")

        case .leased(let grant):
            self = Self.leased(grant, headers: HTTPHeaders(), backendContext: backendContext, now: now)

        case .leaseRefused(let failure, let challenge):
            self = Self.leaseRefused(failure, challenge: challenge, headers: HTTPHeaders(), challengeBody: challengeBody)

        case .leaseIssued(let issue):
            // Signed with the new lease's jti, like every request the lease will open.
            var response = Self.allowed(issue.grant, leaseId: issue.claims.jti, backendContext: backendContext,
                                        now: now)
            response.headers.add(name: Header.lease, value: issue.token)
            response.headers.add(name: Header.leaseExpires, value: String(issue.claims.expiresAt))
            response.headers.add(name: "Cache-Control", value: "no-store")
            response.headers.add(name: "Content-Type", value: "application/json")
            response.body = Self.leaseBody(issue)
            self = response

        case .signedIn(let grant):
            headers.append((Header.status, "200"))
            headers.append((Header.payer, grant.payer))
            headers.append((Header.amount, grant.amount))
            headers.append((Header.asset, grant.asset))
            headers.append((Header.network, grant.network))
            headers.append((Header.paymentId, grant.paymentId))
            headers.append((Header.signedIn, "1"))
            Self.sign(BackendContextFields(payer: grant.payer, amount: grant.amount, network: grant.network,
                                           paymentId: grant.paymentId),
                      with: backendContext, now: now, into: &headers)
            self.init(status: .ok, headers: HTTPHeaders(headers), body: "")

        case .signInRefused(let reason, _, let challenge):
            self.init(.paymentRequired(challenge, failure: nil), challengeBody: challengeBody)
            self.headers.add(name: Header.reason, value: reason)

        case .misconfigured(let reason):
            headers.append((Header.status, "500"))
            headers.append((Header.reason, reason))
            self.init(status: .forbidden, headers: HTTPHeaders(headers), body: "")
        }
    }

    public init(status: HTTPResponseStatus, headers: HTTPHeaders, body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A paid request let through, with `leaseId` when it bought a lease.
    static func allowed(_ grant: Grant, leaseId: String?, backendContext: BackendContext?, now: Int64)
        -> DecisionResponse
    {
        let payment = grant.payment
        var headers: [(String, String)] = []
        headers.reserveCapacity(16)
        headers.append((Header.status, "200"))
        headers.append((Header.payer, payment.payer))
        headers.append((Header.amount, payment.option.amount))
        headers.append((Header.asset, payment.option.token.address))
        headers.append((Header.network, payment.option.network.caip2))
        headers.append((Header.paymentId, grant.paymentId))
        headers.append((Header.version, String(payment.version)))
        if let leaseId { headers.append((Header.leaseId, leaseId)) }
        if let transaction = grant.transaction, let settled = grant.settlementResponseHeader {
            headers.append((Header.transaction, transaction))
            headers.append((payment.version == 1 ? Header.paymentResponseV1 : Header.paymentResponse, settled))
        }
        let fields = BackendContextFields(
            payer: payment.payer, amount: payment.option.amount, network: payment.option.network.caip2,
            paymentId: grant.paymentId, transaction: grant.transaction ?? "", leaseId: leaseId ?? "")
        sign(fields, with: backendContext, now: now, into: &headers)
        return DecisionResponse(status: .ok, headers: HTTPHeaders(headers), body: "")
    }

    /// The context's timestamp, signature and the version of the signed message, when signing.
    static func sign(_ fields: BackendContextFields, with backendContext: BackendContext?, now: Int64,
                     into headers: inout [(String, String)]) {
        guard let backendContext else { return }
        headers.append((Header.timestamp, String(now)))
        headers.append((Header.signature, backendContext.sign(fields, timestamp: now)))
        headers.append((Header.contextVersion, String(backendContext.version.rawValue)))
    }
}
