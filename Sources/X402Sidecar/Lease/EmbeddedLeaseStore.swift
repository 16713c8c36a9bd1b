import Synchronization
import X402

/// One host, no servers: lease state in process behind one lock. Forgets everything on restart
/// (revocations included): leases themselves survive as tokens, so a single host that must keep
/// revocations across restarts should use Redis.
///
/// Expired records are dropped on access and by a sweep every `sweepInterval` writes.
public final class EmbeddedLeaseStore: LeaseStore {
    private struct Lease {
        var expiresAt: Int64
        var revoked = false
        var successor: String?
        var requests = 0
        var slots: [String: Int64] = [:]
    }

    private struct State {
        var leases: [String: Lease] = [:]
        var payerLeases: [String: [String: Int64]] = [:]
        var nonces: [String: Int64] = [:]
        var paid: [String: PaidAccess] = [:]
        var writes = 0
    }

    private let state = Mutex(State())
    /// Seconds records outlive the token's `exp` (at least the clock skew tokens are accepted with).
    public let retentionSeconds: Int64
    private let sweepInterval = 4096
    private let now: @Sendable () -> Int64

    public init(retentionSeconds: Int64 = 300, now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }) {
        self.retentionSeconds = retentionSeconds
        self.now = now
    }

    private func admitLocked(_ use: LeaseUse, now: Int64) -> LeaseAdmission {
        state.withLock { state in
            var lease = live(state.leases[use.jti], now: now) ?? Lease(expiresAt: use.expiresAt + retentionSeconds)
            if lease.revoked { return .refused(.revoked) }
            if let maxConcurrent = use.maxConcurrent {
                lease.slots = lease.slots.filter { $0.value > now }
                guard let slot = use.slot else { return .refused(.concurrencyLimit) }
                if lease.slots[slot] == nil && lease.slots.count >= maxConcurrent { return .refused(.concurrencyLimit) }
                lease.slots[slot] = use.slotExpiresAt
            }
            var number = 0
            if let maxRequests = use.maxRequests {
                guard lease.requests < maxRequests else { return .refused(.requestLimit) }
                lease.requests += 1
                number = lease.requests
            }
            if use.maxConcurrent != nil || use.maxRequests != nil {
                state.leases[use.jti] = lease
                wrote(&state, now: now)
            }
            return .admitted(requests: number)
        }
    }

    @discardableResult
    private func releaseLocked(jti: String, slot: String) -> Bool {
        state.withLock { state in state.leases[jti]?.slots.removeValue(forKey: slot) != nil }
    }

    private func consumeLocked(_ nonce: String, expiresAt: Int64, now: Int64) -> Bool {
        state.withLock { state in
            if let until = state.nonces[nonce], until > now { return false }
            state.nonces[nonce] = expiresAt
            wrote(&state, now: now)
            return true
        }
    }

    private func paidAccessLocked(payer: String, route: String, host: String, now: Int64) -> PaidAccess? {
        state.withLock { state in
            guard let access = state.paid[Self.paidKey(payer, route, host)], access.expiresAt > now else { return nil }
            return access
        }
    }

    public func register(_ claims: LeaseClaims) async throws {
        let now = self.now()
        state.withLock { state in
            state.payerLeases[claims.payer, default: [:]][claims.jti] = claims.expiresAt
            wrote(&state, now: now)
        }
    }

    public func admit(_ use: LeaseUse, now: Int64) -> StoreAnswer<LeaseAdmission> {
        .ready(.success(admitLocked(use, now: now)))
    }

    @discardableResult
    public func release(jti: String, slot: String) async throws -> Bool { releaseLocked(jti: jti, slot: slot) }

    public func revoke(jti: String, expiresAt: Int64) async throws {
        let now = self.now()
        state.withLock { state in
            revokeLocked(jti, expiresAt: expiresAt, now: now, &state)
            wrote(&state, now: now)
        }
    }

    @discardableResult
    public func revoke(payer: String, now: Int64) async throws -> Int {
        state.withLock { state in
            let leases = (state.payerLeases[payer] ?? [:]).filter { $0.value + retentionSeconds > now }
            for (jti, expiresAt) in leases { revokeLocked(jti, expiresAt: expiresAt, now: now, &state) }
            state.payerLeases[payer] = leases.isEmpty ? nil : leases
            wrote(&state, now: now)
            return leases.count
        }
    }

    public func renew(jti: String, successor: String, expiresAt: Int64) async throws -> LeaseRenewal {
        let now = self.now()
        return state.withLock { state in
            var lease = live(state.leases[jti], now: now) ?? Lease(expiresAt: expiresAt + retentionSeconds)
            if let existing = lease.successor { return .alreadyRenewed(successor: existing) }
            if lease.revoked { return .revoked }
            lease.revoked = true
            lease.successor = successor
            lease.expiresAt = max(lease.expiresAt, expiresAt + retentionSeconds)
            state.leases[jti] = lease
            wrote(&state, now: now)
            return .renewed
        }
    }

    public func consumeSIWXNonce(_ nonce: String, expiresAt: Int64) -> StoreAnswer<Bool> {
        .ready(.success(consumeLocked(nonce, expiresAt: expiresAt, now: now())))
    }

    public func recordPaidAccess(_ access: PaidAccess) -> StoreAnswer<Void> {
        .ready(.success(recordLocked(access)))
    }

    private func recordLocked(_ access: PaidAccess) {
        let now = self.now()
        state.withLock { state in
            let key = Self.paidKey(access.payer, access.route, access.host)
            if let current = state.paid[key], current.expiresAt >= access.expiresAt, current.expiresAt > now { return }
            state.paid[key] = access
            wrote(&state, now: now)
        }
    }

    public func paidAccess(payer: String, route: String, host: String, now: Int64) -> StoreAnswer<PaidAccess?> {
        .ready(.success(paidAccessLocked(payer: payer, route: route, host: host, now: now)))
    }

    public func checkReady() async throws {}

    /// Records currently held (leases, nonces, paid access), for tests and metrics.
    public var recordCount: Int { state.withLock { $0.leases.count + $0.nonces.count + $0.paid.count } }

    private func revokeLocked(_ jti: String, expiresAt: Int64, now: Int64, _ state: inout State) {
        var lease = live(state.leases[jti], now: now) ?? Lease(expiresAt: expiresAt + retentionSeconds)
        lease.revoked = true
        lease.expiresAt = max(lease.expiresAt, expiresAt + retentionSeconds)
        state.leases[jti] = lease
    }

    private func live(_ lease: Lease?, now: Int64) -> Lease? {
        guard let lease, lease.expiresAt > now else { return nil }
        return lease
    }

    private func wrote(_ state: inout State, now: Int64) {
        state.writes += 1
        guard state.writes >= sweepInterval else { return }
        state.writes = 0
        state.leases = state.leases.filter { $0.value.expiresAt > now }
        state.nonces = state.nonces.filter { $0.value > now }
        state.paid = state.paid.filter { $0.value.expiresAt > now }
        state.payerLeases = state.payerLeases.compactMapValues { leases in
            let live = leases.filter { $0.value + retentionSeconds > now }
            return live.isEmpty ? nil : live
        }
    }

    static func paidKey(_ payer: String, _ route: String, _ host: String) -> String { "\(payer)|\(host)|\(route)" }
}
