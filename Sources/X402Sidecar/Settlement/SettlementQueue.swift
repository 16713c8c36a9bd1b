import HeapModule
import Logging
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
    /// An in-process queue answers in place, so a `deferred` payment is decided on the event loop.
    func put(_ job: SettlementJob) -> StoreAnswer<Void>
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
    /// Stored jobs met since start that could not be decoded. Each was logged with its reason and
    /// kept aside for inspection (never settled, never dropped silently).
    var undecodableJobs: Int { get }
}

/// The single-host queue. Every change is appended to a journal file (one JSON job per line; the
/// last line for an id wins), compacted as it grows. Memory holds only a small index entry per
/// unfinished job (state, when it is due, where its line is): the job itself is read back from the
/// journal when it is claimed, so a backlog of queued settlements (the chain down for an hour)
/// costs disk, not memory. Due jobs are found through a heap, not by scanning the backlog.
public final class EmbeddedSettlementQueue: SettlementQueue {
    struct Entry {
        var state: SettlementJob.State
        /// When the job is due (pending) or its hold ends (held); unused for dead jobs.
        var readyAt: Int64
        /// Bumped on every change, so heap items for an older version are recognised as stale.
        var generation: UInt64
        /// Where its latest line is in the journal (`offset`, `length` without the newline).
        var offset: Int64
        var length: Int32
    }

    /// A job that may be claimable at `readyAt` (if `generation` is still the job's).
    struct Ready: Comparable {
        var readyAt: Int64
        var generation: UInt64
        var id: String
        static func < (a: Ready, b: Ready) -> Bool {
            (a.readyAt, a.generation) < (b.readyAt, b.generation)
        }
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// The jobs themselves, only when there is no journal (memory-only queue).
        var bodies: [String: SettlementJob] = [:]
        var ready = Heap<Ready>()
        var leases: [String: Int64] = [:]
        var counts = SettlementQueueStats()
        var nextGeneration: UInt64 = 1
        /// Finished jobs, kept briefly for `job(_:)` (answers to late or repeated reports).
        var finished: [String: SettlementJob] = [:]
        var finishedOrder: [String] = []
        /// nil: memory only (tests, benchmarks).
        var log: AppendLog?
        var failure: JournalError?

        mutating func count(_ state: SettlementJob.State, _ delta: Int) {
            switch state {
            case .pending: counts.pending += delta
            case .held: counts.held += delta
            case .dead: counts.dead += delta
            default: break
            }
        }
    }

    private let state: Mutex<State>
    public let path: String?
    public let undecodableJobs: Int
    static let finishedKept = 1_000

    /// - Parameter path: the journal; nil keeps jobs in memory only (lost on restart: tests only).
    ///   Journal lines that do not decode are logged, counted and copied to `PATH.undecodable`
    ///   (reason, a tab, the line) before compaction drops them from the journal.
    public init(path: String?, fsync: Bool = false, logger: Logger = Logger(label: "x402.settlement-queue")) throws {
        self.path = path
        var initial = State(log: try path.map { try AppendLog(path: $0, fsync: fsync) })
        // The last line of each id wins; finished jobs are dropped by the compaction below.
        var latest: [String: SettlementJob] = [:]
        var undecodable: [String] = []
        for record in try path.map({ try AppendLog.readRecords(path: $0) }) ?? [] where record.line.hasPrefix("J ") {
            switch SettlementJob.decode(String(record.line.dropFirst(2))) {
            case .success(let job):
                latest[job.id] = job
            case .failure(let error):
                logger.error("settlement journal line does not decode; kept aside", metadata: [
                    "offset": "\(record.offset)", "reason": "\(error.reason)", "kept_in": "\(path ?? "-").undecodable"])
                undecodable.append(error.reason + "\t" + record.line)
            }
        }
        if let path, !undecodable.isEmpty {
            let aside = try AppendLog(path: path + ".undecodable", fsync: true)
            for line in undecodable { _ = try aside.append(line + "\n") }
        }
        undecodableJobs = undecodable.count
        var active: [SettlementJob] = []
        for job in latest.values {
            if job.state == .settled || job.state == .released {
                Self.remember(job, in: &initial)
            } else {
                active.append(job)
            }
        }
        latest = [:]
        if let log = initial.log {
            var placed: [(SettlementJob, Int64, Int32)] = []
            try log.replace { (emit) throws(JournalError) -> Int in
                for job in active {
                    let line = "J " + job.encoded()
                    placed.append((job, try emit(line + "\n") + 2, Int32(line.utf8.count - 2)))
                }
                return active.count
            }
            for (job, offset, length) in placed { Self.index(job, offset: offset, length: length, in: &initial) }
        } else {
            for job in active { Self.index(job, offset: 0, length: 0, in: &initial) }
        }
        state = Mutex(initial)
    }

    public func put(_ job: SettlementJob) -> StoreAnswer<Void> {
        .now { try state.withLock { state in try Self.store(job, in: &state) } }
    }

    public func putIfHeld(_ job: SettlementJob) async throws -> Bool {
        try state.withLock { state in
            guard state.entries[job.id]?.state == .held else { return false }
            try Self.store(job, in: &state)
            return true
        }
    }

    private static func store(_ job: SettlementJob, in state: inout State) throws {
        if let failure = state.failure { throw failure }
        let body = job.encoded()
        var offset: Int64 = 0
        do {
            if let log = state.log { offset = try log.append("J " + body + "\n") + 2 }
        } catch {
            // A journal that failed once may have a torn line; refuse everything until restart.
            state.failure = error
            throw error
        }
        state.leases[job.id] = nil
        if let old = state.entries.removeValue(forKey: job.id) { state.count(old.state, -1) }
        state.bodies[job.id] = nil
        if job.state == .settled || job.state == .released {
            remember(job, in: &state)
        } else {
            index(job, offset: offset, length: Int32(body.utf8.count), in: &state)
        }
        if state.ready.count > 2 * state.entries.count + 1024 { pruneReady(&state) }
        if let log = state.log, log.appended > 2 * state.entries.count + 1024 { try compact(&state) }
    }

    /// Adds an unfinished job to the index (and the heap, unless it is dead).
    private static func index(_ job: SettlementJob, offset: Int64, length: Int32, in state: inout State) {
        let generation = state.nextGeneration
        state.nextGeneration += 1
        let readyAt = job.state == .held ? job.holdUntil : job.dueAt
        state.entries[job.id] = Entry(state: job.state, readyAt: readyAt, generation: generation, offset: offset,
                                      length: length)
        state.count(job.state, 1)
        if state.log == nil { state.bodies[job.id] = job }
        if job.state == .pending || job.state == .held {
            state.ready.insert(Ready(readyAt: readyAt, generation: generation, id: job.id))
        }
    }

    private static func remember(_ job: SettlementJob, in state: inout State) {
        if state.finished.updateValue(job, forKey: job.id) == nil { state.finishedOrder.append(job.id) }
        if state.finishedOrder.count > 2 * finishedKept {
            for id in state.finishedOrder.prefix(state.finishedOrder.count - finishedKept) { state.finished[id] = nil }
            state.finishedOrder.removeFirst(state.finishedOrder.count - finishedKept)
        }
    }

    private static func body(_ id: String, _ entry: Entry, in state: State) throws -> SettlementJob {
        if state.log == nil, let job = state.bodies[id] { return job }
        guard let log = state.log else { throw JournalError(description: "settlement job \(id) has no body") }
        switch SettlementJob.decode(try log.read(at: entry.offset, length: Int(entry.length))) {
        case .success(let job) where job.id == id:
            return job
        case .success(let job):
            throw JournalError(description: "settlement journal line for \(id) holds job \(job.id)")
        case .failure(let error):
            throw JournalError(description: "settlement journal line for \(id) does not decode: \(error.reason)")
        }
    }

    /// Rewrites the journal with the unfinished jobs only, streaming them from the old file.
    private static func compact(_ state: inout State) throws {
        guard let log = state.log else { return }
        var moved: [(String, Int64)] = []
        moved.reserveCapacity(state.entries.count)
        let entries = state.entries
        do {
            try log.replace { (emit) throws(JournalError) -> Int in
                for (id, entry) in entries {
                    let line = try log.read(at: entry.offset, length: Int(entry.length))
                    moved.append((id, try emit("J " + line + "\n") + 2))
                }
                return entries.count
            }
        } catch {
            state.failure = error
            throw error
        }
        for (id, offset) in moved { state.entries[id]?.offset = offset }
    }

    /// Drops heap items left behind by jobs that changed or finished since they were pushed.
    private static func pruneReady(_ state: inout State) {
        state.ready = Heap(state.ready.unordered.filter { state.entries[$0.id]?.generation == $0.generation })
    }

    public func claim(now: Int64, limit: Int, lease: Int64) async throws -> [SettlementJob] {
        try state.withLock { state in
            var claimed: [SettlementJob] = []
            var later: [Ready] = []
            defer { for item in later { state.ready.insert(item) } }
            while claimed.count < limit, let top = state.ready.min, top.readyAt <= now {
                var item = state.ready.removeMin()
                guard let entry = state.entries[item.id], entry.generation == item.generation else { continue }
                if let until = state.leases[item.id], until > now {
                    item.readyAt = until  // claimed by a worker: claimable again if its lease runs out
                    later.append(item)
                    continue
                }
                let job: SettlementJob
                do {
                    job = try Self.body(item.id, entry, in: state)
                } catch {
                    // The journal cannot give back a job it holds: refuse everything, like a failed write.
                    later.append(item)
                    state.failure = error as? JournalError ?? JournalError(description: "\(error)")
                    throw error
                }
                state.leases[item.id] = now + lease
                item.readyAt = now + lease
                later.append(item)
                claimed.append(job)
            }
            return claimed
        }
    }

    public func job(_ id: String) async throws -> SettlementJob? {
        try state.withLock { state in
            if let entry = state.entries[id] { return try Self.body(id, entry, in: state) }
            return state.finished[id]
        }
    }

    public func stats() async throws -> SettlementQueueStats {
        state.withLock { $0.counts }
    }

    public func checkReady() async throws {
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }
}
