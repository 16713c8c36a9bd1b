import Foundation
import Testing
import X402
import X402TestSupport
@testable import X402Sidecar

/// The ledger rules, for the in-process ledgers (Redis has the same tests in X402IntegrationTests).
@Suite struct NonceLedgerTests {
    static func key(_ nonce: String, payer: String = "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a") -> NonceKey {
        NonceKey(
            network: "eip155:84532", asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", payer: payer,
            nonce: Hex.encode(Keccak256.hash(Array(nonce.utf8))))
    }

    static func temporaryJournal() -> String {
        TemporaryDirectory.file("x402-ledger", "nonces.journal")
    }

    static let future = UnixClock.seconds() + 3600

    static func exactlyOneWins(_ ledger: any NonceLedger, _ other: (any NonceLedger)? = nil) async throws {
        let key = key("contended")
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                let target = index.isMultiple(of: 2) ? ledger : (other ?? ledger)
                group.addTask { try await target.reserve(key, token: "t\(index)", expiresAt: future).value }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
    }

    @Test func memoryLedgerGivesOneWinnerAmong200() async throws {
        try await Self.exactlyOneWins(MemoryNonceLedger())
    }

    @Test func embeddedLedgerGivesOneWinnerAmong200() async throws {
        try await Self.exactlyOneWins(try EmbeddedNonceLedger(path: Self.temporaryJournal()))
    }

    @Test(arguments: ["memory", "embedded"])
    func onlyTheOwnerSettlesOrReleases(kind: String) async throws {
        let ledger: any NonceLedger = kind == "memory" ? MemoryNonceLedger() : try EmbeddedNonceLedger(path: Self.temporaryJournal())
        let key = Self.key("owner")
        #expect(try await ledger.reserve(key, token: "a", expiresAt: Self.future).value)
        #expect(try await !ledger.reserve(key, token: "b", expiresAt: Self.future).value)
        #expect(try await !ledger.release(key, token: "b"))
        #expect(try await !ledger.markSettled(key, token: "b", transaction: "0xabc"))
        #expect(try await ledger.release(key, token: "a"))
        #expect(try await ledger.record(key) == nil)
        // Released: the payer may present the same authorization again.
        #expect(try await ledger.reserve(key, token: "c", expiresAt: Self.future).value)
        #expect(try await ledger.markSettled(key, token: "c", transaction: "0xabc"))
        let record = try await ledger.record(key)
        #expect(record?.state == .settled)
        #expect(record?.transaction == "0xabc")
        // Settled is final: never released, never reserved again.
        #expect(try await !ledger.release(key, token: "c"))
        #expect(try await !ledger.reserve(key, token: "d", expiresAt: Self.future).value)
    }

    @Test func expiredRecordsAreForgotten() async throws {
        final class Clock: @unchecked Sendable {
            var now: Int64 = 1000
        }
        let clock = Clock()
        let ledger = try EmbeddedNonceLedger(path: Self.temporaryJournal(), now: { clock.now })
        let key = Self.key("expiry")
        #expect(try await ledger.reserve(key, token: "a", expiresAt: 1100).value)
        clock.now = 1099
        #expect(try await !ledger.reserve(key, token: "b", expiresAt: 1200).value)
        clock.now = 1100
        #expect(try await ledger.record(key) == nil)
        #expect(try await ledger.reserve(key, token: "b", expiresAt: 1200).value)
    }

    @Test func embeddedLedgerRemembersAcrossRestart() async throws {
        let path = Self.temporaryJournal()
        do {
            let ledger = try EmbeddedNonceLedger(path: path)
            #expect(try await ledger.reserve(Self.key("reserved"), token: "r", expiresAt: Self.future).value)
            #expect(try await ledger.reserve(Self.key("settled"), token: "s", expiresAt: Self.future).value)
            #expect(try await ledger.markSettled(Self.key("settled"), token: "s", transaction: "0xfeed"))
            #expect(try await ledger.reserve(Self.key("released"), token: "x", expiresAt: Self.future).value)
            #expect(try await ledger.release(Self.key("released"), token: "x"))
            #expect(try await ledger.reserve(Self.key("expired"), token: "e", expiresAt: UnixClock.seconds() - 1).value)
        }
        // A crash mid-write leaves a torn last line; it must be ignored.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("R 99999999999 torn eip155:84532|0x03".utf8))
        try handle.close()

        let reopened = try EmbeddedNonceLedger(path: path)
        #expect(try await !reopened.reserve(Self.key("reserved"), token: "other", expiresAt: Self.future).value)
        #expect(try await !reopened.reserve(Self.key("settled"), token: "other", expiresAt: Self.future).value)
        #expect(try await reopened.record(Self.key("settled"))?.transaction == "0xfeed")
        #expect(try await reopened.reserve(Self.key("released"), token: "again", expiresAt: Self.future).value)
        #expect(try await reopened.record(Self.key("expired")) == nil)
        // The original owner can still settle its reservation after the restart.
        #expect(try await reopened.markSettled(Self.key("reserved"), token: "r", transaction: "0x01"))
        #expect(reopened.liveCount == 3)
    }

    @Test func embeddedLedger200ConcurrentReservationsThenRestart() async throws {
        let path = Self.temporaryJournal()
        do {
            let ledger = try EmbeddedNonceLedger(path: path)
            try await Self.exactlyOneWins(ledger)
        }
        let reopened = try EmbeddedNonceLedger(path: path)
        #expect(try await !reopened.reserve(Self.key("contended"), token: "late", expiresAt: Self.future).value)
        #expect(try await reopened.record(Self.key("contended"))?.state == .reserved)
    }

    @Test func aJournalServesOneProcessAtATime() throws {
        let path = Self.temporaryJournal()
        let first = try EmbeddedNonceLedger(path: path)
        #expect(throws: NonceJournalError.self) { _ = try EmbeddedNonceLedger(path: path) }
        _ = first
    }

    @Test func journalFieldsCannotBreakTheLineFormat() async throws {
        let ledger = try EmbeddedNonceLedger(path: Self.temporaryJournal())
        await #expect(throws: NonceJournalError.self) {
            try await ledger.reserve(Self.key("k"), token: "bad token\nR 1", expiresAt: Self.future).value
        }
        #expect(try await ledger.reserve(Self.key("k"), token: "good", expiresAt: Self.future).value)
        await #expect(throws: NonceJournalError.self) {
            try await ledger.markSettled(Self.key("k"), token: "good", transaction: "0x1 0x2")
        }
    }
}
