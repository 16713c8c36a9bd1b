import NIOHTTP1
import Synchronization
import X402

/// What every connection handler shares: the authorizer, the decision log, limits.
public final class SidecarCore: Sendable {
    public let authorizer: Authorizer
    public let decisionLog: DecisionLog
    public let maxHeaderBytes: Int
    /// Signs the paid-request context for the backend (`backend.hmac_secret`).
    public let backendContext: BackendContextSigner?
    /// Request headers that rate-limit rules key on (lowercased).
    let keyHeaderNames: [String]
    /// SHA-256 of the admin token, when the admin listener is configured.
    public let adminTokenSHA256: [UInt8]?
    /// Requests received and not yet answered; shutdown waits for them.
    let inFlight = Atomic<Int>(0)
    /// Decisions by outcome, for `/metrics`.
    let allowed = Atomic<Int>(0)
    let paymentRequired = Atomic<Int>(0)
    let refused = Atomic<Int>(0)
    let unavailable = Atomic<Int>(0)
    let misconfigured = Atomic<Int>(0)
    let rateLimited = Atomic<Int>(0)
    let free = Atomic<Int>(0)

    public init(authorizer: Authorizer, decisionLog: DecisionLog, maxHeaderBytes: Int,
                backendContext: BackendContextSigner? = nil, adminTokenSHA256: [UInt8]? = nil) {
        self.adminTokenSHA256 = adminTokenSHA256
        self.authorizer = authorizer
        self.decisionLog = decisionLog
        self.maxHeaderBytes = maxHeaderBytes
        self.backendContext = backendContext
        keyHeaderNames = authorizer.limits.values.flatMap { $0.keyHeaderNames }
    }

    /// `/readyz`: ready when every configured store answers.
    func readiness() async -> DecisionResponse {
        do {
            try await authorizer.ledger.checkReady()
            try await authorizer.settlements?.queue.checkReady()
            return AuthHandler.json(.ok, #"{"status":"ready"}"#)
        } catch {
            var json = JSONWriter()
            json.beginObject()
            json.field("status", "not ready")
            json.field("ledger", String(describing: error))
            json.endObject()
            return AuthHandler.json(.serviceUnavailable, json.string)
        }
    }

    func count(_ decision: Decision) {
        switch decision {
        case .allow: allowed.add(1, ordering: .relaxed)
        case .paymentRequired: paymentRequired.add(1, ordering: .relaxed)
        case .refused: refused.add(1, ordering: .relaxed)
        case .unavailable: unavailable.add(1, ordering: .relaxed)
        case .misconfigured: misconfigured.add(1, ordering: .relaxed)
        case .rateLimited: rateLimited.add(1, ordering: .relaxed)
        case .free: free.add(1, ordering: .relaxed)
        }
    }

    /// Nginx's report of a paid request's upstream status (`after` settlement).
    func report(paymentId: String?, status: String?) async -> DecisionResponse {
        guard let paymentId, !paymentId.isEmpty, paymentId.utf8.count <= 64,
            let status, let code = Int(status), (100...599).contains(code)
        else {
            return AuthHandler.json(.badRequest, #"{"error":"payment_id and a status 100-599 are required"}"#)
        }
        guard let settlements = authorizer.settlements else {
            return AuthHandler.json(.notFound, #"{"error":"settlement is not configured"}"#)
        }
        do {
            let result = try await settlements.report(paymentId: paymentId, upstreamStatus: code)
            let text: String
            switch result {
            case .willSettle: text = "settle"
            case .released: text = "released"
            case .unknown: return AuthHandler.json(.notFound, #"{"error":"unknown payment id"}"#)
            case .alreadyDecided(let state): text = "already " + state.rawValue
            }
            return AuthHandler.json(.ok, "{\"result\":\"\(text)\"}")
        } catch {
            return AuthHandler.json(.serviceUnavailable, #"{"error":"settlement queue unavailable"}"#)
        }
    }

    /// The admin API (admin listener only): `GET` inspects and `DELETE` resets one rate-limit or
    /// free-quota key, `/admin/ratelimit?route=R&rule=NAME&key=VALUE` (`rule=free` for the free
    /// quota; VALUE as the rule keys it: an address, a payer, or the header's value).
    func admin(method: HTTPMethod, path: String, query: [String: String], authorization: String?) async -> DecisionResponse {
        guard let expected = adminTokenSHA256, let authorization, authorization.hasPrefix("Bearer "),
            OpenSSL.constantTimeEquals(OpenSSL.sha256(Array(authorization.dropFirst(7).utf8)), expected)
        else {
            return DecisionResponse(status: .unauthorized, headers: ["Content-Type": "application/json", "WWW-Authenticate": "Bearer"],
                                    body: #"{"error":"a valid admin token is required"}"#)
        }
        guard path == "/admin/ratelimit" else { return AuthHandler.json(.notFound, #"{"error":"not found"}"#) }
        guard let routeName = query["route"], let ruleName = query["rule"], let value = query["key"],
            let limits = authorizer.limits[routeName], let limiter = authorizer.limiter
        else {
            return AuthHandler.json(.badRequest, #"{"error":"route (with limits), rule and key are required"}"#)
        }
        let key: RouteLimits.Rule.Key
        if ruleName == "free", let free = limits.free {
            key = free.key
        } else if let rule = limits.rules.first(where: { $0.name == ruleName }) {
            key = rule.key
        } else {
            return AuthHandler.json(.notFound, #"{"error":"no such rule in this route"}"#)
        }
        let stored: String
        switch key {
        case .header, .lease: stored = Authorizer.hashed(value)
        case .ip, .payer: stored = ruleName == "free" || key == .ip ? value : value.lowercased()
        }
        let storeKey = authorizer.storeKey(route: routeName, rule: ruleName, value: stored)
        do {
            var json = JSONWriter()
            json.beginObject()
            json.field("route", routeName)
            json.field("rule", ruleName)
            json.field("store_key", storeKey)
            switch method {
            case .GET:
                let state = try await limiter.inspect(key: storeKey)
                json.key("exists")
                json.bool(state != nil)
                if let state {
                    if ruleName == "free" {
                        json.field("free_calls_used", state)
                    } else {
                        json.field("tat_us", state)
                    }
                }
            case .DELETE:
                json.key("reset")
                json.bool(try await limiter.reset(key: storeKey))
            default:
                return AuthHandler.json(.methodNotAllowed, #"{"error":"GET inspects, DELETE resets"}"#)
            }
            json.endObject()
            return AuthHandler.json(.ok, json.string)
        } catch {
            return AuthHandler.json(.serviceUnavailable, #"{"error":"rate-limit store unavailable"}"#)
        }
    }

    /// Prometheus text exposition.
    func metrics() async -> DecisionResponse {
        var text = "# HELP x402_decisions_total Authorization decisions by outcome.\n# TYPE x402_decisions_total counter\n"
        for (outcome, counter) in [("allow", allowed.load(ordering: .relaxed)), ("payment_required", paymentRequired.load(ordering: .relaxed)),
                                   ("refused", refused.load(ordering: .relaxed)), ("unavailable", unavailable.load(ordering: .relaxed)),
                                   ("misconfigured", misconfigured.load(ordering: .relaxed)),
                                   ("rate_limited", rateLimited.load(ordering: .relaxed)), ("free", free.load(ordering: .relaxed))] {
            text += "x402_decisions_total{outcome=\"\(outcome)\"} \(counter)\n"
        }
        text += "# HELP x402_requests_in_flight Requests received and not yet answered.\n# TYPE x402_requests_in_flight gauge\n"
        text += "x402_requests_in_flight \(inFlight.load(ordering: .relaxed))\n"
        text += "# HELP x402_ratelimit_store_failures_total Rate-limit decisions that could not reach their store.\n"
        text += "# TYPE x402_ratelimit_store_failures_total counter\n"
        text += "x402_ratelimit_store_failures_total \(authorizer.limiterFailures.load(ordering: .relaxed))\n"
        if let settlements = authorizer.settlements {
            let c = settlements.counters
            text += "# HELP x402_settlements_total Settlement outcomes.\n# TYPE x402_settlements_total counter\n"
            for (outcome, counter) in [("enqueued", c.enqueued.load(ordering: .relaxed)), ("settled", c.settled.load(ordering: .relaxed)),
                                       ("released", c.released.load(ordering: .relaxed)), ("retried", c.retried.load(ordering: .relaxed)),
                                       ("dead_lettered", c.deadLettered.load(ordering: .relaxed))] {
                text += "x402_settlements_total{outcome=\"\(outcome)\"} \(counter)\n"
            }
            if let stats = try? await settlements.queue.stats() {
                text += "# HELP x402_settlement_queue_jobs Jobs in the settlement queue by state.\n"
                text += "# TYPE x402_settlement_queue_jobs gauge\n"
                text += "x402_settlement_queue_jobs{state=\"pending\"} \(stats.pending)\n"
                text += "x402_settlement_queue_jobs{state=\"held\"} \(stats.held)\n"
                text += "x402_settlement_queue_jobs{state=\"dead\"} \(stats.dead)\n"
            }
        }
        return DecisionResponse(status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4"], body: text)
    }
}
