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
        public static let paymentResponse = "PAYMENT-RESPONSE"
        public static let paymentResponseV1 = "X-PAYMENT-RESPONSE"
        public static let lease = "X-X402-Lease"
        public static let leaseId = "X-X402-Lease-Id"
        public static let leaseExpires = "X-X402-Lease-Expires"
        public static let signedIn = "X-X402-Signed-In"
    }

    /// - Parameter challengeBody: `false` leaves the v1 JSON out of the body of a 401 (nginx reads
    ///   it from `X-X402-Challenge` and discards the subrequest's body; half the bytes per challenge).
    public init(_ decision: Decision, backendContext: BackendContextSigner? = nil, now: Int64 = UnixClock.seconds(),
                challengeBody: Bool = true) {
        var headers = HTTPHeaders()
        switch decision {
        case .allow(let grant):
            let payment = grant.payment
            headers.add(name: Header.status, value: "200")
            headers.add(name: Header.payer, value: payment.payer)
            headers.add(name: Header.amount, value: payment.option.amount)
            headers.add(name: Header.asset, value: payment.option.token.address)
            headers.add(name: Header.network, value: payment.option.network.caip2)
            headers.add(name: Header.paymentId, value: grant.paymentId)
            headers.add(name: Header.version, value: String(payment.version))
            if let transaction = grant.transaction, let settled = grant.settlementResponseHeader {
                headers.add(name: Header.transaction, value: transaction)
                headers.add(name: payment.version == 1 ? Header.paymentResponseV1 : Header.paymentResponse, value: settled)
            }
            if let backendContext {
                headers.add(name: Header.timestamp, value: String(now))
                headers.add(name: Header.signature, value: backendContext.sign(grant, timestamp: now))
            }
            self.init(status: .ok, headers: headers, body: "")

        case .paymentRequired(let challenge, let failure):
            headers.add(name: Header.status, value: "402")
            if let failure { headers.add(name: Header.reason, value: failure.reason.rawValue) }
            headers.add(name: Header.paymentRequired, value: challenge.paymentRequiredHeader)
            headers.add(name: Header.challenge, value: challenge.v1Body)
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "Content-Type", value: "application/json")
            self.init(status: .unauthorized, headers: headers, body: challengeBody ? challenge.v1Body : "")

        case .refused(let status, let retryAfter, let reason):
            headers.add(name: Header.status, value: String(status))
            headers.add(name: Header.reason, value: reason)
            if let retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
            self.init(status: .forbidden, headers: headers, body: "")

        case .unavailable(let reason, let retryAfter):
            headers.add(name: Header.status, value: "503")
            headers.add(name: Header.reason, value: reason)
            headers.add(name: "Retry-After", value: String(retryAfter))
            self.init(status: .forbidden, headers: headers, body: "")

        case .rateLimited(let notice):
            // IETF draft-ietf-httpapi-ratelimit-headers: the policy (quota q per window w seconds)
            // and the current state (r remaining, t seconds until it frees up).
            let rule = notice.rule
            headers.add(name: Header.status, value: "429")
            headers.add(name: Header.reason, value: "rate_limited")
            headers.add(name: "Retry-After", value: String(notice.retryAfterSeconds))
            headers.add(name: "RateLimit-Policy",
                        value: "\"\(notice.policy)\";q=\(rule.burst);w=\(max(1, Int(rule.toleranceMicros / 1_000_000)))")
            headers.add(name: "RateLimit", value: "\"\(notice.policy)\";r=0;t=\(notice.retryAfterSeconds)")
            self.init(status: .forbidden, headers: headers, body: "")

        case .free(let remaining):
            headers.add(name: Header.status, value: "200")
            headers.add(name: Header.free, value: "1")
            headers.add(name: Header.freeRemaining, value: String(remaining))
            self.init(status: .ok, headers: headers, body: "")

        case .leased(let grant):
            self = Self.leased(grant, headers: headers, backendContext: backendContext, now: now)

        case .leaseRefused(let failure, let challenge):
            self = Self.leaseRefused(failure, challenge: challenge, headers: headers, challengeBody: challengeBody)

        case .leaseIssued(let issue):
            var response = DecisionResponse(.allow(issue.grant), backendContext: backendContext, now: now)
            response.headers.add(name: Header.lease, value: issue.token)
            response.headers.add(name: Header.leaseId, value: issue.claims.jti)
            response.headers.add(name: Header.leaseExpires, value: String(issue.claims.expiresAt))
            response.headers.add(name: "Cache-Control", value: "no-store")
            response.headers.add(name: "Content-Type", value: "application/json")
            response.body = Self.leaseBody(issue)
            self = response

        case .signedIn(let grant):
            headers.add(name: Header.status, value: "200")
            headers.add(name: Header.payer, value: grant.payer)
            headers.add(name: Header.amount, value: grant.amount)
            headers.add(name: Header.asset, value: grant.asset)
            headers.add(name: Header.network, value: grant.network)
            headers.add(name: Header.paymentId, value: grant.paymentId)
            headers.add(name: Header.signedIn, value: "1")
            if let backendContext {
                headers.add(name: Header.timestamp, value: String(now))
                headers.add(name: Header.signature, value: backendContext.sign(BackendContextSigner.message(
                    payer: grant.payer, amount: grant.amount, network: grant.network, paymentId: grant.paymentId,
                    transaction: "", timestamp: now)))
            }
            self.init(status: .ok, headers: headers, body: "")

        case .signInRefused(let reason, _, let challenge):
            self.init(.paymentRequired(challenge, failure: nil), challengeBody: challengeBody)
            self.headers.add(name: Header.reason, value: reason)

        case .misconfigured(let reason):
            headers.add(name: Header.status, value: "500")
            headers.add(name: Header.reason, value: reason)
            self.init(status: .forbidden, headers: headers, body: "")
        }
    }

    public init(status: HTTPResponseStatus, headers: HTTPHeaders, body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Signs what the backend is told about a paid request, so a backend can check that the
/// `X-X402-*` headers came from the sidecar (through Nginx) and not from a client:
///
///     X-X402-Signature = hex(HMAC-SHA256(secret,
///         payer "\n" amount "\n" network "\n" payment_id "\n" transaction "\n" timestamp))
///
/// `transaction` is empty until settled; `timestamp` is unix seconds (`X-X402-Timestamp`).
public struct BackendContextSigner: Sendable {
    let key: [UInt8]

    public init(secret: String) { key = Array(secret.utf8) }

    public static func message(payer: String, amount: String, network: String, paymentId: String,
                               transaction: String, timestamp: Int64) -> String {
        "\(payer)\n\(amount)\n\(network)\n\(paymentId)\n\(transaction)\n\(timestamp)"
    }

    public func sign(_ grant: Grant, timestamp: Int64) -> String {
        sign(Self.message(
            payer: grant.payment.payer, amount: grant.payment.option.amount, network: grant.payment.option.network.caip2,
            paymentId: grant.paymentId, transaction: grant.transaction ?? "", timestamp: timestamp))
    }

    /// A leased request: the payment that bought the lease, with its transaction when known.
    public func sign(_ lease: LeaseClaims, timestamp: Int64) -> String {
        sign(Self.message(payer: lease.payer, amount: lease.amount, network: lease.network, paymentId: lease.paymentID,
                          transaction: lease.transaction ?? "", timestamp: timestamp))
    }

    func sign(_ message: String) -> String {
        Hex.encode(OpenSSL.hmacSHA256(key: key, message: Array(message.utf8)), prefix: false)
    }
}
