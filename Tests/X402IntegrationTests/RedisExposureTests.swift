import Testing
import X402

@testable import X402Sidecar

/// Pending exposure in Redis, shared by two ledger instances (two sidecars).
@Suite(.serialized, .enabled(if: IntegrationEnvironment.redisEnabled))
struct RedisExposureTests {
    static let future = UnixClock.seconds() + 3600

    /// One payer per test run (its exposure keys are fresh), nonces by name.
    static func keys(_ count: Int) -> [NonceKey] {
        let payer = Hex.encode(OpenSSL.randomBytes(20))
        return (0..<count).map { index in
            NonceKey(network: "eip155:84532", asset: "0x036cbd53842c5426634e7929541ec2318f3dcf7e", payer: payer,
                     nonce: Hex.encode(Keccak256.hash(Array("\(payer)-\(index)".utf8))))
        }
    }

    @Test func twoInstances100ConcurrentPaymentsExactlyWhatTheBalanceCoversIsHeld() async throws {
        let keys = Self.keys(100)
        // A balance of seven payments and a bit: seven are held, whichever instance they reach.
        let hold = ExposureHold(amount: 10_000, limit: 75_000)
        let outcomes = try await RedisNonceLedgerTests.withLedger { first in
            try await RedisNonceLedgerTests.withLedger { second in
                try await withThrowingTaskGroup(of: Reservation.self) { group in
                    for (index, key) in keys.enumerated() {
                        let ledger = index.isMultiple(of: 2) ? first : second
                        group.addTask {
                            try await ledger.reserve(key, token: "t\(index)", expiresAt: Self.future, holding: hold).value
                        }
                    }
                    return try await group.reduce(into: [Reservation]()) { $0.append($1) }
                }
            }
        }
        #expect(outcomes.filter { $0 == .reserved }.count == 7)
        #expect(outcomes.filter { $0 == .overLimit(pending: 70_000) }.count == 93)
    }

    @Test func releaseGivesBackSettlementKeepsAndReplaysHoldNothing() async throws {
        let keys = Self.keys(4)
        try await RedisNonceLedgerTests.withLedger { (ledger) async throws -> Void in
            let hold = ExposureHold(amount: 10_000, limit: 20_000)
            #expect(try await ledger.reserve(keys[0], token: "a", expiresAt: Self.future, holding: hold).value == .reserved)
            #expect(try await ledger.reserve(keys[1], token: "b", expiresAt: Self.future, holding: hold).value == .reserved)
            #expect(try await ledger.reserve(keys[2], token: "c", expiresAt: Self.future, holding: hold).value
                == .overLimit(pending: 20_000))
            // The same authorization again is a replay, and holds nothing more.
            #expect(try await ledger.reserve(keys[0], token: "z", expiresAt: Self.future, holding: hold).value
                == .alreadyUsed)
            #expect(try await ledger.pendingExposure(keys[0]) == 20_000)
            // Only the owner's release gives the amount back.
            #expect(try await ledger.release(keys[1], token: "not-b") == false)
            #expect(try await ledger.release(keys[1], token: "b"))
            #expect(try await ledger.pendingExposure(keys[0]) == 10_000)
            // Settled: still counted for the settled hold (15 s by default).
            #expect(try await ledger.markSettled(keys[0], token: "a", transaction: "0xfeed"))
            #expect(try await ledger.pendingExposure(keys[0]) == 10_000)
            // An amount past 2^53 adds exactly (decimal arithmetic in the script, not Lua numbers).
            let big = ExposureHold(amount: 9_007_199_254_740_993, limit: nil)
            #expect(try await ledger.reserve(keys[3], token: "d", expiresAt: Self.future, holding: big).value == .reserved)
            #expect(try await ledger.pendingExposure(keys[0]) == 9_007_199_254_750_993)
        }
    }
}
