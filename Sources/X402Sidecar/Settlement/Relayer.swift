import Logging
import Synchronization
import X402

/// "Be your own facilitator": signs and sends `transferWithAuthorization` with our relayer key.
///
/// Exactly once: before any submission the relayer looks at the transaction it recorded last time
/// (its receipt) and at the token's `authorizationState`; it sends a new transaction only when
/// neither shows the authorization used. Transaction nonces are allocated here and only here, one
/// submission at a time per relayer, so two payments never race for one nonce; receipts are awaited
/// outside that section, so settlements pipeline.
public final class Relayer: Settler {
    public struct Options: Sendable {
        /// `eth_estimateGas` is the simulation: it runs the call and reports its revert reason.
        public var simulate = true
        /// Check the payer's balance first (cached for `balanceCacheSeconds`).
        public var checkBalance = true
        public var balanceCacheSeconds: Int64 = 2
        /// Use legacy (type 0) transactions even when the chain has EIP-1559 fees.
        public var legacyTransactions = false
        /// How long to wait for a receipt before answering `retry` with the transaction.
        public var receiptTimeoutSeconds: Double = 30
        public var receiptPollMilliseconds: Int = 100
        public var gasLimitFallback: UInt64 = 120_000
        /// Replace a transaction not mined after this long with one at the same nonce and higher
        /// fees; nil: never (the transaction is only waited for).
        public var replaceAfterSeconds: Double?
        /// Each replacement raises both fees by this much at least (nodes refuse less than 10 %).
        public var feeBumpPercent: UInt64 = 20
        /// No transaction, first or replacement, offers more than this per gas (wei).
        public var maxFeePerGas: UInt64?

        public init() {}
    }

    public let rpc: EthereumRPC
    public let chainId: UInt64
    public let address: String
    let privateKey: [UInt8]
    let options: Options
    let logger: Logger
    private let submitter: Submitter
    private let balances = BalanceCache()

    public init?(rpc: EthereumRPC, chainId: UInt64, privateKeyHex: String, options: Options = Options(), logger: Logger) {
        guard let key = Hex.decode(privateKeyHex, byteCount: 32), let address = Secp256k1.address(privateKey: key) else {
            return nil
        }
        self.rpc = rpc
        self.chainId = chainId
        self.privateKey = key
        self.address = Hex.encode(address)
        self.options = options
        self.logger = logger
        self.submitter = Submitter()
    }

    public func settle(_ job: SettlementJob, record: @Sendable (String) async throws -> Void) async -> SettleOutcome {
        guard let call = TransferAuthorizationCall(token: job.asset, authorization: job.authorization, signature: job.signature)
        else { return .failed(reason: .invalidPayload, message: "the job's authorization does not parse") }
        guard job.chainId == chainId else {
            return .failed(reason: .networkMismatch, message: "relayer serves chain \(chainId), job is on \(job.chainId)")
        }
        do {
            // 1. Transactions from earlier attempts (a stuck one and its replacements share a
            //    nonce): a receipt decides; one the node holds but has not mined yet (a slow block,
            //    a crash while waiting) is waited for, never raced by a second transaction for the
            //    same authorization.
            let earlier = job.knownTransactions
            var waiting: [String] = []
            for previous in earlier {
                if let receipt = try await rpc.receipt(previous) {
                    if receipt.succeeded,
                        receipt.hasTransfer(token: call.token, from: call.from, to: call.to, value: call.value)
                    {
                        return .settled(transaction: previous)
                    }
                } else if try await rpc.transactionKnown(previous) {
                    waiting.append(previous)
                }
            }
            if !waiting.isEmpty {
                logger.notice("earlier settlement transaction is not mined yet; waiting for it", metadata: [
                    "payment_id": "\(job.id)", "transaction": "\(waiting.last!)"])
                return try await awaitReceipt(waiting, call: call, job: job, record: record)
            }
            // 2. Used on chain by anyone (our earlier transaction, a facilitator): never resubmit.
            if try await rpc.authorizationUsed(token: job.asset, authorizer: call.from, nonce: call.nonce) {
                if let previous = earlier.last { return .settled(transaction: previous) }
                return .failed(reason: .nonceAlreadyUsed, message: "authorization already used on chain by another transaction")
            }
            if let previous = earlier.last {
                logger.warning("earlier settlement transaction is unknown to the node, resubmitting", metadata: [
                    "payment_id": "\(job.id)", "transaction": "\(previous)"])
            }
            // 3. Balance and simulation.
            if options.checkBalance {
                let balance = try await balances.balance(of: call.from, token: job.asset, rpc: rpc,
                                                         maxAge: options.balanceCacheSeconds)
                if balance.lexicographicallyPrecedes(call.value) {
                    return .failed(reason: .insufficientBalance, message: "payer balance is below the price")
                }
            }
            // Nonce allocation and sending are serialized; waiting for the receipt is not, so
            // several settlements can be in flight (in one block) at once.
            let submitted = try await submitter.serialized {
                try await self.submit(call, job: job, record: record)
            }
            switch submitted {
            case .done(let outcome): return outcome
            case .sent(let hash):
                // Sent: whatever goes wrong from here, the answer names this transaction, so it is
                // reconciled (settlement_pending), never taken for "nothing happened".
                do {
                    return try await awaitReceipt([hash], call: call, job: job, record: record)
                } catch {
                    return .retry(reason: "waiting for the receipt: \(error)", transaction: hash)
                }
            }
        } catch let error as RPCError {
            if let reason = error.revertReason { return RevertReasons.classify(reason) }
            return .retry(reason: "node: \(error)", transaction: job.transaction)
        } catch {
            return .retry(reason: "\(error)", transaction: job.transaction)
        }
    }

    enum Submission: Sendable {
        case done(SettleOutcome)
        case sent(String)
    }

    private func submit(_ call: TransferAuthorizationCall, job: SettlementJob,
                        record: @Sendable (String) async throws -> Void) async throws -> Submission {
        let data = call.calldata
        var gasLimit = options.gasLimitFallback
        if options.simulate {
            let estimate = try await rpc.estimateGas(from: address, to: job.asset, data: data)
            gasLimit = estimate + estimate / 5
        }
        let fees = try await marketFees().capped(at: options.maxFeePerGas)
        var attempt = 0
        while true {
            attempt += 1
            let nonce = try await submitter.nonce(for: address, rpc: rpc)
            let transaction = EVMTransaction(chainId: chainId, nonce: nonce, gasLimit: gasLimit, fees: fees,
                                             to: call.token, data: data)
            guard let signed = transaction.signed(privateKey: privateKey) else {
                return .done(.failed(reason: nil, message: "relayer key cannot sign"))
            }
            let hash = Hex.encode(signed.hash)
            try await record(hash)
            do {
                _ = try await rpc.sendRawTransaction(signed.raw)
                submitter.advance()
            } catch let error as RPCError {
                let message = error.message.lowercased()
                if (message.contains("nonce too low") || message.contains("already known") || message.contains("nonce too high"))
                    && attempt < 3
                {
                    submitter.forget()
                    continue
                }
                if let reason = error.revertReason { return .done(RevertReasons.classify(reason)) }
                return .done(.retry(reason: "eth_sendRawTransaction: \(error)", transaction: hash))
            } catch let error as OutboundError where error.kind == .notSent {
                return .done(.retry(reason: "\(error)", transaction: nil))
            }
            return .sent(hash)
        }
    }

    /// What the chain asks now: EIP-1559 fees (twice the base fee plus the median tip) or a gas price.
    func marketFees() async throws -> EVMTransaction.Fees {
        if !options.legacyTransactions, let suggestion = try await rpc.feeSuggestion() {
            let priority = max(suggestion.priorityFee, 1)
            return .eip1559(maxFeePerGas: suggestion.baseFee * 2 + priority, maxPriorityFeePerGas: priority)
        }
        return .legacy(gasPrice: try await rpc.gasPrice())
    }

    /// One submission at a time, and the relayer's next transaction nonce.
    private final class Submitter: Sendable {
        private let lock = AsyncLock()
        private let next = Mutex<UInt64?>(nil)

        func serialized<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
            try await lock.withLock(body)
        }

        func nonce(for address: String, rpc: EthereumRPC) async throws -> UInt64 {
            if let known = next.withLock({ $0 }) { return known }
            let fetched = try await rpc.pendingNonce(address)
            next.withLock { $0 = fetched }
            return fetched
        }

        func advance() { next.withLock { $0 = $0.map { $0 + 1 } } }
        func forget() { next.withLock { $0 = nil } }
    }

    /// Balances read recently, so a burst of payments from one payer costs one `eth_call`.
    private final class BalanceCache: Sendable {
        private let entries = Mutex<[String: (balance: [UInt8], at: Int64)]>([:])

        func balance(of owner: [UInt8], token: String, rpc: EthereumRPC, maxAge: Int64) async throws -> [UInt8] {
            let key = token + Hex.encode(owner)
            let now = UnixClock.seconds()
            if let cached = entries.withLock({ $0[key] }), now - cached.at <= maxAge { return cached.balance }
            let balance = try await rpc.balanceOf(token: token, owner: owner)
            entries.withLock { $0[key] = (balance, now) }
            return balance
        }
    }
}

/// A mutual-exclusion lock for async code (FIFO), for work that must not interleave across awaits.
final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if !state.locked {
                    state.locked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
