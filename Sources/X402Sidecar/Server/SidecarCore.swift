import NIOHTTP1
import Synchronization
import X402

/// What every connection handler shares: the authorizer, the decision log, metrics, and the
/// handlers of the endpoints that are not `/authorize` (`Endpoints.swift` lists them all).
public final class SidecarCore: Sendable {
    public let authorizer: Authorizer
    public let decisionLog: DecisionLog
    public let maxHeaderBytes: Int
    /// Signs the paid-request context for the backend (`backend.hmac_secret`).
    public let backendContext: BackendContextSigner?
    public let metrics: SidecarMetrics
    /// Request headers that rate-limit rules key on (lowercased).
    let keyHeaderNames: [String]
    /// Requests received and not yet answered; shutdown waits for them.
    let inFlight = Atomic<Int>(0)
    let admin: AdminHandler
    let readiness: ReadinessHandler
    let reports: ReportHandler
    /// The answers the nginx module may keep for a moment (`server.decision_cache_seconds`).
    public let caching: DecisionCaching

    public init(authorizer: Authorizer, decisionLog: DecisionLog, maxHeaderBytes: Int,
                backendContext: BackendContextSigner? = nil, adminTokenSHA256: [UInt8]? = nil,
                decisionCacheSeconds: Int = 0) {
        self.authorizer = authorizer
        self.decisionLog = decisionLog
        self.maxHeaderBytes = maxHeaderBytes
        self.backendContext = backendContext
        metrics = authorizer.metrics
        keyHeaderNames = authorizer.limits.values.flatMap { $0.keyHeaderNames }
        caching = DecisionCaching(seconds: decisionCacheSeconds, policy: authorizer.policy)
        admin = AdminHandler(authorizer: authorizer, tokenSHA256: adminTokenSHA256)
        readiness = ReadinessHandler(ledger: authorizer.ledger, queue: authorizer.settlements?.queue,
                                     limiter: authorizer.limiter)
        reports = ReportHandler(settlements: authorizer.settlements)
    }

    /// Logs and counts a decision, and turns it into the answer.
    func answer(_ decision: Decision, request: AuthorizeRequest, latencyMicros: UInt64) -> DecisionResponse {
        decisionLog.record(decision, request: request, latencyMicros: latencyMicros)
        metrics.count(decision, route: request.route)
        var response = DecisionResponse(decision, backendContext: backendContext?.bound(to: RequestBinding(request)),
                                        challengeBody: !request.viaNginx)
        if caching.seconds > 0, let seconds = caching.seconds(for: decision, request: request) {
            response.headers.add(name: "X-Accel-Expires", value: String(seconds))
        }
        return response
    }

    /// `/metrics`: Prometheus text exposition, gauges read now.
    func metricsResponse() async -> DecisionResponse {
        let queue = authorizer.settlements?.queue
        var stats: SettlementQueueStats?
        if let queue { stats = try? await queue.stats() }
        let text = metrics.exposition(inFlight: inFlight.load(ordering: .relaxed), queue: stats,
                                      undecodable: queue?.undecodableJobs)
        return DecisionResponse(status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4"], body: text)
    }
}
