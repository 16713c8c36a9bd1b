import Foundation
import Logging
import Testing
import X402
import X402TestSupport
@testable import X402Sidecar

/// `before` through the official facilitator when its `/settle` answer is lost (the devnet's
/// `/_devnet/cut-settle`): the chain decides what the client gets. Never "refused but charged",
/// never a fresh 402 while the first payment may still land. In the serialized devnet suite.
extension DevnetSettlementTests {
    /// A `before` sidecar settling through the devnet's facilitator, with the chain to look at.
    struct FacilitatorBefore {
        let authorizer: Authorizer
        let settlements: Settlements
        let queue: EmbeddedSettlementQueue
        let ledger: MemoryNonceLedger
    }

    func facilitatorBefore(_ info: DevnetInfo, rpc: EthereumRPC, lookSeconds: Double) throws -> FacilitatorBefore {
        var settings = SettlementSettings()
        settings.mode = .before
        settings.via = .facilitator
        settings.workerIdleMilliseconds = 50
        settings.retryBaseMilliseconds = 200
        // The client gives up on `/settle` after 2 s, well inside the request's own 20 s.
        let facilitator = FacilitatorClient(
            baseURL: info.facilitatorURL, http: HTTPJSONClient(timeout: .seconds(2)), retries: 0, chains: [84532: rpc],
            unansweredLookSeconds: lookSeconds, logger: logger)
        let ledger = MemoryNonceLedger()
        let queue = try EmbeddedSettlementQueue(path: nil)
        let settlements = Settlements(
            settings: settings, queue: queue, ledger: ledger, routes: [:], facilitator: facilitator, relayers: [:],
            logger: logger)
        let authorizer = Authorizer(routes: ["weather": info.route], verifier: PaymentVerifier(), ledger: ledger,
                                    settlements: settlements)
        return FacilitatorBefore(authorizer: authorizer, settlements: settlements, queue: queue, ledger: ledger)
    }

    /// The devnet facilitator loses its answer to `payer`'s next `/settle`, after sending the
    /// transfer (`settle`) or without sending it.
    func cutNextSettle(_ info: DevnetInfo, payer: DevnetInfo.Account, settle: Bool, answer: String,
                       delay: Int = 0) async throws {
        let body = "{\"payer\":\"\(payer.address)\",\"settle\":\(settle),\"answer\":\"\(answer)\",\"seconds\":6,"
            + "\"delay\":\(delay)}"
        let response = try await HTTPJSONClient().post(info.facilitatorURL + "/_devnet/cut-settle", json: body)
        try #require(response.status == 200, "the devnet does not know /_devnet/cut-settle")
    }

    func authorizationUsed(_ info: DevnetInfo, _ rpc: EthereumRPC, _ grant: Grant) async throws -> Bool {
        let call = try #require(TransferAuthorizationCall(
            token: info.token, authorization: grant.payment.authorization, signature: grant.payment.signature))
        return try await rpc.authorizationUsed(token: info.token, authorizer: call.from, nonce: call.nonce)
    }

    /// The transfer went out and the answer was lost (the connection cut without a byte, or held
    /// past the client's timeout): the sidecar finds the transfer on chain and serves, with the
    /// transaction in `PAYMENT-RESPONSE`. Charged once, served once.
    @Test(arguments: ["drop", "hang"])
    func beforeModeServesWhenTheUnansweredSettleTransferred(answer: String) async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let sidecar = try facilitatorBefore(info, rpc: rpc, lookSeconds: 5)
        let payer = info.payers[5]
        let payerBefore = try await info.balance(rpc, payer.address)
        let payToBefore = try await info.balance(rpc, info.payTo.address)
        try await cutNextSettle(info, payer: payer, settle: true, answer: answer)

        let decision = await sidecar.authorizer.decide(try info.paidRequest(from: payer))
        guard case .allow(let grant) = decision, let transaction = grant.transaction else {
            Issue.record("\(answer): expected allow with the transaction found on chain, got \(decision)")
            return
        }
        #expect(try await authorizationUsed(info, rpc, grant))
        let receipt = try #require(try await rpc.receipt(transaction), "\(transaction) is not a mined transaction")
        #expect(receipt.succeeded)
        #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
        #expect(try await info.balance(rpc, info.payTo.address) == payToBefore + 10000)

        let response = DecisionResponse(decision)
        #expect(response.status == .ok)
        let header = try #require(response.headers.first(name: "PAYMENT-RESPONSE"))
        let json = String(decoding: Base64.decode(header)!, as: UTF8.self)
        #expect(json.contains("\"success\":true") && json.contains(transaction))
        let job = try #require(try await sidecar.queue.job(grant.paymentId))
        #expect(job.state == .settled && job.transaction == transaction)
        #expect(try await sidecar.ledger.record(grant.payment.nonceKey)?.state == .settled)
    }

    /// The answer was lost and nothing reached the chain while the sidecar looked: the request is
    /// served (a 402 could make the client pay a second time; a refusal could charge it for
    /// nothing), the reservation is kept, and the worker settles the job exactly once — whether
    /// the lost `/settle` never sent anything, or sends its transfer late (6 s, long after our
    /// 2 s timeout and 1 s look), racing the worker's own `/settle`.
    @Test(arguments: [false, true])
    func beforeModeKeepsAnUnansweredSettleInDoubtAndTheWorkerSettlesItOnce(transferLate: Bool) async throws {
        let info = try DevnetInfo.load()
        let rpc = EthereumRPC(url: info.rpcURL)
        let sidecar = try facilitatorBefore(info, rpc: rpc, lookSeconds: 1)
        let payer = info.payers[transferLate ? 4 : 6]
        let payerBefore = try await info.balance(rpc, payer.address)
        try await cutNextSettle(info, payer: payer, settle: transferLate, answer: "drop", delay: transferLate ? 6 : 0)
        let cutAt = ContinuousClock.now

        let request = try info.paidRequest(from: payer)
        let decision = await sidecar.authorizer.decide(request)
        guard case .allow(let grant) = decision else {
            Issue.record("expected the in-doubt payment to be served, got \(decision)")
            return
        }
        #expect(grant.transaction == nil, "nothing is on chain yet: no PAYMENT-RESPONSE to give")
        let response = DecisionResponse(decision)
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "PAYMENT-RESPONSE") == nil)
        #expect(try await !authorizationUsed(info, rpc, grant))
        #expect(try await info.balance(rpc, payer.address) == payerBefore)
        let pending = try #require(try await sidecar.queue.job(grant.paymentId))
        #expect(pending.state == .pending, "an authorization in doubt must never be released")
        #expect(try await sidecar.ledger.record(grant.payment.nonceKey)?.state == .reserved)

        // The same header again, while in doubt: refused as used, nothing charged a second time.
        let replay = await sidecar.authorizer.decide(request)
        guard case .paymentRequired(_, let failure) = replay else {
            Issue.record("expected 402 for the replay, got \(replay)")
            return
        }
        #expect(failure?.reason == .nonceAlreadyUsed)

        let worker = Task { try await SettlementWorker(settlements: sidecar.settlements).run() }
        defer { worker.cancel() }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, try await sidecar.queue.job(grant.paymentId)?.state != .settled {
            try await Task.sleep(for: .milliseconds(100))
        }
        let settled = try #require(try await sidecar.queue.job(grant.paymentId))
        #expect(settled.state == .settled, "\(settled.state) \(settled.lastError ?? "")")
        let transaction = try #require(settled.transaction)
        #expect(try await rpc.receipt(transaction)?.succeeded == true)
        #expect(try await authorizationUsed(info, rpc, grant))
        #expect(try await sidecar.ledger.record(grant.payment.nonceKey)?.state == .settled)
        // Past the late transfer's attempt too: one of the two `/settle`s moved the money, once.
        try await Task.sleep(until: cutAt + .seconds(8), clock: .continuous)
        #expect(try await info.balance(rpc, payer.address) == payerBefore - 10000)
    }
}
