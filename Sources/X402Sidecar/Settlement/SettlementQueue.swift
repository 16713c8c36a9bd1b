import Synchronization
import X402

/// Counts of unfinished work, for `/metrics`, `/readyz` and logs.
public struct SettlementQueueStats: Sendable, Equatable {
    public var pending = 0
    public var held = 0
    public var dead = 0
}

/// The durable list of payments that still have to reach the chain. A job is on disk before the
/// request it belongs to is allowed, so a crash never loses a payment that was served.
///
/// Processing is at least once: a claimed job becomes claimable again when its lease runs out
/// (the worker died). Settlers make that exactly once on chain by checking the recorded
/// transaction and `authorizationState` before any resubmission.
public protocol SettlementQueue: Sendable {
    /// Durably stores `job`, replacing any job with the same id. Terminal jobs leave the active sets.
    func put(_ job: SettlementJob) async throws
    /// Stores `job` only if the stored job with its id is still `held` (an `after` job whose fate
    /// the report and the hold timeout race to decide). Returns whether it was stored.
    func putIfHeld(_ job: SettlementJob) async throws -> Bool
    /// Up to `limit` jobs that are pending and due at `now`, or held past `holdUntil`. Each is
    /// hidden from other claims for `lease` seconds.
    func claim(now: Int64, limit: Int, lease: Int64) async throws -> [SettlementJob]
    /// The job with `id`, active or recently finished.
    func job(_ id: String) async throws -> SettlementJob?
    func stats() async throws -> SettlementQueueStats
    func checkReady() async throws
}

/// A queue that can store a job without suspending (an in-process one), so a `deferred` payment
/// is answered on the event loop.
public protocol SynchronousSettlementQueue: SettlementQueue {
    func putImmediately(_ job: SettlementJob) throws
}

/// The single-host queue: jobs in memory, every change appended to a journal file (one JSON job
/// per line; the last line for an id wins), compacted as it grows.
public final class EmbeddedSettlementQueue: SynchronousSettlementQueue {
    private struct State {
        var jobs: [String: SettlementJob] = [:]
        /// Finished jobs, kept briefly for `job(_:)`.
        var finished: [String: SettlementJob] = [:]
        var finishedOrder: [String] = []
        var leases: [String: Int64] = [:]
        /// nil: memory only (tests, benchmarks).
        var log: AppendLog?
        var failure: JournalError?
    }

    private let state: Mutex<State>
    public let path: String?
    static let finishedKept = 10_000

    /// - Parameter path: the journal; nil keeps jobs in memory only (lost on restart: tests only).
    public init(path: String?, fsync: Bool = false) throws {
        self.path = path
        let log = try path.map { try AppendLog(path: $0, fsync: fsync) }
        var jobs: [String: SettlementJob] = [:]
        for line in try path.map({ try AppendLog.readLines(path: $0) }) ?? [] where line.hasPrefix("J ") {
            guard let job = SettlementJob.decode(String(line.dropFirst(2))) else { continue }
            jobs[job.id] = job
        }
        var initial = State(log: log)
        for (id, job) in jobs {
            if job.state == .settled || job.state == .released { initial.finished[id] = job } else { initial.jobs[id] = job }
        }
        initial.finishedOrder = Array(initial.finished.keys)
        try Self.compact(&initial)
        state = Mutex(initial)
    }

    public func put(_ job: SettlementJob) async throws { try putImmediately(job) }

    public func putImmediately(_ job: SettlementJob) throws {
        try state.withLock { state in try Self.store(job, in: &state) }
    }

    public func putIfHeld(_ job: SettlementJob) async throws -> Bool {
        try state.withLock { state in
            guard state.jobs[job.id]?.state == .held else { return false }
            try Self.store(job, in: &state)
            return true
        }
    }

    private static func store(_ job: SettlementJob, in state: inout State) throws {
        if let failure = state.failure { throw failure }
        do {
            try state.log?.append("J " + job.encoded() + "\n")
        } catch {
            // A journal that failed once may have a torn line; refuse everything until restart.
            state.failure = error
            throw error
        }
        state.leases[job.id] = nil
        if job.state == .settled || job.state == .released {
            state.jobs[job.id] = nil
            state.finished[job.id] = job
            state.finishedOrder.append(job.id)
            if state.finishedOrder.count > finishedKept {
                let drop = state.finishedOrder.removeFirst()
                state.finished[drop] = nil
            }
        } else {
            state.jobs[job.id] = job
        }
        if let log = state.log, log.appended > 2 * state.jobs.count + 1024 { try compact(&state) }
    }

    private static func compact(_ state: inout State) throws {
        guard let log = state.log else { return }
        var text = ""
        for job in state.jobs.values { text += "J " + job.encoded() + "\n" }
        try log.replace(with: text, lines: state.jobs.count)
    }

    public func claim(now: Int64, limit: Int, lease: Int64) async throws -> [SettlementJob] {
        state.withLock { state in
            var claimed: [SettlementJob] = []
            for job in state.jobs.values.sorted(by: { $0.dueAt < $1.dueAt }) where claimed.count < limit {
                if let until = state.leases[job.id], until > now { continue }
                let ready: Bool
                switch job.state {
                case .pending: ready = job.dueAt <= now
                case .held: ready = job.holdUntil <= now
                default: ready = false
                }
                guard ready else { continue }
                state.leases[job.id] = now + lease
                claimed.append(job)
            }
            return claimed
        }
    }

    public func job(_ id: String) async throws -> SettlementJob? {
        state.withLock { $0.jobs[id] ?? $0.finished[id] }
    }

    public func stats() async throws -> SettlementQueueStats {
        state.withLock { state in
            var stats = SettlementQueueStats()
            for job in state.jobs.values {
                switch job.state {
                case .pending: stats.pending += 1
                case .held: stats.held += 1
                case .dead: stats.dead += 1
                default: break
                }
            }
            return stats
        }
    }

    public func checkReady() async throws {
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }
}

/// The queue shared by every sidecar through Redis: job bodies in a hash, due times in sorted
/// sets. Every change is one script on keys with one hash tag, so it is atomic on a single Redis,
/// Sentinel or Cluster. Finished jobs are kept for a day under their own key.
public final class RedisSettlementQueue: SettlementQueue {
    public let client: RedisClient
    let jobsKey: String, dueKey: String, heldKey: String, deadKey: String, donePrefix: String

    public init(client: RedisClient, keyPrefix: String = "x402") {
        self.client = client
        let base = "\(keyPrefix):settle:{q}"
        jobsKey = base + ":jobs"
        dueKey = base + ":due"
        heldKey = base + ":held"
        deadKey = base + ":dead"
        donePrefix = base + ":done:"
    }

    /// KEYS: jobs, due, held, dead, done-key. ARGV: id, json, state, score, only-if-held.
    static let putScript = RedisScript(
        """
        if ARGV[5] == '1' and not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('ZREM', KEYS[3], ARGV[1])
        redis.call('ZREM', KEYS[4], ARGV[1])
        if ARGV[3] == 'pending' then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
        elseif ARGV[3] == 'held' then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
        elseif ARGV[3] == 'dead' then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
        else
          redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('SET', KEYS[5], ARGV[2], 'EX', 86400)
        end
        return 1
        """)

    /// KEYS: jobs, due, held. ARGV: now, limit, lease.
    static let claimScript = RedisScript(
        """
        local out = {}
        local deadline = tonumber(ARGV[1]) + tonumber(ARGV[3])
        for _, set in ipairs({KEYS[2], KEYS[3]}) do
          local ids = redis.call('ZRANGEBYSCORE', set, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]) - #out)
          for _, id in ipairs(ids) do
            local job = redis.call('HGET', KEYS[1], id)
            if job then
              redis.call('ZADD', set, deadline, id)
              table.insert(out, job)
            else
              redis.call('ZREM', set, id)
            end
          end
          if #out >= tonumber(ARGV[2]) then break end
        end
        return out
        """)

    private func store(_ job: SettlementJob, onlyIfHeld: Bool) async throws -> Bool {
        let score: Int64
        switch job.state {
        case .pending: score = job.dueAt
        case .held: score = job.holdUntil
        default: score = job.createdAt
        }
        let reply = try await client.run(
            Self.putScript, keys: [jobsKey, dueKey, heldKey, deadKey, donePrefix + job.id],
            arguments: [job.id, job.encoded(), job.state.rawValue, String(score), onlyIfHeld ? "1" : "0"])
        return reply == .integer(1)
    }

    public func put(_ job: SettlementJob) async throws { _ = try await store(job, onlyIfHeld: false) }

    public func putIfHeld(_ job: SettlementJob) async throws -> Bool { try await store(job, onlyIfHeld: true) }

    public func claim(now: Int64, limit: Int, lease: Int64) async throws -> [SettlementJob] {
        let reply = try await client.run(
            Self.claimScript, keys: [jobsKey, dueKey, heldKey],
            arguments: [String(now), String(limit), String(lease)])
        guard case .array(let items) = reply else { return [] }
        return (items ?? []).compactMap { $0.string.flatMap(SettlementJob.decode) }
    }

    public func job(_ id: String) async throws -> SettlementJob? {
        if let text = try await client.send(["HGET", jobsKey, id]).string { return SettlementJob.decode(text) }
        return try await client.send(["GET", donePrefix + id]).string.flatMap(SettlementJob.decode)
    }

    public func stats() async throws -> SettlementQueueStats {
        func count(_ key: String) async throws -> Int {
            if case .integer(let n) = try await client.send(["ZCARD", key]) { return Int(n) }
            return 0
        }
        return SettlementQueueStats(pending: try await count(dueKey), held: try await count(heldKey),
                                    dead: try await count(deadKey))
    }

    public func checkReady() async throws { try await client.ping() }
}
