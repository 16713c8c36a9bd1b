/// `/report?payment_id=…&status=…` (or the `X-X402-Payment-Id` / `X-X402-Upstream-Status`
/// headers): Nginx's report of a paid request's upstream status, over HTTP.
struct ReportHandler: Sendable {
    let settlements: Settlements?

    func respond(paymentId: String?, status: String?) async -> DecisionResponse {
        guard let paymentId, !paymentId.isEmpty, paymentId.utf8.count <= 64,
            let status, let code = Int(status), (100...599).contains(code)
        else {
            return AuthHandler.json(.badRequest, #"{"error":"payment_id and a status 100-599 are required"}"#)
        }
        guard let settlements else {
            return AuthHandler.json(.notFound, #"{"error":"settlement is not configured"}"#)
        }
        do {
            let text: String
            switch try await settlements.report(paymentId: paymentId, upstreamStatus: code) {
            case .willSettle: text = "settle"
            case .released: text = "released"
            case .unknown: return AuthHandler.json(.notFound, #"{"error":"unknown payment id"}"#)
            case .alreadyDecided(let state): text = "already " + state.rawValue
            }
            return AuthHandler.json(.ok, "{\"result\":\"\(text)\"}")
        } catch {
            return AuthHandler.json(.serviceUnavailable, #"{"error":"settlement queue unavailable"}"#)
        }
    }
}
