import X402

/// Waiting for a receipt, and replacing a transaction that is not mined in time: the same nonce
/// and calldata, both fees raised (by `feeBumpPercent`, and to what the chain asks now), never
/// above `maxFeePerGas`. Transactions sharing a nonce can never both be mined, so a replacement
/// cannot charge the payer twice; every one is recorded before it is sent, each is watched, and
/// whichever is mined settles the job (the others are dead).
extension Relayer {
    /// Waits for one of `sent` (all at one nonce, oldest first) to be mined, replacing the newest
    /// when it has waited `replaceAfterSeconds`.
    func awaitReceipt(_ sent: [String], call: TransferAuthorizationCall, job: SettlementJob,
                      record: @Sendable (String) async throws -> Void) async throws -> SettleOutcome {
        var sent = sent
        let deadline = ContinuousClock.now + .milliseconds(Int(options.receiptTimeoutSeconds * 1000))
        var replaceAt = options.replaceAfterSeconds.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        while ContinuousClock.now < deadline {
            for hash in sent.reversed() {
                if let receipt = try await rpc.receipt(hash) { return try await mined(receipt, hash, call: call, job: job) }
            }
            if let due = replaceAt, ContinuousClock.now >= due {
                if let replacement = try await replace(sent.last!, call: call, job: job, record: record) {
                    sent.append(replacement)
                    replaceAt = ContinuousClock.now + .milliseconds(Int((options.replaceAfterSeconds ?? 0) * 1000))
                } else {
                    replaceAt = nil  // at the ceiling, or gone from the pool: wait for what was sent
                }
            }
            try await Task.sleep(for: .milliseconds(options.receiptPollMilliseconds))
        }
        return .retry(reason: "no receipt yet", transaction: sent.last)
    }

    private func mined(_ receipt: TransactionReceipt, _ hash: String, call: TransferAuthorizationCall,
                       job: SettlementJob) async throws -> SettleOutcome {
        if receipt.succeeded && receipt.hasTransfer(token: call.token, from: call.from, to: call.to, value: call.value) {
            return .settled(transaction: hash)
        }
        // Reverted on chain: learn why from a simulation at the new state.
        do {
            _ = try await rpc.ethCall(from: address, to: job.asset, data: call.calldata)
        } catch let error as RPCError {
            if let reason = error.revertReason { return RevertReasons.classify(reason) }
        }
        return .failed(reason: .transactionFailed, message: "transaction \(hash) reverted")
    }

    /// Sends a replacement for `hash` if the node still holds it unmined; its hash, or nil when
    /// there is nothing to replace or the fees would pass the ceiling.
    func replace(_ hash: String, call: TransferAuthorizationCall, job: SettlementJob,
                 record: @Sendable (String) async throws -> Void) async throws -> String? {
        guard let waiting = try await rpc.waitingTransaction(hash) else { return nil }
        let market = try? await marketFees()
        var offered = waiting.fees
        if options.legacyTransactions, case .eip1559(let maxFee, _) = offered {
            offered = .legacy(gasPrice: maxFee)  // some nodes report a legacy price as both fields
        }
        guard let fees = offered.replacement(percent: options.feeBumpPercent, market: market,
                                                  ceiling: options.maxFeePerGas)
        else {
            logger.warning("settlement transaction not mined; a replacement would pass relayer.max_fee_per_gas_gwei", metadata: [
                "payment_id": "\(job.id)", "transaction": "\(hash)", "fees": "\(waiting.fees)"])
            return nil
        }
        let transaction = EVMTransaction(chainId: chainId, nonce: waiting.nonce, gasLimit: waiting.gasLimit, fees: fees,
                                         to: call.token, data: call.calldata)
        guard let signed = transaction.signed(privateKey: privateKey) else { return nil }
        let replacement = Hex.encode(signed.hash)
        try await record(replacement)
        do {
            _ = try await rpc.sendRawTransaction(signed.raw)
        } catch let error as RPCError {
            // "nonce too low": the old one was mined meanwhile; "underpriced": the node wants more
            // than the ceiling allowed. Either way the one already sent is still the one to watch.
            logger.notice("replacement not accepted; waiting for the transaction already sent", metadata: [
                "payment_id": "\(job.id)", "transaction": "\(hash)", "error": "\(error)"])
            return nil
        }
        logger.notice("settlement transaction not mined in time; replaced at the same nonce", metadata: [
            "payment_id": "\(job.id)", "transaction": "\(hash)", "replacement": "\(replacement)",
            "nonce": "\(waiting.nonce)", "fees": "\(fees)"])
        return replacement
    }
}

extension EVMTransaction.Fees {
    /// The most this offers per gas.
    var maxPerGas: UInt64 {
        switch self {
        case .legacy(let price): price
        case .eip1559(let maxFee, _): maxFee
        }
    }

    /// Held to `ceiling` (a first transaction never offers more than the operator allows).
    func capped(at ceiling: UInt64?) -> Self {
        guard let ceiling else { return self }
        switch self {
        case .legacy(let price): return .legacy(gasPrice: min(price, ceiling))
        case .eip1559(let maxFee, let tip):
            let fee = min(maxFee, ceiling)
            return .eip1559(maxFeePerGas: fee, maxPriorityFeePerGas: min(tip, fee))
        }
    }

    /// What a replacement of a transaction with these fees offers: each fee raised by `percent`
    /// (rounded up) and at least to `market` (of the same kind); nil when that passes `ceiling`.
    func replacement(percent: UInt64, market: Self?, ceiling: UInt64?) -> Self? {
        func raised(_ fee: UInt64) -> UInt64 {
            let (product, overflow) = fee.multipliedReportingOverflow(by: percent)
            let bump = overflow ? UInt64.max : max(product / 100 + (product % 100 == 0 ? 0 : 1), 1)
            let (sum, past) = fee.addingReportingOverflow(bump)
            return past ? .max : sum
        }
        let next: Self
        switch (self, market) {
        case (.legacy(let price), .legacy(let now)?): next = .legacy(gasPrice: max(raised(price), now))
        case (.legacy(let price), _): next = .legacy(gasPrice: raised(price))
        case (.eip1559(let maxFee, let tip), let market):
            var fee = raised(maxFee)
            var priority = raised(tip)
            if case .eip1559(let nowFee, let nowTip)? = market {
                fee = max(fee, nowFee)
                priority = max(priority, nowTip)
            }
            next = .eip1559(maxFeePerGas: max(fee, priority), maxPriorityFeePerGas: priority)
        }
        if let ceiling, next.maxPerGas > ceiling { return nil }
        return next
    }
}
