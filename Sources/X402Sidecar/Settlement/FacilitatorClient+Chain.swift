import X402

/// A `/settle` that left but got no answer: the facilitator may have sent the transfer before the
/// answer was lost. Refusing the request then would charge the payer for nothing; releasing the
/// authorization would let it be presented (and charged) twice. So the chain decides: the token's
/// `authorizationState` and the transaction of its `AuthorizationUsed` log.
extension FacilitatorClient {
    /// Looks on chain for a while (the transfer may be in a block that is not there yet) and
    /// answers `settled` with the transaction that used the authorization, `failed` when the payer
    /// canceled it, or `inDoubt` — never a plain retry, which a `before` request would release.
    func unanswered(_ job: SettlementJob, _ error: OutboundError) async -> SettleOutcome {
        logger.warning("/settle got no answer; looking on chain", metadata: [
            "payment_id": "\(job.id)", "error": "\(error)"])
        guard chains[job.chainId] != nil else {
            return .inDoubt(reason: "\(error.description); no rpc_urls entry for chain \(job.chainId) to look")
        }
        let deadline = ContinuousClock.now + .milliseconds(Int64(unansweredLookSeconds * 1000))
        while true {
            if let known = await onChain(job), known != .unused { return outcome(known, job: job) }
            // A `before` request's own timeout cancels this wait; the job stays in doubt.
            guard ContinuousClock.now < deadline, (try? await Task.sleep(for: .milliseconds(250))) != nil else {
                return .inDoubt(reason: "\(error.description); the transfer is not on chain yet")
            }
        }
    }

    /// The authorization on chain; nil when the chain cannot be asked (no RPC, RPC down).
    func onChain(_ job: SettlementJob) async -> AuthorizationOnChain? {
        guard let rpc = chains[job.chainId],
            let call = TransferAuthorizationCall(token: job.asset, authorization: job.authorization,
                                                 signature: job.signature)
        else { return nil }
        do {
            return try await rpc.authorization(token: job.asset, authorizer: call.from, nonce: call.nonce)
        } catch {
            logger.warning("cannot read an authorization's state on chain", metadata: [
                "payment_id": "\(job.id)", "error": "\(error)"])
            return nil
        }
    }

    func outcome(_ known: AuthorizationOnChain, job: SettlementJob) -> SettleOutcome {
        switch known {
        case .transferred(let transaction):
            // "unknown" only when the log is past our lookback: the transfer is there all the same.
            return .settled(transaction: transaction ?? job.transaction ?? "unknown")
        case .canceled:
            return .failed(reason: .nonceAlreadyUsed, message: "the payer canceled the authorization")
        case .unused:
            return .inDoubt(reason: "the transfer is not on chain yet")
        }
    }
}
