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
    /// Decisions by route and outcome; decisions for unknown routes count under route "-".
    private let decisions: [String: [String: Metrics.Counter]]
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
        var decisions: [String: [String: Metrics.Counter]] = [:]
        for route in routes + ["-"] {
            var byOutcome: [String: Metrics.Counter] = [:]
            for outcome in Self.outcomes {
                byOutcome[outcome] = Metrics.Counter(label: "x402_decisions_total",
                                             dimensions: [("route", route), ("outcome", outcome)], factory: factory)
            }
            decisions[route] = byOutcome
        }
        self.decisions = decisions
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
        let byOutcome = route.flatMap { decisions[$0] } ?? decisions["-"]
        byOutcome?[DecisionLog.outcome(of: decision)]?.increment()
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
