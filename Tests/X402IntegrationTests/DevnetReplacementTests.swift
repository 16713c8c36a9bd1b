import Foundation
import Logging
import Testing
import X402
import X402TestSupport
@testable import X402Sidecar

/// A relayer transaction held unmined (the devnet's automine off) is replaced at the same nonce
/// with higher fees, within `maxFeePerGas`; whichever is mined settles the job, once. In the
/// serialized devnet suite: automine is one switch for the whole chain.
extension DevnetSettlementTests {
    /// What the relayer offers per gas right now (the devnet's fees only fall while blocks are
    /// empty, so the relayer's first transaction offers at most this).
    func marketFeePerGas(_ rpc: EthereumRPC, legacy: Bool) async throws -> UInt64 {
        if !legacy, let suggestion = try await rpc.feeSuggestion() {
            return suggestion.baseFee * 2 + max(suggestion.priorityFee, 1)
        }
        return try await rpc.gasPrice()
    }

    /// Runs `body` with automine off, switching it back on (which mines the pool) whatever happens.
    func withAutomineOff<T>(_ rpc: EthereumRPC, _ body: () async throws -> T) async throws -> T {
        _ = try await rpc.call("evm_setAutomine", "[false]")
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        _ = try await rpc.call("evm_setAutomine", "[true]")
        return try result.get()
    }

    /// The worker's relayer sends a transaction that is not mined; after 1 s it is replaced (same
    /// nonce, fees up 50 %), a second replacement would pass the ceiling (1.6× the market) and is
    /// not sent; once mined the replacement settles the job, which records both hashes.
    @Test(arguments: [false, true])
    func aStuckTransactionIsReplacedAtTheSameNonceWithinTheCeiling(legacy: Bool) async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let market = try await marketFeePerGas(rpc, legacy: legacy)
        let ceiling = market * 16 / 10
        let relayer = try relayer(info, rpc: rpc) {
            $0.legacyTransactions = legacy
            $0.receiptTimeoutSeconds = 30
            $0.replaceAfterSeconds = 1
            $0.feeBumpPercent = 50
            $0.maxFeePerGas = ceiling
        }
        var settings = SettlementSettings()
        settings.via = .relayer
        settings.workerIdleMilliseconds = 50
        let ledger = MemoryNonceLedger()
        let queue = try EmbeddedSettlementQueue(path: nil)
        let settlements = Settlements(
            settings: settings, queue: queue, ledger: ledger, routes: [:], facilitator: nil, relayers: [84532: relayer],
            logger: logger)
        let payer = info.payers[7]
        let payerBefore = try await info.balance(rpc, payer.address)
        let grant = try info.grant(from: payer)
        #expect(try await ledger.reserve(grant.payment.nonceKey, token: grant.paymentId,
                                         expiresAt: UnixClock.seconds() + 600).value)

        let worker = Task { try await SettlementWorker(settlements: settlements).run() }
        defer { worker.cancel() }
        // Automine back on mines the replacement while the worker still waits for a receipt.
        let (first, replacement) = try await withAutomineOff(rpc) {
            let queued = SettlementLifecycle.queued(
                grant, route: info.route, policy: settlements.policy("weather"), settings: settings,
                resource: info.resource, now: UnixClock.seconds())
            #expect(await settlements.recorder.apply(queued) == .applied)
            var sent: [String] = []
            var held: [EthereumRPC.WaitingTransaction] = []
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, sent.count < 2 {
                sent = try await queue.job(grant.paymentId)?.sentTransactions ?? []
                if held.count < sent.count, let waiting = try await rpc.waitingTransaction(sent[held.count]) {
                    held.append(waiting)
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            try #require(sent.count == 2, "no replacement was recorded: \(sent)")
            held.append(try #require(try await rpc.waitingTransaction(sent[1]), "the replacement is not in the pool"))
            // Give the relayer time for a second replacement, which the ceiling must stop.
            try await Task.sleep(for: .milliseconds(2500))
            let recorded = try await queue.job(grant.paymentId)?.sentTransactions ?? []
            #expect(recorded == sent, "a replacement past the ceiling was sent: \(recorded)")
            #expect(try await rpc.waitingTransaction(sent[0]) == nil, "the replaced transaction is still in the pool")
            return (held[0], held[held.count - 1])
        }
        #expect(replacement.nonce == first.nonce && replacement.gasLimit == first.gasLimit)
        #expect(replacement.fees.maxPerGas >= first.fees.maxPerGas + first.fees.maxPerGas / 2)
        #expect(replacement.fees.maxPerGas <= ceiling)
        if legacy {
            guard case .legacy = replacement.fees else { Issue.record("legacy replaced by \(replacement.fees)"); return }
        } else {
            guard case .eip1559 = replacement.fees else { Issue.record("EIP-1559 replaced by \(replacement.fees)"); return }
        }

        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, try await queue.job(grant.paymentId)?.state != .settled {
            try await Task.sleep(for: .milliseconds(100))
        }
        let job = try #require(try await queue.job(grant.paymentId))
        #expect(job.state == .settled, "\(job.state) \(job.lastError ?? "")")
        #expect(job.sentTransactions.count == 2, "\(job.sentTransactions)")
        let winner = try #require(job.transaction)
        #expect(winner == job.sentTransactions.last, "the replacement is the one mined")
        #expect(try await rpc.receipt(winner)?.succeeded == true)
        #expect(try await rpc.receipt(job.sentTransactions[0]) == nil, "the replaced transaction is dead")
        #expect(try await ledger.record(grant.payment.nonceKey)?.state == .settled)
        #expect(try await authorizationUsed(info, rpc, grant))
        #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
    }

    /// With the ceiling below what the chain asks, the first transaction offers the ceiling and is
    /// never replaced (a replacement would pass it): the relayer waits for it, and it settles.
    @Test func noReplacementPassesTheFeeCeiling() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let base = try #require(try await rpc.feeSuggestion()).baseFee
        let ceiling = base + base / 2  // above the base fee (mineable), below the market (2× base)
        let relayer = try relayer(info, rpc: rpc) {
            $0.receiptTimeoutSeconds = 30
            $0.replaceAfterSeconds = 1
            $0.maxFeePerGas = ceiling
        }
        let payer = info.payers[7]
        let payerBefore = try await info.balance(rpc, payer.address)
        let grant = try info.grant(from: payer)
        let recorded = RecordedHashes()
        let outcome = try await withAutomineOff(rpc) {
            let settling = Task { await relayer.settle(info.job(grant, via: .relayer), record: { await recorded.add($0) }) }
            try await Task.sleep(for: .milliseconds(3000))  // three replacement periods
            let sent = await recorded.hashes
            try #require(sent.count == 1, "a replacement past the ceiling was sent: \(sent)")
            let waiting = try #require(try await rpc.waitingTransaction(sent[0]))
            #expect(waiting.fees.maxPerGas == ceiling, "the first transaction offers the ceiling, not more")
            _ = try await rpc.call("evm_mine", "[]")
            return await settling.value
        }
        let sent = await recorded.hashes
        #expect(sent.count == 1)
        #expect(outcome == .settled(transaction: sent[0]))
        #expect(try await authorizationUsed(info, rpc, grant))
        #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
    }
}
