import Logging
import Synchronization
import X402

/// Counters for `/metrics` and logs, by transition outcome.
public final class SettlementCounters: Sendable {
    public let enqueued = Atomic<Int>(0)
    public let scheduled = Atomic<Int>(0)
    public let pending = Atomic<Int>(0)
    public let settled = Atomic<Int>(0)
    public let released = Atomic<Int>(0)
    public let retried = Atomic<Int>(0)
    public let deadLettered = Atomic<Int>(0)
    /// Queue or ledger writes of a transition that failed (each is also logged).
    public let storeFailures = Atomic<Int>(0)
    /// Stored jobs that could not be decoded (kept in the store for inspection, and logged).
    public let undecodable = Atomic<Int>(0)
    public init() {}

    func count(_ outcome: SettlementTransition.Outcome) {
        switch outcome {
        case .enqueued: enqueued.add(1, ordering: .relaxed)
        case .scheduled: scheduled.add(1, ordering: .relaxed)
        case .pending: pending.add(1, ordering: .relaxed)
        case .settled: settled.add(1, ordering: .relaxed)
        case .released: released.add(1, ordering: .relaxed)
        case .retried: retried.add(1, ordering: .relaxed)
        case .deadLettered: deadLettered.add(1, ordering: .relaxed)
        }
    }

    func value(_ outcome: SettlementTransition.Outcome) -> Int {
        switch outcome {
        case .enqueued: enqueued.load(ordering: .relaxed)
        case .scheduled: scheduled.load(ordering: .relaxed)
        case .pending: pending.load(ordering: .relaxed)
        case .settled: settled.load(ordering: .relaxed)
        case .released: released.load(ordering: .relaxed)
        case .retried: retried.load(ordering: .relaxed)
        case .deadLettered: deadLettered.load(ordering: .relaxed)
        }
    }
}

/// Everything that takes granted payments to the chain: the settings and per-route policy, the
/// durable queue, the settlers (facilitator, relayers by chain), and the recorder that applies
/// every job transition. Intake (`SettlementIntake.swift`) and the worker (`SettlementWorker`)
/// work through it.
public final class Settlements: Sendable {
    public let settings: SettlementSettings
    public let queue: any SettlementQueue
    public let ledger: any NonceLedger
    public let routes: [String: RouteSettlement]
    public let counters: SettlementCounters
    public let recorder: SettlementRecorder
    let facilitator: FacilitatorClient?
    let relayers: [UInt64: Relayer]
    let logger: Logger
    let now: @Sendable () -> Int64
    private let wake = Mutex<CheckedContinuation<Void, Never>?>(nil)

    public init(settings: SettlementSettings, queue: any SettlementQueue, ledger: any NonceLedger,
                routes: [String: RouteSettlement], facilitator: FacilitatorClient?, relayers: [UInt64: Relayer],
                logger: Logger, now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }) {
        self.settings = settings
        self.queue = queue
        self.ledger = ledger
        self.routes = routes
        self.facilitator = facilitator
        self.relayers = relayers
        self.logger = logger
        self.now = now
        let counters = SettlementCounters()
        self.counters = counters
        recorder = SettlementRecorder(queue: queue, ledger: ledger, counters: counters, logger: logger)
    }

    public func policy(_ route: String) -> RouteSettlement {
        routes[route] ?? RouteSettlement(mode: settings.mode, via: settings.via)
    }

    func settler(for job: SettlementJob) -> (any Settler)? {
        switch job.via {
        case .facilitator: return facilitator
        case .relayer: return relayers[job.chainId]
        }
    }

    /// Wakes the worker: new work was queued.
    func signal() {
        wake.withLock { slot in
            slot?.resume()
            slot = nil
        }
    }

    /// Waits for `signal()`, replacing (and resuming) an earlier waiter.
    func waitForSignal() async {
        await withCheckedContinuation { continuation in
            let previous = wake.withLock { slot -> CheckedContinuation<Void, Never>? in
                let old = slot
                slot = continuation
                return old
            }
            previous?.resume()
        }
    }
}
