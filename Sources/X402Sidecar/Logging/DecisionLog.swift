import X402

/// One JSON line per `/authorize` decision: time, request_id, route, outcome, reason, payer,
/// amount, network, payment_id, client, latency_us. Nothing secret: no signatures, no headers.
public struct DecisionLog: Sendable {
    public var enabled: Bool
    let writer: LineWriter

    public init(enabled: Bool = true, writer: LineWriter = .standardOutput) {
        self.enabled = enabled
        self.writer = writer
    }

    public static func outcome(of decision: Decision) -> String {
        switch decision {
        case .allow: return "paid"
        case .paymentRequired(_, let failure): return failure == nil ? "payment_required" : "payment_invalid"
        case .refused: return "refused"
        case .unavailable: return "unavailable"
        case .misconfigured: return "misconfigured"
        case .rateLimited: return "rate_limited"
        case .free: return "free"
        case .leased: return "leased"
        case .leaseRefused: return "lease_refused"
        case .leaseIssued: return "lease_issued"
        case .signedIn: return "signed_in"
        case .signInRefused: return "sign_in_refused"
        }
    }

    /// The JSON line (without newline) for a decision.
    public static func line(_ decision: Decision, request: AuthorizeRequest, latencyMicros: UInt64) -> [UInt8] {
        var json = JSONWriter(capacity: 384)
        json.beginObject()
        json.field("time", UnixClock.timestamp())
        json.field("level", "info")
        json.field("event", "decision")
        json.field("request_id", optional: request.requestId)
        json.field("route", optional: request.route)
        json.field("outcome", outcome(of: decision))
        switch decision {
        case .allow(let grant):
            json.field("payer", grant.payment.payer)
            json.field("amount", grant.payment.option.amount)
            json.field("network", grant.payment.option.network.caip2)
            json.field("payment_id", grant.paymentId)
            json.field("x402_version", grant.payment.version)
        case .paymentRequired(_, let failure):
            if let failure {
                json.field("reason", failure.reason.rawValue)
                json.field("message", failure.message)
                if let payer = failure.payer, Hex.isAddress(payer) { json.field("payer", payer.lowercased()) }
            }
        case .refused(let status, _, let reason):
            json.field("status", status)
            json.field("reason", reason)
        case .unavailable(let reason, _), .misconfigured(let reason):
            json.field("reason", reason)
        case .rateLimited(let notice):
            json.field("policy", notice.policy)
            json.field("limit", notice.rule.description)
            json.field("retry_after", notice.retryAfterSeconds)
        case .free(let remaining):
            json.field("free_remaining", remaining)
        case .leased(let grant):
            json.field("payer", grant.claims.payer)
            json.field("lease_id", grant.claims.jti)
            json.field("lease_route", grant.claims.leaseRoute)
            if grant.requests > 0 { json.field("lease_requests", grant.requests) }
        case .leaseRefused(let failure, _):
            json.field("reason", failure.reason.rawValue)
            json.field("message", failure.message)
            json.field("lease_id", optional: failure.jti)
            json.field("payer", optional: failure.payer)
        case .leaseIssued(let issue):
            json.field("payer", issue.claims.payer)
            json.field("amount", issue.grant.payment.option.amount)
            json.field("network", issue.grant.payment.option.network.caip2)
            json.field("payment_id", issue.grant.paymentId)
            json.field("lease_id", issue.claims.jti)
            json.field("lease_expires", issue.claims.expiresAt)
            json.field("renews", optional: issue.renewed)
        case .signedIn(let grant):
            json.field("payer", grant.payer)
            json.field("payment_id", grant.paymentId)
            json.field("access_until", grant.expiresAt)
        case .signInRefused(let reason, let message, _):
            json.field("reason", reason)
            json.field("message", message)
        }
        json.field("method", request.method)
        json.field("uri", String(request.uri.prefix(512)))
        json.field("client", optional: request.clientAddress)
        json.field("latency_us", latencyMicros)
        json.endObject()
        return json.bytes
    }

    public func record(_ decision: Decision, request: AuthorizeRequest, latencyMicros: UInt64) {
        guard enabled else { return }
        var bytes = Self.line(decision, request: request, latencyMicros: latencyMicros)
        bytes.append(0x0A)
        writer.write(bytes)
    }
}
