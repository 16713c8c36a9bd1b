import X402

/// `/readyz`: ready when every configured store answers; otherwise 503 naming each store that
/// failed and why (`{"status":"not ready","failed":{"nonce_ledger":"…"}}`).
struct ReadinessHandler: Sendable {
    let ledger: any NonceLedger
    let queue: (any SettlementQueue)?
    let limiter: (any RateLimiter)?

    func respond() async -> DecisionResponse {
        var failed: [(String, String)] = []
        do { try await ledger.checkReady() } catch { failed.append(("nonce_ledger", "\(error)")) }
        if let queue {
            do { try await queue.checkReady() } catch { failed.append(("settlement_queue", "\(error)")) }
        }
        if let limiter {
            do { try await limiter.checkReady() } catch { failed.append(("rate_limiter", "\(error)")) }
        }
        guard !failed.isEmpty else { return AuthHandler.json(.ok, #"{"status":"ready"}"#) }
        var json = JSONWriter()
        json.beginObject()
        json.field("status", "not ready")
        json.key("failed")
        json.beginObject()
        for (store, error) in failed { json.field(store, error) }
        json.endObject()
        json.endObject()
        return AuthHandler.json(.serviceUnavailable, json.string)
    }
}
