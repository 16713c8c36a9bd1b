import Synchronization
import X402

/// In-process only: forgets every authorization on restart. For tests and benchmarks; `serve`
/// refuses it unless told otherwise.
public final class MemoryNonceLedger: NonceLedger {
    private struct State {
        var table = NonceTable()
        var exposure = ExposureTable()
    }

    private let state = Mutex(State())
    private let now: @Sendable () -> Int64
    let settledHoldSeconds: Int64

    public init(now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }, exposureSettledHoldSeconds: Int64 = 15) {
        self.now = now
        self.settledHoldSeconds = exposureSettledHoldSeconds
    }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64, holding hold: ExposureHold)
        -> StoreAnswer<Reservation>
    {
        let now = self.now()
        return .ready(.success(state.withLock { state in
            if state.table.isLive(key, now: now) { return .alreadyUsed }
            let payer = ExposureHold.payerKey(key)
            if case .overLimit(let pending) = state.exposure.hold(payer, nonce: key.nonce, hold, until: expiresAt, now: now) {
                return .overLimit(pending: pending)
            }
            _ = state.table.reserve(key, token: token, expiresAt: expiresAt, now: now)
            return .reserved
        }))
    }

    public func pendingExposure(_ key: NonceKey) async throws -> UInt128 {
        let now = self.now()
        return state.withLock { $0.exposure.pending(ExposureHold.payerKey(key), now: now) }
    }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64) -> StoreAnswer<Bool> {
        let now = self.now()
        return .ready(.success(state.withLock { $0.table.reserve(key, token: token, expiresAt: expiresAt, now: now) }))
    }

    public func isKnownUsed(_ key: NonceKey) -> Bool {
        let now = self.now()
        return state.withLock { $0.table.isLive(key, now: now) }
    }

    @discardableResult
    public func markSettled(_ key: NonceKey, token: String, transaction: String) async throws -> Bool {
        let now = self.now()
        return state.withLock { state in
            guard state.table.settle(key, token: token, transaction: transaction, now: now) else { return false }
            state.exposure.settle(ExposureHold.payerKey(key), nonce: key.nonce, until: now + settledHoldSeconds)
            return true
        }
    }

    @discardableResult
    public func release(_ key: NonceKey, token: String) async throws -> Bool {
        let now = self.now()
        return state.withLock { state in
            guard state.table.release(key, token: token, now: now) else { return false }
            state.exposure.release(ExposureHold.payerKey(key), nonce: key.nonce)
            return true
        }
    }

    public func record(_ key: NonceKey) async throws -> NonceRecord? {
        let now = self.now()
        return state.withLock { $0.table.live(key, now: now) }
    }

    public func checkReady() async throws {}
}
