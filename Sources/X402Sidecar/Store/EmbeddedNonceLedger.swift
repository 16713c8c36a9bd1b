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
        var exposure = ExposureTable()
    }

    private let state: Mutex<State>
    private let now: @Sendable () -> Int64
    /// With an fsync per write a decision can take milliseconds: it is then answered as work to
    /// run off the event loops (`.suspending`), otherwise in place.
    let decidesWithoutBlocking: Bool
    /// Compact when the journal holds this many times more lines than live records.
    private let compactionRatio = 4
    private let compactionMinimumLines = 100_000
    /// How long a settled payment keeps counting against its payer's exposure.
    let settledHoldSeconds: Int64

    /// Opens (or creates) the journal at `path`, replays it, and compacts it.
    /// Holds of reservations still pending come back with them (`H` lines).
    public init(
        path: String, fsync: Bool = false, exposureSettledHoldSeconds: Int64 = 15,
        now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }
    ) throws {
        self.now = now
        self.decidesWithoutBlocking = !fsync
        self.settledHoldSeconds = exposureSettledHoldSeconds
        let journal = try NonceJournal(path: path, fsync: fsync)
        var table = NonceTable()
        var holds: [NonceKey: (amount: UInt128, until: Int64)] = [:]
        _ = try NonceJournal.replay(path: path, into: &table, holds: &holds, now: now())
        var exposure = ExposureTable()
        for (key, hold) in holds {
            _ = exposure.hold(ExposureHold.payerKey(key), nonce: key.nonce, ExposureHold(amount: hold.amount, limit: nil),
                              until: hold.until, now: now())
        }
        try journal.compact(records: table.liveRecords(now: now()), holds: holds.mapValues(\.amount))
        state = Mutex(State(table: table, journal: journal, exposure: exposure))
    }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64, holding hold: ExposureHold)
        -> StoreAnswer<Reservation>
    {
        guard decidesWithoutBlocking else {
            return .suspending { try self.reserveLocked(key, token: token, expiresAt: expiresAt, hold: hold) }
        }
        return .now { try reserveLocked(key, token: token, expiresAt: expiresAt, hold: hold) }
    }

    private func reserveLocked(_ key: NonceKey, token: String, expiresAt: Int64, hold: ExposureHold) throws
        -> Reservation
    {
        try check(key, token)
        let now = self.now()
        let payer = ExposureHold.payerKey(key)
        return try state.withLock { (state) throws -> Reservation in
            if let failure = state.failure { throw failure }
            if state.table.isLive(key, now: now) { return .alreadyUsed }
            if case .overLimit(let pending) = state.exposure.hold(payer, nonce: key.nonce, hold, until: expiresAt, now: now)
            {
                return .overLimit(pending: pending)
            }
            do {
                // The hold first: a write torn between the lines leaves a hold without its
                // reservation (dropped on replay), never a reservation without its hold.
                try write(NonceJournal.held(key, amount: hold.amount, until: expiresAt)
                          + NonceJournal.reserved(key, token: token, expiresAt: expiresAt), &state)
            } catch {
                state.exposure.release(payer, nonce: key.nonce)
                throw error
            }
            _ = state.table.reserve(key, token: token, expiresAt: expiresAt, now: now)
            compactIfNeeded(&state, now: now)
            return .reserved
        }
    }

    public func pendingExposure(_ key: NonceKey) async throws -> UInt128 {
        let now = self.now()
        return state.withLock { $0.exposure.pending(ExposureHold.payerKey(key), now: now) }
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
            state.exposure.settle(ExposureHold.payerKey(key), nonce: key.nonce, until: now + settledHoldSeconds)
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
            state.exposure.release(ExposureHold.payerKey(key), nonce: key.nonce)
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
            let records = state.table.liveRecords(now: now)
            var holds: [NonceKey: UInt128] = [:]
            for (key, record) in records where record.state == .reserved {
                if let amount = state.exposure.amount(ExposureHold.payerKey(key), nonce: key.nonce, now: now) {
                    holds[key] = amount
                }
            }
            try state.journal.compact(records: records, holds: holds)
        } catch {
            state.failure = error
        }
    }
}
