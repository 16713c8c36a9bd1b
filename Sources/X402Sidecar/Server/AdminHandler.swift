import NIOHTTP1
import X402

/// The admin API, on the token-protected admin listener only.
struct AdminHandler: Sendable {
    let authorizer: Authorizer
    /// SHA-256 of the admin token; nil: every admin call is refused.
    let tokenSHA256: [UInt8]?

    /// The admin API (admin listener only): `GET` inspects and `DELETE` resets one rate-limit or
    /// free-quota key, `/admin/ratelimit?route=R&rule=NAME&key=VALUE` (`rule=free` for the free
    /// quota; VALUE as the rule keys it: an address, a payer, or the header's value).
    func respond(method: HTTPMethod, path: String, query: [String: String], authorization: String?) async
        -> DecisionResponse
    {
        guard let expected = tokenSHA256, let authorization, authorization.hasPrefix("Bearer "),
            OpenSSL.constantTimeEquals(OpenSSL.sha256(Array(authorization.dropFirst(7).utf8)), expected)
        else {
            return DecisionResponse(status: .unauthorized, headers: ["Content-Type": "application/json", "WWW-Authenticate": "Bearer"],
                                    body: #"{"error":"a valid admin token is required"}"#)
        }
        if path == "/admin/lease" { return await lease(method: method, query: query) }
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

    /// `DELETE /admin/lease?jti=J[&exp=UNIX]` revokes one lease (until its `exp`; without `exp`,
    /// for the longest lease any route sells), `DELETE /admin/lease?payer=0x…` every lease of a
    /// payer. The next request with a revoked lease is refused (`lease_revoked`).
    func lease(method: HTTPMethod, query: [String: String]) async -> DecisionResponse {
        guard let store = authorizer.leaseStore, let leases = authorizer.policy.leases else {
            return AuthHandler.json(.notFound, #"{"error":"leases are not configured"}"#)
        }
        guard method == .DELETE else { return AuthHandler.json(.methodNotAllowed, #"{"error":"DELETE revokes"}"#) }
        let now = authorizer.policy.now()
        var json = JSONWriter()
        json.beginObject()
        do {
            if let payer = query["payer"]?.lowercased() {
                guard Hex.isAddress(payer) else { return AuthHandler.json(.badRequest, #"{"error":"payer is not an address"}"#) }
                let count = try await store.revoke(payer: payer, now: now)
                authorizer.metrics.leaseRevocations.increment(by: Int64(count))
                authorizer.logger.notice("leases revoked", metadata: ["payer": "\(payer)", "count": "\(count)"])
                json.field("payer", payer)
                json.field("revoked", count)
            } else if let jti = query["jti"]?.lowercased(), jti.utf8.count == 32,
                jti.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
            {
                let longest = leases.leaseRoutes.values.map(\.seconds).max() ?? 86400
                let expiresAt = query["exp"].flatMap(Int64.init) ?? now + longest + leases.clockSkewSeconds
                try await store.revoke(jti: jti, expiresAt: expiresAt)
                authorizer.metrics.leaseRevocations.increment()
                authorizer.logger.notice("lease revoked", metadata: ["lease_id": "\(jti)", "until": "\(expiresAt)"])
                json.field("jti", jti)
                json.field("revoked_until", expiresAt)
            } else {
                return AuthHandler.json(.badRequest, #"{"error":"give jti (32 hex digits) or payer"}"#)
            }
        } catch {
            return AuthHandler.json(.serviceUnavailable, #"{"error":"lease store unavailable"}"#)
        }
        json.endObject()
        return AuthHandler.json(.ok, json.string)
    }
}
