import Logging
import Synchronization
import X402

/// The queue shared by every sidecar through Redis: job bodies in a hash, due times in sorted
/// sets. Every change is one script on keys with one hash tag, so it is atomic on a single Redis,
/// Sentinel or Cluster. Finished jobs are kept for a day under their own key.
public final class RedisSettlementQueue: SettlementQueue {
    public let client: RedisClient
    let jobsKey: String, dueKey: String, heldKey: String, deadKey: String, donePrefix: String
    /// Jobs that did not decode, by id: `reason TAB body`, for an operator to look at.
    let undecodableKey: String
    let logger: Logger
    private let undecodable = Atomic<Int>(0)
    public var undecodableJobs: Int { undecodable.load(ordering: .relaxed) }

    public init(client: RedisClient, keyPrefix: String = "x402", logger: Logger = Logger(label: "x402.settlement-queue")) {
        self.client = client
        self.logger = logger
        let base = "\(keyPrefix):settle:{q}"
        undecodableKey = base + ":undecodable"
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
              table.insert(out, id)
              table.insert(out, job)
            else
              redis.call('ZREM', set, id)
            end
          end
          if #out >= 2 * tonumber(ARGV[2]) then break end
        end
        return out
        """)

    /// KEYS: jobs, due, held, dead, undecodable. ARGV: id, reason. Takes a job that does not decode
    /// out of the active sets and keeps it aside.
    static let quarantineScript = RedisScript(
        """
        local job = redis.call('HGET', KEYS[1], ARGV[1])
        if not job then return 0 end
        redis.call('HSET', KEYS[5], ARGV[1], ARGV[2] .. '\\t' .. job)
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[1]); redis.call('ZREM', KEYS[3], ARGV[1]); redis.call('ZREM', KEYS[4], ARGV[1])
        return 1
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

    public func put(_ job: SettlementJob) -> StoreAnswer<Void> {
        .suspending { _ = try await self.store(job, onlyIfHeld: false) }
    }

    public func putIfHeld(_ job: SettlementJob) async throws -> Bool { try await store(job, onlyIfHeld: true) }

    public func claim(now: Int64, limit: Int, lease: Int64) async throws -> [SettlementJob] {
        let reply = try await client.run(
            Self.claimScript, keys: [jobsKey, dueKey, heldKey],
            arguments: [String(now), String(limit), String(lease)])
        guard case .array(let items?) = reply else { return [] }
        var jobs: [SettlementJob] = []
        var index = 0
        while index + 1 < items.count {
            defer { index += 2 }
            guard let id = items[index].string, let text = items[index + 1].string else { continue }
            switch SettlementJob.decode(text) {
            case .success(let job): jobs.append(job)
            case .failure(let error): try await quarantine(id, error)
            }
        }
        return jobs
    }

    private func quarantine(_ id: String, _ error: SettlementJobError) async throws {
        undecodable.add(1, ordering: .relaxed)
        logger.error("settlement job does not decode; kept aside", metadata: [
            "payment_id": "\(id)", "reason": "\(error.reason)", "kept_in": "\(undecodableKey)"])
        _ = try await client.run(Self.quarantineScript, keys: [jobsKey, dueKey, heldKey, deadKey, undecodableKey],
                                 arguments: [id, error.reason])
    }

    public func job(_ id: String) async throws -> SettlementJob? {
        var text = try await client.send(["HGET", jobsKey, id]).string
        if text == nil { text = try await client.send(["GET", donePrefix + id]).string }
        guard let text else { return nil }
        return try SettlementJob.decode(text).get()
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
