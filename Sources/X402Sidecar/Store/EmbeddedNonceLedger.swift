import Synchronization
import X402

/// One host, no servers: the ledger lives in process and every change is appended to a journal
/// file before it takes effect, so a restart (even `kill -9`) forgets no reservation.
///
/// The decision and its journal line happen in one critical section: two concurrent callers can
/// never both win, and a reservation is never granted unless its line was written. Once a write
/// fails the ledger refuses everything (fail closed) until restarted.
public final class EmbeddedNonceLedger: NonceLedger {
    private struct State: ~Copyable {
        var table = NonceTable()
        var journal: NonceJournal
        var failure: NonceJournalError?
    }

    private let state: Mutex<State>
    private let now: @Sendable () -> Int64
    /// With an fsync per write a decision can take milliseconds: it is then answered as work to
    /// run off the event loops (`.suspending`), otherwise in place.
    let decidesWithoutBlocking: Bool
    /// Compact when the journal holds this many times more lines than live records.
    private let compactionRatio = 4
    private let compactionMinimumLines = 100_000

    /// Opens (or creates) the journal at `path`, replays it, and compacts it.
    public init(path: String, fsync: Bool = false, now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() })
        throws
    {
        self.now = now
        self.decidesWithoutBlocking = !fsync
        let journal = try NonceJournal(path: path, fsync: fsync)
        var table = NonceTable()
        _ = try NonceJournal.replay(path: path, into: &table, now: now())
        try journal.compact(records: table.liveRecords(now: now()))
        state = Mutex(State(table: table, journal: journal))
    }

    /// Records currently remembered (reserved or settled, not expired).
    public var liveCount: Int { state.withLock { $0.table.count } }

    public func isKnownUsed(_ key: NonceKey) -> Bool {
        let now = self.now()
        return state.withLock { $0.table.isLive(key, now: now) }
    }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64) -> StoreAnswer<Bool> {
        guard decidesWithoutBlocking else {
            return .suspending { try self.reserveLocked(key, token: token, expiresAt: expiresAt) }
        }
        return .now { try reserveLocked(key, token: token, expiresAt: expiresAt) }
    }

    private func reserveLocked(_ key: NonceKey, token: String, expiresAt: Int64) throws -> Bool {
        try check(key, token)
        let now = self.now()
        return try state.withLock { (state) throws -> Bool in
            if let failure = state.failure { throw failure }
            if state.table.isLive(key, now: now) { return false }
            try write(NonceJournal.reserved(key, token: token, expiresAt: expiresAt), &state)
            let won = state.table.reserve(key, token: token, expiresAt: expiresAt, now: now)
            compactIfNeeded(&state, now: now)
            return won
        }
    }

    @discardableResult
    public func markSettled(_ key: NonceKey, token: String, transaction: String) async throws -> Bool {
        try check(key, token)
        guard NonceJournal.isSafeField(transaction) else {
            throw NonceJournalError(description: "transaction id is not a single printable word")
        }
        let now = self.now()
        return try state.withLock { (state) throws -> Bool in
            if let failure = state.failure { throw failure }
            guard state.table.holds(key, token: token, now: now) else { return false }
            try write(NonceJournal.settled(key, token: token, transaction: transaction), &state)
            return state.table.settle(key, token: token, transaction: transaction, now: now)
        }
    }

    @discardableResult
    public func release(_ key: NonceKey, token: String) async throws -> Bool {
        try check(key, token)
        let now = self.now()
        return try state.withLock { (state) throws -> Bool in
            if let failure = state.failure { throw failure }
            guard state.table.holds(key, token: token, now: now) else { return false }
            try write(NonceJournal.released(key, token: token), &state)
            return state.table.release(key, token: token, now: now)
        }
    }

    public func record(_ key: NonceKey) async throws -> NonceRecord? {
        let now = self.now()
        return state.withLock { $0.table.live(key, now: now) }
    }

    public func checkReady() async throws {
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    private func check(_ key: NonceKey, _ token: String) throws {
        for field in [key.network, key.asset, key.payer, key.nonce, token] where !NonceJournal.isSafeField(field) {
            throw NonceJournalError(description: "a ledger key field is not a single printable word")
        }
        // (isSafeField already refused spaces; "|" separates the key's fields.)
        if token.utf8.contains(UInt8(ascii: "|")) || [key.network, key.asset, key.payer, key.nonce].contains(where: {
            $0.utf8.contains(UInt8(ascii: "|"))
        }) {
            throw NonceJournalError(description: "a ledger key field contains a separator")
        }
    }

    private func write(_ line: String, _ state: inout State) throws {
        do {
            try state.journal.append(line)
        } catch {
            state.failure = error
            throw error
        }
    }

    private func compactIfNeeded(_ state: inout State, now: Int64) {
        let appended = state.journal.appended
        guard appended >= compactionMinimumLines, appended >= compactionRatio * max(1, state.table.count) else { return }
        state.table.sweep(now: now)
        do {
            try state.journal.compact(records: state.table.liveRecords(now: now))
        } catch {
            state.failure = error
        }
    }
}
