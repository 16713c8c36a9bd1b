import Testing
import X402
@testable import X402Sidecar

/// What a replacement of a stuck relayer transaction offers, without a chain: nodes take it only
/// when both fees rise by 10 % or more; the operator's ceiling is never passed.
@Suite struct FeeReplacementTests {
    @Test func bothFeesRiseByThePercentRoundedUp() {
        let eip1559 = EVMTransaction.Fees.eip1559(maxFeePerGas: 1_000_001, maxPriorityFeePerGas: 3)
        #expect(eip1559.replacement(percent: 20, market: nil, ceiling: nil)
            == .eip1559(maxFeePerGas: 1_200_002, maxPriorityFeePerGas: 4))
        #expect(EVMTransaction.Fees.legacy(gasPrice: 10).replacement(percent: 10, market: nil, ceiling: nil)
            == .legacy(gasPrice: 11))
        // A zero tip still rises (a replacement that offers the same is refused).
        #expect(EVMTransaction.Fees.eip1559(maxFeePerGas: 100, maxPriorityFeePerGas: 0)
            .replacement(percent: 10, market: nil, ceiling: nil) == .eip1559(maxFeePerGas: 110, maxPriorityFeePerGas: 1))
    }

    @Test func theMarketIsAFloorAndTheCeilingALimit() {
        let stuck = EVMTransaction.Fees.eip1559(maxFeePerGas: 100, maxPriorityFeePerGas: 10)
        let market = EVMTransaction.Fees.eip1559(maxFeePerGas: 300, maxPriorityFeePerGas: 5)
        #expect(stuck.replacement(percent: 20, market: market, ceiling: 300)
            == .eip1559(maxFeePerGas: 300, maxPriorityFeePerGas: 12))
        #expect(stuck.replacement(percent: 20, market: market, ceiling: 299) == nil)
        #expect(stuck.replacement(percent: 20, market: nil, ceiling: 119) == nil)
        #expect(EVMTransaction.Fees.legacy(gasPrice: 100).replacement(percent: 20, market: .legacy(gasPrice: 90),
                                                                       ceiling: 120) == .legacy(gasPrice: 120))
    }

    @Test func aFirstTransactionIsHeldToTheCeiling() {
        #expect(EVMTransaction.Fees.eip1559(maxFeePerGas: 500, maxPriorityFeePerGas: 400).capped(at: 300)
            == .eip1559(maxFeePerGas: 300, maxPriorityFeePerGas: 300))
        #expect(EVMTransaction.Fees.legacy(gasPrice: 500).capped(at: 300) == .legacy(gasPrice: 300))
        #expect(EVMTransaction.Fees.legacy(gasPrice: 500).capped(at: nil) == .legacy(gasPrice: 500))
    }

    /// The hashes a job records survive the queue's encoding, in order, once each.
    @Test func sentTransactionsAreKeptInTheJob() throws {
        var job = SettlementLifecycleTests.job(.deferred)
        #expect(!job.encoded().contains("sentTransactions"))
        job.noteSent(["0xa", "0xb", "0xa"])
        job.transaction = "0xb"
        let decoded = try SettlementJob.decode(job.encoded()).get()
        #expect(decoded.sentTransactions == ["0xa", "0xb"] && decoded.transaction == "0xb")
        #expect(decoded.knownTransactions == ["0xa", "0xb"])
    }
}
