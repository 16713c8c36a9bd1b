import Logging
import Synchronization
import X402

/// Everything that takes granted payments to the chain: the settings and per-route policy, the
/// durable queue, the settlers (facilitator, relayers by chain), and the recorder that applies
/// every job transition. Intake (`SettlementIntake.swift`) and the worker (`SettlementWorker`)
/// work through it.
public final class Settlements: Sendable {
    public let settings: SettlementSettings
    public let queue: any SettlementQueue
    public let ledger: any NonceLedger
    public let routes: [String: RouteSettlement]
    /// Where transitions are counted (`/metrics`).
    public let metrics: SidecarMetrics
    public let recorder: SettlementRecorder
    let facilitator: FacilitatorClient?
    let relayers: [UInt64: Relayer]
    let logger: Logger
    let now: @Sendable () -> Int64
    private let wake = Mutex<CheckedContinuation<Void, Never>?>(nil)

    public init(settings: SettlementSettings, queue: any SettlementQueue, ledger: any NonceLedger,
                routes: [String: RouteSettlement], facilitator: FacilitatorClient?, relayers: [UInt64: Relayer],
                logger: Logger, metrics: SidecarMetrics = SidecarMetrics(),
                now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }) {
        self.settings = settings
        self.queue = queue
        self.ledger = ledger
        self.routes = routes
        self.facilitator = facilitator
        self.relayers = relayers
        self.logger = logger
        self.now = now
        self.metrics = metrics
        recorder = SettlementRecorder(queue: queue, ledger: ledger, metrics: metrics, logger: logger)
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
