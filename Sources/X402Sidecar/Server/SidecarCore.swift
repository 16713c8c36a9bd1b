import NIOHTTP1
import Synchronization
import X402

/// What every connection handler shares: the authorizer, the decision log, limits.
public final class SidecarCore: Sendable {
    public let authorizer: Authorizer
    public let decisionLog: DecisionLog
    public let maxHeaderBytes: Int
    /// Requests received and not yet answered; shutdown waits for them.
    let inFlight = Atomic<Int>(0)

    public init(authorizer: Authorizer, decisionLog: DecisionLog, maxHeaderBytes: Int) {
        self.authorizer = authorizer
        self.decisionLog = decisionLog
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// `/readyz`: ready when every configured store answers.
    func readiness() async -> DecisionResponse {
        do {
            try await authorizer.ledger.checkReady()
            return AuthHandler.json(.ok, #"{"status":"ready"}"#)
        } catch {
            var json = JSONWriter()
            json.beginObject()
            json.field("status", "not ready")
            json.field("ledger", String(describing: error))
            json.endObject()
            return AuthHandler.json(.serviceUnavailable, json.string)
        }
    }
}
