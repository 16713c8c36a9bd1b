import Metrics
import struct Prometheus.PrometheusMetricsFactory
import class Prometheus.PrometheusCollectorRegistry
import X402

/// Every metric of one sidecar, created once through swift-metrics on this instance's own
/// Prometheus registry (no global bootstrap: tests build many sidecars in one process) and
/// exposed by `/metrics` in Prometheus' text format. Decision outcomes use the decision log's
/// words (`DecisionLog.outcome(of:)`), settlement outcomes the lifecycle's.
public final class SidecarMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Decisions by route, then by outcome in the order of `outcomes`; decisions for unknown routes
    /// count under route "-". One dictionary lookup per decision, by route only.
    private let decisions: [String: [Metrics.Counter]]
    private let unknownRoute: [Metrics.Counter]
    private let settlementOutcomes: [SettlementTransition.Outcome: Metrics.Counter]
    let settlementStoreFailures: Metrics.Counter
    let limiterFailures: Metrics.Counter
    /// Leases revoked through the admin API (one per lease).
    let leaseRevocations: Metrics.Counter
    private let inFlight: Metrics.Gauge
    private let queueJobs: [String: Metrics.Gauge]
    private let undecodableJobs: Metrics.Gauge

    /// The decision log's outcome words, in a stable order.
    public static let outcomes = ["paid", "payment_required", "payment_invalid", "refused", "unavailable",
                                  "misconfigured", "rate_limited", "free", "leased", "lease_refused", "lease_issued", "signed_in",
                                  "sign_in_refused"]

    public init(routes: [String] = []) {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        var decisions: [String: [Metrics.Counter]] = [:]
        for route in routes + ["-"] {
            var byOutcome: [Metrics.Counter] = []
            for outcome in Self.outcomes {
                let labels = [("route", route), ("outcome", outcome)]
                byOutcome.append(Metrics.Counter(label: "x402_decisions_total", dimensions: labels, factory: factory))
            }
            decisions[route] = byOutcome
        }
        self.decisions = decisions
        unknownRoute = decisions["-"]!
        var settlementOutcomes: [SettlementTransition.Outcome: Metrics.Counter] = [:]
        for outcome in SettlementTransition.Outcome.allCases {
            settlementOutcomes[outcome] = Metrics.Counter(label: "x402_settlements_total",
                                                  dimensions: [("outcome", outcome.rawValue)], factory: factory)
        }
        self.settlementOutcomes = settlementOutcomes
        settlementStoreFailures = Metrics.Counter(label: "x402_settlement_store_failures_total", factory: factory)
        limiterFailures = Metrics.Counter(label: "x402_ratelimit_store_failures_total", factory: factory)
        leaseRevocations = Metrics.Counter(label: "x402_lease_revocations_total", factory: factory)
        inFlight = Metrics.Gauge(label: "x402_requests_in_flight", factory: factory)
        var queueJobs: [String: Metrics.Gauge] = [:]
        for state in ["pending", "held", "dead"] {
            queueJobs[state] = Metrics.Gauge(label: "x402_settlement_queue_jobs", dimensions: [("state", state)], factory: factory)
        }
        self.queueJobs = queueJobs
        undecodableJobs = Metrics.Gauge(label: "x402_settlement_jobs_undecodable", factory: factory)
    }

    func count(_ decision: Decision, route: String?) {
        let byOutcome = route.flatMap { decisions[$0] } ?? unknownRoute
        byOutcome[Self.outcomeIndex(decision)].increment()
    }

    /// The index in `outcomes` of `DecisionLog.outcome(of:)` (a test checks the two agree).
    static func outcomeIndex(_ decision: Decision) -> Int {
        switch decision {
        case .allow: return 0
        case .paymentRequired(_, let failure): return failure == nil ? 1 : 2
        case .refused: return 3
        case .unavailable: return 4
        case .misconfigured: return 5
        case .rateLimited: return 6
        case .free: return 7
        case .leased: return 8
        case .leaseRefused: return 9
        case .leaseIssued: return 10
        case .signedIn: return 11
        case .signInRefused: return 12
        }
    }

    func count(_ outcome: SettlementTransition.Outcome) {
        settlementOutcomes[outcome]?.increment()
    }

    /// The exposition, with the gauges read now.
    func exposition(inFlight: Int, queue: SettlementQueueStats?, undecodable: Int?) -> String {
        self.inFlight.record(inFlight)
        if let queue {
            queueJobs["pending"]?.record(queue.pending)
            queueJobs["held"]?.record(queue.held)
            queueJobs["dead"]?.record(queue.dead)
        }
        if let undecodable { undecodableJobs.record(undecodable) }
        return registry.emitToString()
    }
}
