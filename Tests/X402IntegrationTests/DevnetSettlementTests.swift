import Foundation
import Logging
import Testing
import X402
import X402TestSupport
@testable import X402Sidecar

extension DevnetInfo {
    static var enabled: Bool { path != nil || IntegrationEnvironment.required }

    /// The devnet of this test run, or a recorded issue when `make test` did not name one.
    static func load() throws -> DevnetInfo {
        do {
            return try loadFromEnvironment()
        } catch {
            Issue.record("\(error)")
            throw IntegrationEnvironment.MissingServer()
        }
    }

    /// A payment header signed by `payer` for this route, with a fresh nonce.
    func paymentHeader(from payer: Account, version: Int = 2) throws -> String {
        let signer = try #require(PaymentSigner(privateKeyHex: payer.privateKey))
        return signer.header(paying: option, resource: resource, version: version, now: UnixClock.seconds(),
                             nonce: OpenSSL.randomBytes(32))
    }

    /// An `/authorize` request for the route carrying a fresh v2 payment from `payer`.
    func paidRequest(from payer: Account) throws -> AuthorizeRequest {
        AuthorizeRequest(
            route: "weather", method: "GET", uri: "/weather", scheme: "http", host: "localhost", clientAddress: nil,
            requestId: nil, payment: PresentedPayment(v2Header: try paymentHeader(from: payer)))
    }

    /// A granted payment from `payer` with a fresh nonce, as the authorizer would hand it over.
    func grant(from payer: Account, version: Int = 2) throws -> Grant {
        let header = try paymentHeader(from: payer, version: version)
        let presented = version == 2 ? PresentedPayment(v2Header: header) : PresentedPayment(v1Header: header)
        switch PaymentVerifier().verify(presented, route: route, now: UnixClock.seconds()) {
        case .success(let payment): return Grant(payment: payment, paymentId: Hex.encode(OpenSSL.randomBytes(16), prefix: false))
        case .failure(let failure): throw failure
        }
    }

    func job(_ grant: Grant, mode: SettlementMode = .deferred, via: SettlementVia) -> SettlementJob {
        SettlementJob(grant: grant, route: "weather", mode: mode, via: via, resource: resource,
                      now: UnixClock.seconds(), holdSeconds: 30)
    }

    func balance(_ rpc: EthereumRPC, _ address: String) async throws -> UInt64 {
        let word = try await rpc.balanceOf(token: token, owner: Hex.decode(address, byteCount: 20)!)
        return word.suffix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension PaymentFailure: CustomStringConvertible {
    public var description: String { "\(reason.rawValue): \(message)" }
}

/// Settlement against the local devnet (a real EVM with our EIP-3009 token, and the official
/// x402 facilitator), started by deploy/dev/run-tests.sh.
@Suite(.serialized, .enabled(if: DevnetInfo.enabled))
struct DevnetSettlementTests {
    let logger = Logger(label: "devnet-test")
    let noRecord: @Sendable (String) async throws -> Void = { _ in }

    func relayer(_ info: DevnetInfo, rpc: EthereumRPC, configure: (inout Relayer.Options) -> Void = { _ in }) throws
        -> Relayer
    {
        var options = Relayer.Options()
        configure(&options)
        return try #require(Relayer(rpc: rpc, chainId: 84532, privateKeyHex: info.relayer.privateKey, options: options,
                                    logger: logger))
    }

    @Test func relayerSettlesExactlyOnceAndBalancesMoveByThePrice() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        #expect(try await rpc.chainId() == 84532)
        let relayer = try relayer(info, rpc: rpc)
        let payer = info.payers[0]
        let payerBefore = try await info.balance(rpc, payer.address)
        let payToBefore = try await info.balance(rpc, info.payTo.address)

        var job = info.job(try info.grant(from: payer), via: .relayer)
        let recorded = RecordedHashes()
        let outcome = await relayer.settle(job, record: { await recorded.add($0) })
        guard case .settled(let transaction) = outcome else {
            Issue.record("expected settled, got \(outcome)")
            return
        }
        #expect(await recorded.hashes == [transaction])
        #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
        #expect(try await info.balance(rpc, info.payTo.address) == payToBefore + 10000)
        let receipt = try #require(try await rpc.receipt(transaction))
        #expect(receipt.succeeded)

        // The worker picks the job up again (say after a crash): the recorded transaction settles
        // it, and nothing is sent.
        job.transaction = transaction
        job.attempts = 1
        let again = await relayer.settle(job, record: { await recorded.add($0) })
        #expect(again == .settled(transaction: transaction))
        #expect(await recorded.hashes == [transaction])

        // The same authorization without our record: the chain says it is used; nothing is sent.
        job.transaction = nil
        let third = await relayer.settle(job, record: { await recorded.add($0) })
        guard case .failed(let reason, _) = third else {
            Issue.record("expected failed, got \(third)")
            return
        }
        #expect(reason == .nonceAlreadyUsed)
        #expect(await recorded.hashes == [transaction])
        #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
        #expect(try await info.balance(rpc, info.payTo.address) == payToBefore + 10000)
    }

    /// A transaction that was sent but is not mined yet (a slow block on a live chain; here the
    /// devnet's automine switched off) is waited for on the next attempt, not raced by a second
    /// transaction for the same authorization, which could only revert and waste gas.
    @Test func aSentTransactionNotYetMinedIsWaitedForNotResubmitted() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let relayer = try relayer(info, rpc: rpc) { $0.receiptTimeoutSeconds = 1 }
        let payer = info.payers[1]
        let payerBefore = try await info.balance(rpc, payer.address)
        var job = info.job(try info.grant(from: payer), via: .relayer)
        let recorded = RecordedHashes()
        let record: @Sendable (String) async throws -> Void = { await recorded.add($0) }

        _ = try await rpc.call("evm_setAutomine", "[false]")
        let outcome: Result<(SettleOutcome, SettleOutcome, String), any Error>
        do {
            let first = await relayer.settle(job, record: record)
            guard case .retry(_, let sent?) = first else {
                throw OutboundError(kind: .badAnswer, description: "expected a pending retry, got \(first)")
            }
            #expect(try await rpc.transactionKnown(sent))
            #expect(try await rpc.receipt(sent) == nil)
            job.transaction = sent
            job.attempts = 1
            // The block arrives while the second attempt waits for the receipt.
            let miner = Task {
                try await Task.sleep(for: .milliseconds(300))
                _ = try await rpc.call("evm_mine", "[]")
            }
            let second = await relayer.settle(job, record: record)
            try await miner.value
            outcome = .success((first, second, sent))
        } catch {
            outcome = .failure(error)
        }
        _ = try await rpc.call("evm_setAutomine", "[true]")
        let (_, second, sent) = try outcome.get()
        #expect(second == .settled(transaction: sent))
        #expect(await recorded.hashes == [sent], "a second transaction was signed for the same authorization")
        #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
    }

    @Test func relayerLegacyTransactionsAndV1Payments() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let relayer = try relayer(info, rpc: rpc) { $0.legacyTransactions = true }
        let payer = info.payers[1]
        let before = try await info.balance(rpc, payer.address)
        let outcome = await relayer.settle(info.job(try info.grant(from: payer, version: 1), via: .relayer), record: noRecord)
        guard case .settled = outcome else {
            Issue.record("expected settled, got \(outcome)")
            return
        }
        #expect(try await info.balance(rpc, payer.address) == before - 10000)
    }

    @Test func payerWithoutFundsIsRefusedWithInsufficientBalance() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let grant = try info.grant(from: info.poorPayer)
        let relayerOutcome = try await relayer(info, rpc: rpc).settle(info.job(grant, via: .relayer), record: noRecord)
        #expect(relayerOutcome == .failed(reason: .insufficientBalance, message: "payer balance is below the price"))

        // Without the balance pre-check the simulation refuses it with USDC's revert string.
        let simulating = try relayer(info, rpc: rpc) { $0.checkBalance = false }
        let simulated = await simulating.settle(info.job(grant, via: .relayer), record: noRecord)
        guard case .failed(let reason, _) = simulated else {
            Issue.record("expected failed, got \(simulated)")
            return
        }
        #expect(reason == .insufficientBalance)

        let facilitator = FacilitatorClient(baseURL: info.facilitatorURL, http: HTTPJSONClient(), logger: logger)
        let verdict = try await facilitator.verify(info.job(grant, via: .facilitator).facilitatorRequest)
        #expect(!verdict.isValid)
        #expect(verdict.invalidReason == X402Reason.insufficientBalance.rawValue)
    }

    @Test func facilitatorVerifiesAndSettlesOnce() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let facilitator = FacilitatorClient(baseURL: info.facilitatorURL, http: HTTPJSONClient(), logger: logger)
        let supported = try await facilitator.supported()
        #expect(supported.contains { $0.0 == 2 && $0.1 == "exact" && $0.2 == "eip155:84532" })

        for version in [2, 1] {
            let payer = info.payers[2]
            let payerBefore = try await info.balance(rpc, payer.address)
            let payToBefore = try await info.balance(rpc, info.payTo.address)
            var job = info.job(try info.grant(from: payer, version: version), via: .facilitator)
            let verdict = try await facilitator.verify(job.facilitatorRequest)
            #expect(verdict.isValid, "v\(version): \(verdict)")
            #expect(verdict.payer?.lowercased() == payer.address.lowercased())
            job.attempts = 1
            let outcome = await facilitator.settle(job, record: noRecord)
            guard case .settled(let transaction) = outcome else {
                Issue.record("v\(version): expected settled, got \(outcome)")
                continue
            }
            #expect(try await rpc.receipt(transaction)?.succeeded == true)
            #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
            #expect(try await info.balance(rpc, info.payTo.address) == payToBefore + 10000)

            // Submitted twice: the second is refused, nothing moves.
            let second = await facilitator.settle(job, record: noRecord)
            guard case .failed = second else {
                Issue.record("v\(version): expected the second settle to fail, got \(second)")
                continue
            }
            #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
        }
    }

    @Test func beforeModeSettlesInlineAndAnswersWithPaymentResponse() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        var settings = SettlementSettings()
        settings.mode = .before
        settings.via = .relayer
        let ledger = MemoryNonceLedger()
        let settlements = Settlements(
            settings: settings, queue: try EmbeddedSettlementQueue(path: nil), ledger: ledger, routes: [:],
            facilitator: nil, relayers: [84532: try relayer(info, rpc: rpc)], logger: logger)
        let authorizer = Authorizer(routes: ["weather": info.route], verifier: PaymentVerifier(), ledger: ledger,
                                    settlements: settlements)
        let payer = info.payers[3]
        let before = try await info.balance(rpc, payer.address)
        let request = try info.paidRequest(from: payer)
        let decision = await authorizer.decide(request)
        guard case .allow(let grant) = decision, let transaction = grant.transaction else {
            Issue.record("expected allow with a transaction, got \(decision)")
            return
        }
        #expect(try await info.balance(rpc, payer.address) == before - 10000)
        let response = DecisionResponse(decision)
        let settled = try #require(response.headers.first(name: "PAYMENT-RESPONSE"))
        let json = String(decoding: Base64.decode(settled)!, as: UTF8.self)
        #expect(json.contains("\"success\":true"))
        #expect(json.contains(transaction))
        #expect(try await ledger.record(grant.payment.nonceKey)?.state == .settled)

        // The same header again: refused by the ledger, nothing charged.
        let replay = await authorizer.decide(request)
        guard case .paymentRequired(_, let failure) = replay else {
            Issue.record("expected 402, got \(replay)")
            return
        }
        #expect(failure?.reason == .nonceAlreadyUsed)
        #expect(try await info.balance(rpc, payer.address) == before - 10000)
    }

    /// `before` with a transaction that is sent but not mined within the wait (settlement_pending):
    /// the request is served (a 402 would make the client pay twice), and the worker reconciles
    /// the job from that same transaction once it is mined: one transfer, nothing sent twice.
    /// Either the relayer stops waiting for the receipt, or the request's own `before` timeout cuts
    /// the settlement off while the relayer still waits: both leave a sent transaction behind.
    @Test(arguments: [false, true])
    func beforeModeServesASettlementPendingAndTheWorkerReconcilesIt(cutOffByTheBeforeTimeout: Bool) async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        var settings = SettlementSettings()
        settings.mode = .before
        settings.via = .relayer
        settings.workerIdleMilliseconds = 50
        settings.retryBaseMilliseconds = 200
        if cutOffByTheBeforeTimeout { settings.beforeTimeoutSeconds = 1 }
        let relayer = try relayer(info, rpc: rpc) { $0.receiptTimeoutSeconds = cutOffByTheBeforeTimeout ? 30 : 1 }
        let ledger = MemoryNonceLedger()
        let queue = try EmbeddedSettlementQueue(path: nil)
        let settlements = Settlements(
            settings: settings, queue: queue, ledger: ledger, routes: [:], facilitator: nil,
            relayers: [84532: relayer], logger: logger)
        let authorizer = Authorizer(routes: ["weather": info.route], verifier: PaymentVerifier(), ledger: ledger,
                                    settlements: settlements)
        let payer = info.payers[cutOffByTheBeforeTimeout ? 4 : 2]
        let before = try await info.balance(rpc, payer.address)
        let request = try info.paidRequest(from: payer)

        _ = try await rpc.call("evm_setAutomine", "[false]")
        let decision = await authorizer.decide(request)
        let pending: SettlementJob?
        if case .allow(let grant) = decision { pending = try await queue.job(grant.paymentId) } else { pending = nil }
        _ = try await rpc.call("evm_setAutomine", "[true]")  // mines what waited in the pool

        guard case .allow(let grant) = decision, let job = pending, let sent = job.transaction else {
            Issue.record("expected a served settlement_pending with its transaction queued, got \(decision)")
            return
        }
        #expect(grant.transaction == nil, "not settled yet: no PAYMENT-RESPONSE to give")
        #expect(job.state == .pending)
        let worker = Task { try await SettlementWorker(settlements: settlements).run() }
        defer { worker.cancel() }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, try await queue.job(grant.paymentId)?.state != .settled {
            try await Task.sleep(for: .milliseconds(100))
        }
        let settled = try #require(try await queue.job(grant.paymentId))
        #expect(settled.state == .settled, "\(settled.state) \(settled.lastError ?? "")")
        #expect(settled.transaction == sent, "the worker must finish the transaction that was sent, not send another")
        #expect(try await ledger.record(grant.payment.nonceKey)?.state == .settled)
        #expect(try await info.balance(rpc, payer.address) == before - 10000)
    }

    @Test func deferredJobsAreSettledByTheWorker() async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        var settings = SettlementSettings()
        settings.via = .relayer
        settings.workerIdleMilliseconds = 50
        let ledger = MemoryNonceLedger()
        let queue = try EmbeddedSettlementQueue(path: nil)
        let settlements = Settlements(
            settings: settings, queue: queue, ledger: ledger, routes: [:], facilitator: nil,
            relayers: [84532: try relayer(info, rpc: rpc)], logger: logger)
        let payer = info.payers[0]
        let before = try await info.balance(rpc, payer.address)
        var ids: [String] = []
        for _ in 0..<5 {
            let grant = try info.grant(from: payer)
            #expect(try await ledger.reserve(grant.payment.nonceKey, token: grant.paymentId, expiresAt: UnixClock.seconds() + 600).value)
            let request = AuthorizeRequest(
                route: "weather", method: "GET", uri: "/weather", scheme: "http", host: "localhost", clientAddress: nil,
                requestId: nil, payment: PresentedPayment())
            let queued = SettlementLifecycle.queued(
                grant, route: info.route, policy: settlements.policy(info.route.name), settings: settings,
                resource: ResourceInfo(url: request.resourceURL, description: "", mimeType: "application/json"),
                now: UnixClock.seconds())
            #expect(await settlements.recorder.apply(queued) == .applied)
            ids.append(grant.paymentId)
        }
        let worker = Task { try await SettlementWorker(settlements: settlements).run() }
        defer { worker.cancel() }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, try await queue.stats().pending > 0 {
            try await Task.sleep(for: .milliseconds(100))
        }
        for id in ids {
            let job = try #require(try await queue.job(id))
            #expect(job.state == .settled, "\(id): \(job.state) \(job.lastError ?? "")")
            #expect(try await ledger.record(job.nonceKey)?.state == .settled)
        }
        #expect(try await info.balance(rpc, payer.address) == before - 50000)
    }
}

actor RecordedHashes {
    var hashes: [String] = []
    func add(_ hash: String) { hashes.append(hash) }
}
