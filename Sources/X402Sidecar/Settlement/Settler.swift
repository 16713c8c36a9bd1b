import X402

/// What one settlement attempt came to.
public enum SettleOutcome: Sendable, Equatable {
    /// The transfer is on chain (`transaction` is its hash).
    case settled(transaction: String)
    /// Not settled yet but may be later: try again after a backoff. `transaction` is a submitted
    /// transaction whose fate is unknown (reconciled on the next attempt, never blindly resent).
    case retry(reason: String, transaction: String?)
    /// A request that can move the money (`/settle`) left but got no answer, and the chain does not
    /// show the transfer (yet): it may still land. Never released; reconciled from the chain later.
    case inDoubt(reason: String)
    /// Will never settle (expired, insufficient funds, bad signature): dead-letter it, with the
    /// x402 reason code when there is one.
    case failed(reason: X402Reason?, message: String)
}

/// Submits one job's authorization to the chain, exactly once.
public protocol Settler: Sendable {
    /// - Parameter record: persists a transaction hash before it is sent, so that a crash between
    ///   sending and learning the result cannot lead to a second submission.
    func settle(_ job: SettlementJob, record: @Sendable (String) async throws -> Void) async -> SettleOutcome
}

/// Maps a token's revert reason (USDC's strings) to what to do about it.
enum RevertReasons {
    static func classify(_ reason: String) -> SettleOutcome {
        let lower = reason.lowercased()
        if lower.contains("authorization is used or canceled") {
            return .failed(reason: .nonceAlreadyUsed, message: reason)
        }
        if lower.contains("authorization is expired") {
            return .failed(reason: .validBefore, message: reason)
        }
        if lower.contains("authorization is not yet valid") {
            return .retry(reason: reason, transaction: nil)
        }
        if lower.contains("exceeds balance") {
            return .failed(reason: .insufficientBalance, message: reason)
        }
        if lower.contains("invalid signature") {
            return .failed(reason: .invalidSignature, message: reason)
        }
        return .failed(reason: .transactionFailed, message: reason)
    }
}
