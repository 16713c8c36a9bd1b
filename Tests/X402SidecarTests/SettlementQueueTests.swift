import Foundation
import HeapModule
import Testing
import X402
import X402TestSupport
@testable import X402Sidecar

/// The embedded settlement queue: due order, leases, counts, the journal across reopen, compaction
/// and torn lines. Jobs live on disk and only an index in memory, so every test that reopens or
/// compacts also checks that the bodies come back intact.
@Suite struct SettlementQueueTests {
    static func journal() -> String {
        TemporaryDirectory.file("x402-queue", "settlements.journal")
    }

    static func job(_ n: Int, state: SettlementJob.State = .pending, dueAt: Int64 = 100, holdUntil: Int64 = 0)
        -> SettlementJob
    {
        let nonce = Hex.encode(Keccak256.hash(Array("nonce \(n)".utf8)))
        return SettlementJob(
            id: String(format: "%032x", n), route: "weather", mode: state == .held ? .after : .deferred, via: .relayer,
            state: state, version: 2, network: "eip155:84532", chainId: 84532,
            asset: "0x036cbd53842c5426634e7929541ec2318f3dcf7e", payTo: "0x209693bc6afc0c5328ba36faf03c514ef312287c",
            amount: "10000", payer: "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a",
            authorization: Authorization(
                from: "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a", to: "0x209693bc6afc0c5328ba36faf03c514ef312287c",
                value: "10000", validAfter: "0", validBefore: "1999999999", nonce: nonce),
            signature: "0x" + String(repeating: "ab", count: 65),
            // Canonical JSON (sorted keys), as a job read back from the journal has it.
            paymentPayload: "{\"n\":\(n),\"text\":\"line \\\"\\\\ \",\"x402Version\":2}",
            paymentRequirements: "{\"amount\":\"10000\",\"scheme\":\"exact\"}", createdAt: 90, dueAt: dueAt,
            holdUntil: holdUntil, attempts: 0, transaction: nil, lastError: nil, upstreamStatus: nil)
    }

    @Test(arguments: [false, true])
    func claimsDueJobsInOrderAndHidesThemForTheLease(onDisk: Bool) async throws {
        let queue = try EmbeddedSettlementQueue(path: onDisk ? Self.journal() : nil)
        try await queue.put(Self.job(1, dueAt: 300)).value
        try await queue.put(Self.job(2, dueAt: 100)).value
        try await queue.put(Self.job(3, dueAt: 200)).value
        try await queue.put(Self.job(4, state: .held, holdUntil: 150)).value
        try await queue.put(Self.job(5, state: .dead)).value
        #expect(try await queue.stats() == SettlementQueueStats(pending: 3, held: 1, dead: 1))

        #expect(try await queue.claim(now: 99, limit: 10, lease: 30).isEmpty)
        let first = try await queue.claim(now: 250, limit: 10, lease: 30)
        #expect(first.map(\.id) == [Self.job(2).id, Self.job(4).id, Self.job(3).id])
        #expect(first[0] == Self.job(2, dueAt: 100))
        // Claimed jobs are hidden until their lease runs out (the worker may have died).
        #expect(try await queue.claim(now: 260, limit: 10, lease: 30).isEmpty)
        #expect(try await queue.claim(now: 281, limit: 1, lease: 30).map(\.id) == [Self.job(2).id])
        #expect(try await queue.claim(now: 300, limit: 10, lease: 30).map(\.id).sorted()
            == [Self.job(1).id, Self.job(3).id, Self.job(4).id].sorted())

        // Finishing, retrying and killing change the counts and what is claimable.
        var settled = Self.job(2)
        settled.state = .settled
        settled.transaction = "0x" + String(repeating: "1", count: 64)
        try await queue.put(settled).value
        var retried = Self.job(3)
        retried.attempts = 1
        retried.dueAt = 1000
        try await queue.put(retried).value
        var dead = Self.job(1)
        dead.state = .dead
        try await queue.put(dead).value
        #expect(try await queue.stats() == SettlementQueueStats(pending: 1, held: 1, dead: 2))
        #expect(try await queue.job(settled.id) == settled)
        #expect(try await queue.job(retried.id) == retried)
        #expect(try await queue.claim(now: 999, limit: 10, lease: 30).map(\.id) == [Self.job(4).id])
        #expect(try await queue.claim(now: 1000, limit: 10, lease: 30) == [retried])
    }

    @Test func putIfHeldStoresOnlyOverAHeldJob() async throws {
        let queue = try EmbeddedSettlementQueue(path: Self.journal())
        try await queue.put(Self.job(1, state: .held, holdUntil: 500)).value
        var decided = Self.job(1, state: .held, holdUntil: 500)
        decided.state = .pending
        decided.upstreamStatus = 200
        #expect(try await queue.putIfHeld(decided))
        var late = decided
        late.state = .released
        #expect(try await !queue.putIfHeld(late))
        #expect(try await queue.job(decided.id) == decided)
    }

    @Test func reopeningKeepsUnfinishedJobsAndTheirBodies() async throws {
        let path = Self.journal()
        do {
            let queue = try EmbeddedSettlementQueue(path: path)
            for n in 0..<20 { try await queue.put(Self.job(n, dueAt: Int64(100 + n))).value }
            for n in 0..<5 {
                var done = Self.job(n, dueAt: Int64(100 + n))
                done.state = .settled
                try await queue.put(done).value
            }
            var changed = Self.job(7, dueAt: 107)
            changed.attempts = 3
            changed.transaction = "0x" + String(repeating: "7", count: 64)
            try await queue.put(changed).value
        }
        // A write torn by a crash: the half line never counted.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("J {\"id\":\"torn".utf8))
        try handle.close()

        let reopened = try EmbeddedSettlementQueue(path: path)
        #expect(try await reopened.stats() == SettlementQueueStats(pending: 15, held: 0, dead: 0))
        let claimed = try await reopened.claim(now: 10_000, limit: 100, lease: 30)
        #expect(claimed.map(\.id) == (5..<20).map { Self.job($0).id })
        for job in claimed where job.id != Self.job(7).id {
            #expect(job == Self.job(Int(job.id, radix: 16)!, dueAt: job.dueAt))
        }
        #expect(claimed.first { $0.id == Self.job(7).id }?.attempts == 3)
        #expect(claimed.first { $0.id == Self.job(7).id }?.transaction == "0x" + String(repeating: "7", count: 64))
    }

    @Test func compactionKeepsEveryBodyReadable() async throws {
        let path = Self.journal()
        do {
            let queue = try EmbeddedSettlementQueue(path: path)
            // Enough changes to compact several times (the journal outgrows twice the live jobs).
            for n in 0..<3000 {
                try await queue.put(Self.job(n, dueAt: Int64(n))).value
                if n % 3 != 0 {
                    var done = Self.job(n, dueAt: Int64(n))
                    done.state = .settled
                    try await queue.put(done).value
                }
            }
            let lines = try AppendLog.readLines(path: path).count
            #expect(lines < 3000 + 2 * 1000 + 1100, "journal has \(lines) lines: never compacted")
            #expect(try await queue.stats().pending == 1000)
            let claimed = try await queue.claim(now: 5000, limit: 5000, lease: 30)
            #expect(claimed.count == 1000)
            #expect(claimed.allSatisfy { $0 == Self.job(Int($0.id, radix: 16)!, dueAt: $0.dueAt) })
        }
        let reopened = try EmbeddedSettlementQueue(path: path)
        let claimed = try await reopened.claim(now: 5000, limit: 5000, lease: 30)
        #expect(claimed.count == 1000)
        #expect(claimed.allSatisfy { $0 == Self.job(Int($0.id, radix: 16)!, dueAt: $0.dueAt) })
    }

    @Test func aSecondProcessCannotOpenTheSameJournal() throws {
        let path = Self.journal()
        let first = try EmbeddedSettlementQueue(path: path)
        #expect(throws: JournalError.self) { try EmbeddedSettlementQueue(path: path) }
        _ = first
    }

    @Test func heapGivesTheSmallestFirst() {
        var heap = Heap<Int>()
        var generator = SystemRandomNumberGenerator()
        let values = (0..<500).map { _ in Int.random(in: 0..<100, using: &generator) }
        for value in values { heap.insert(value) }
        var out: [Int] = []
        while let value = heap.popMin() { out.append(value) }
        #expect(out == values.sorted())
    }
}
