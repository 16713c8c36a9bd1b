import NIOHTTP1
import X402

/// Lease decisions as HTTP (part of the one mapping, `DecisionResponse`).
extension DecisionResponse {
    static func leased(_ grant: LeaseGrant, headers: HTTPHeaders, backendContext: BackendContext?, now: Int64)
        -> DecisionResponse
    {
        var headers = headers
        let claims = grant.claims
        headers.add(name: Header.status, value: "200")
        headers.add(name: Header.payer, value: claims.payer)
        headers.add(name: Header.amount, value: claims.amount)
        headers.add(name: Header.asset, value: claims.asset)
        headers.add(name: Header.network, value: claims.network)
        headers.add(name: Header.paymentId, value: claims.paymentID)
        headers.add(name: Header.leaseId, value: claims.jti)
        headers.add(name: Header.leaseExpires, value: String(claims.expiresAt))
        if let transaction = claims.transaction { headers.add(name: Header.transaction, value: transaction) }
        // The payment that bought the lease, bound to this request and to the lease itself.
        var signed: [(String, String)] = []
        sign(BackendContextFields(payer: claims.payer, amount: claims.amount, network: claims.network,
                                  paymentId: claims.paymentID, transaction: claims.transaction ?? "",
                                  leaseId: claims.jti),
             with: backendContext, now: now, into: &signed)
        for (name, value) in signed { headers.add(name: name, value: value) }
        return DecisionResponse(status: .ok, headers: headers, body: "")
    }

    /// A refused lease: a fresh challenge where paying helps (401 → 402), 429 for its concurrency
    /// limit, 403 otherwise.
    static func leaseRefused(_ failure: LeaseFailure, challenge: Challenge?, headers: HTTPHeaders, challengeBody: Bool)
        -> DecisionResponse
    {
        guard let challenge else {
            var headers = headers
            let concurrency = failure.reason == .concurrencyLimit
            headers.add(name: Header.status, value: concurrency ? "429" : "403")
            headers.add(name: Header.reason, value: failure.reason.rawValue)
            if concurrency { headers.add(name: "Retry-After", value: "1") }
            return DecisionResponse(status: .forbidden, headers: headers, body: "")
        }
        var response = DecisionResponse(.paymentRequired(challenge, failure: nil), challengeBody: challengeBody)
        response.headers.add(name: Header.reason, value: failure.reason.rawValue)
        return response
    }

    /// What the lease path answers the client: the token and what it opens.
    static func leaseBody(_ issue: LeaseIssue) -> String {
        let claims = issue.claims
        var json = JSONWriter(capacity: 1024)
        json.beginObject()
        json.field("token", issue.token)
        json.field("token_type", "Bearer")
        json.field("jti", claims.jti)
        json.field("payer", claims.payer)
        json.key("routes")
        json.beginArray()
        for route in claims.routes { json.string(route) }
        json.endArray()
        json.field("host", claims.host)
        json.field("issued_at", claims.issuedAt)
        json.field("expires_at", claims.expiresAt)
        json.field("expires_in", claims.expiresAt - claims.issuedAt)
        if let maxRequests = claims.maxRequests { json.field("max_requests", maxRequests) }
        if let maxConcurrent = claims.maxConcurrent { json.field("max_concurrent", maxConcurrent) }
        json.field("payment_id", claims.paymentID)
        json.field("transaction", optional: claims.transaction)
        json.field("renews", optional: issue.renewed)
        json.endObject()
        return json.string
    }

    /// The answer for a client talking to the sidecar directly (the lease path, proxied by nginx
    /// without `auth_request`): the status the client must see instead of 401/403, and none of the
    /// headers meant for nginx.
    public func direct() -> DecisionResponse {
        var response = self
        if let status = headers.first(name: Header.status).flatMap(Int.init) {
            response.status = HTTPResponseStatus(statusCode: status)
        }
        for name in [Header.status, Header.challenge, Header.signature, Header.timestamp, Header.contextVersion] {
            response.headers.remove(name: name)
        }
        if response.body.isEmpty && response.status.code >= 400 {
            var json = JSONWriter()
            json.beginObject()
            json.field("error", response.status.code == 429 ? "rate_limited" : "refused")
            json.field("reason", headers.first(name: Header.reason) ?? "-")
            json.endObject()
            response.body = json.string
            response.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        }
        return response
    }
}
