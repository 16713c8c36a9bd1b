import Synchronization
import X402

/// The ledger's rules over an in-process table. Used directly for tests and benchmarks (it forgets
/// everything on restart) and as the state behind `EmbeddedNonceLedger`.
struct NonceTable: Sendable {
    private var records: [NonceKey: NonceRecord] = [:]
    /// Inserts since the last sweep; expired records are dropped every `sweepInterval` inserts so
    /// memory stays bounded by the authorizations still valid on chain.
    private var insertsSinceSweep = 0
    private let sweepInterval = 4096

    var count: Int { records.count }

    func live(_ key: NonceKey, now: Int64) -> NonceRecord? {
        guard let record = records[key], record.expiresAt > now else { return nil }
        return record
    }

    mutating func reserve(_ key: NonceKey, token: String, expiresAt: Int64, now: Int64) -> Bool {
        if live(key, now: now) != nil { return false }
        records[key] = NonceRecord(state: .reserved, token: token, expiresAt: expiresAt)
        insertsSinceSweep += 1
        if insertsSinceSweep >= sweepInterval { sweep(now: now) }
        return true
    }

    /// Whether `token` holds a live reservation (not settled) on `key`.
    func holds(_ key: NonceKey, token: String, now: Int64) -> Bool {
        guard let record = live(key, now: now) else { return false }
        return record.state == .reserved && record.token == token
    }

    mutating func settle(_ key: NonceKey, token: String, transaction: String, now: Int64) -> Bool {
        guard holds(key, token: token, now: now) else { return false }
        records[key]?.state = .settled
        records[key]?.transaction = transaction
        return true
    }

    mutating func release(_ key: NonceKey, token: String, now: Int64) -> Bool {
        guard holds(key, token: token, now: now) else { return false }
        records[key] = nil
        return true
    }

    /// Applies a journal event without the ownership checks (they held when it was written).
    mutating func restore(_ key: NonceKey, _ record: NonceRecord?) {
        records[key] = record
    }

    mutating func sweep(now: Int64) {
        records = records.filter { $0.value.expiresAt > now }
        insertsSinceSweep = 0
    }

    func liveRecords(now: Int64) -> [(NonceKey, NonceRecord)] {
        records.filter { $0.value.expiresAt > now }.map { ($0.key, $0.value) }
    }
}

/// In-process only: forgets every authorization on restart. For tests and benchmarks; `serve`
/// refuses it unless told otherwise.
public final class MemoryNonceLedger: SynchronousNonceLedger {
    private let table = Mutex(NonceTable())
    private let now: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }) {
        self.now = now
    }

    public var decidesWithoutBlocking: Bool { true }

    public func reserveImmediately(_ key: NonceKey, token: String, expiresAt: Int64) -> Bool {
        let now = self.now()
        return table.withLock { $0.reserve(key, token: token, expiresAt: expiresAt, now: now) }
    }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64) async throws -> Bool {
        reserveImmediately(key, token: token, expiresAt: expiresAt)
    }

    @discardableResult
    public func markSettled(_ key: NonceKey, token: String, transaction: String) async throws -> Bool {
        let now = self.now()
        return table.withLock { $0.settle(key, token: token, transaction: transaction, now: now) }
    }

    @discardableResult
    public func release(_ key: NonceKey, token: String) async throws -> Bool {
        let now = self.now()
        return table.withLock { $0.release(key, token: token, now: now) }
    }

    public func record(_ key: NonceKey) async throws -> NonceRecord? {
        let now = self.now()
        return table.withLock { $0.live(key, now: now) }
    }

    public func checkReady() async throws {}
}
