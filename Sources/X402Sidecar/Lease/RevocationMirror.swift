import Logging
import ServiceLifecycle
import Synchronization
import X402

/// Every sidecar's copy of the lease revocations in Redis, so a lease without counters (no
/// `max_requests`, no `max_concurrent`) is admitted on the event loop, without a round trip.
///
/// Revocations (and renewals, which revoke the old lease) are appended to a log in Redis, one
/// sequence number each (`RedisLeaseStore.logRevocation`); the mirror polls the entries after the
/// last number it has every `interval`. It is trusted only while its last successful poll *started*
/// less than `staleness` ago; otherwise admits go to Redis as before (and fail closed when it is
/// down). `RedisLeaseStore.revoke` answers only after `staleness` has passed since its write, so a
/// revocation the admin API confirmed is in force on every sidecar.
public final class RevocationMirror: Service, Sendable {
    private struct State {
        var revoked: [String: Int64] = [:]
        var lastSequence: Int64 = 0
        /// The log's epoch: another one means Redis lost the log (a flush, a failover to an
        /// empty replica) and made a new one.
        var epoch: String?
        var freshAsOf: ContinuousClock.Instant?
    }

    let client: RedisClient
    let headerKey: String
    let logKey: String
    public let interval: Duration
    public let staleness: Duration
    private let state = Mutex(State())
    private let logger: Logger

    public init(
        client: RedisClient, keyPrefix: String, interval: Duration = .milliseconds(100),
        staleness: Duration = .milliseconds(400), logger: Logger = Logger(label: "x402.leases")
    ) {
        self.client = client
        (headerKey, logKey) = RevocationMirror.keys(prefix: keyPrefix)
        self.interval = interval
        self.staleness = staleness
        self.logger = logger
    }

    /// The sequence counter and the log, in one Cluster slot.
    static func keys(prefix: String) -> (header: String, log: String) {
        ("\(prefix):revocations:{\(prefix)-revocations}:head", "\(prefix):revocations:{\(prefix)-revocations}:log")
    }

    /// KEYS: the log's header (a hash: `epoch`, a random id made with the log, and `seq`) and the
    /// log. ARGV: the last sequence number seen. Returns {epoch, sequence, member, score, …} with
    /// the entries after it (at most 1000; the caller polls again at once when it got that many).
    static let poll = RedisScript(
        """
        local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
        local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
        if seq <= tonumber(ARGV[1]) then return {epoch, seq} end
        local entries = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1000)
        table.insert(entries, 1, seq)
        table.insert(entries, 1, epoch)
        return entries
        """)

    /// The admission of a lease without counters, when the mirror is fresh enough to decide it.
    func admission(jti: String, now: Int64) -> LeaseAdmission? {
        state.withLock { state in
            guard let fresh = state.freshAsOf, fresh.duration(to: .now) < staleness else { return nil }
            if let until = state.revoked[jti], until > now { return .refused(.revoked) }
            return .admitted(requests: 0)
        }
    }

    /// One poll (and more at once while full pages come back). Throws when Redis does not answer.
    func refresh(now: Int64) async throws {
        let started = ContinuousClock.now
        var page = 0
        repeat {
            let last = state.withLock { $0.lastSequence }
            let reply = try await client.run(Self.poll, keys: [headerKey, logKey], arguments: [String(last)])
            guard case .array(let items?) = reply, items.count >= 2, items.count % 2 == 0, let epoch = items[0].string,
                case .integer(let sequence) = items[1]
            else { throw RedisClientError(code: .protocolError, message: "unexpected revocation poll reply") }
            var entries: [(jti: String, until: Int64, sequence: Int64)] = []
            for index in stride(from: 2, to: items.count, by: 2) {
                guard let member = items[index].string, let score = items[index + 1].string.flatMap({ Int64($0) }),
                    let space = member.lastIndex(of: " "), let until = Int64(member[member.index(after: space)...])
                else { throw RedisClientError(code: .protocolError, message: "unexpected revocation log entry") }
                entries.append((String(member[..<space]), until, score))
            }
            page = entries.count
            state.withLock { state in
                if let known = state.epoch, known != epoch || sequence < state.lastSequence {
                    // A new log: what the old one said is gone from Redis too. Start again.
                    state.revoked.removeAll()
                    state.lastSequence = 0
                    state.epoch = nil
                    state.freshAsOf = nil
                    page = 1000
                    return
                }
                state.epoch = epoch
                for entry in entries {
                    state.revoked[entry.jti] = max(state.revoked[entry.jti] ?? 0, entry.until)
                    state.lastSequence = max(state.lastSequence, entry.sequence)
                }
                // A short page holds every entry up to `sequence` (read in one script) but trimmed ones.
                if entries.count < 1000 { state.lastSequence = max(state.lastSequence, sequence) }
                if state.revoked.count > 4096 { state.revoked = state.revoked.filter { $0.value > now } }
            }
        } while page >= 1000
        state.withLock { state in
            if state.freshAsOf.map({ $0 < started }) ?? true { state.freshAsOf = started }
        }
    }

    public func run() async throws {
        logger.info("lease revocation mirror started", metadata: ["interval": "\(interval)"])
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                do {
                    try await self.refresh(now: UnixClock.seconds())
                    if failing { self.logger.info("lease revocation mirror caught up") }
                    failing = false
                } catch {
                    if !failing {
                        self.logger.warning(
                            "lease revocation mirror cannot poll Redis: lease admits go to Redis",
                            metadata: ["error": "\(error)"])
                    }
                    failing = true
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}
