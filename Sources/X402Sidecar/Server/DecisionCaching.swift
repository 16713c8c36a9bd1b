import X402

/// Which answers nginx may keep for a moment (`server.decision_cache_seconds`), so the commonest
/// requests a paid API sees cost nginx a cache lookup instead of a round trip to the sidecar.
///
/// The sidecar marks such an answer with `X-Accel-Expires: N`; the auth location of both
/// integrations (`nginx/x402/server.conf`, `nginx/module/server.conf`) keeps it in `proxy_cache`
/// under the route, method, scheme, host, original URI and the lease headers, and never stores
/// or serves from the cache for a request carrying a payment or a sign-in proof. Only answers that
/// are a pure function of that key, and change nothing anywhere, qualify:
/// - the 402 of an unpaid request (no payment, lease or proof) on a route without rate limits or a
///   free quota (their state changes per request) and without Sign-In-With-X (a fresh nonce each);
/// - a lease's allow when the lease has no counters (`max_requests`, `max_concurrent`: each use
///   counts) and its route no rate limits; never past the lease's `exp`, and never for a stream
///   recheck (that one asks about revocation).
/// A revocation is in force everywhere once the admin API answers: it waits out the cache (N + 1
/// seconds: nginx keeps an answer through the whole second its expiry falls in).
/// Payments, refusals, settlement and anything counted are never cached.
public struct DecisionCaching: Sendable {
    /// 0: nothing is cached.
    public let seconds: Int
    /// Routes whose answers depend on more than the key: rate limits, free quotas, sign-in.
    let excludedRoutes: Set<String>

    public init(seconds: Int, excludedRoutes: Set<String>) {
        self.seconds = seconds
        self.excludedRoutes = excludedRoutes
    }

    /// For a policy: its rate-limited and sign-in routes are excluded.
    public init(seconds: Int, policy: AuthorizationPolicy) {
        var excluded = Set(policy.limits.keys)
        if let signIn = policy.signIn { excluded.formUnion(signIn.routes.keys) }
        self.init(seconds: seconds, excludedRoutes: excluded)
    }

    /// How long nginx may keep this answer to this request; nil: not at all.
    public func seconds(for decision: Decision, request: AuthorizeRequest, now: Int64) -> Int? {
        guard seconds > 0, let route = request.route, !excludedRoutes.contains(route),
            request.payment.isEmpty, request.signInProof == nil, !request.streamRecheck
        else { return nil }
        switch decision {
        case .paymentRequired where request.lease == nil:
            return seconds
        case .leased(let grant) where grant.claims.maxRequests == nil && grant.claims.maxConcurrent == nil:
            // nginx keeps an answer through the whole second its expiry falls in (it compares
            // whole seconds): one second of margin, so no copy outlives the lease.
            let left = grant.claims.expiresAt - now - 1
            return left > 0 ? Int(min(Int64(seconds), left)) : nil
        default:
            return nil
        }
    }
}
