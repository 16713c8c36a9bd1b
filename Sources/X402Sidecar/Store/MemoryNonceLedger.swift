import Synchronization
import X402

/// In-process only: forgets every authorization on restart. For tests and benchmarks; `serve`
/// refuses it unless told otherwise.
public final class MemoryNonceLedger: NonceLedger {
    private let table = Mutex(NonceTable())
    private let now: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }) {
        self.now = now
    }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64) -> StoreAnswer<Bool> {
        let now = self.now()
        return .ready(.success(table.withLock { $0.reserve(key, token: token, expiresAt: expiresAt, now: now) }))
    }

    public func isKnownUsed(_ key: NonceKey) -> Bool {
        let now = self.now()
        return table.withLock { $0.isLive(key, now: now) }
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
