import X402

/// Which answers ngx_http_x402_module may keep in each worker's memory for a moment
/// (`server.decision_cache_seconds`), so a repeated unpaid request costs nginx a lookup instead of
/// a round trip to the sidecar.
///
/// The sidecar marks such an answer with `X-Accel-Expires: N`. Only the 402 of an unpaid request
/// qualifies — no payment, lease token or sign-in proof — on a route without rate limits or a free
/// quota (their state changes per request) and without Sign-In-With-X (a fresh nonce each time):
/// that challenge is a pure function of the route, method, scheme, host and URI, the module's key,
/// and answering it changes nothing anywhere. Stock nginx's `auth_request` ignores the header
/// (`proxy_cache` was measured and left out: its keys zone made a flood of distinct URLs ten
/// times slower once it filled).
public struct DecisionCaching: Sendable {
    /// 0: nothing is marked.
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

    /// How long this answer to this request may be kept; nil: not at all.
    public func seconds(for decision: Decision, request: AuthorizeRequest) -> Int? {
        guard seconds > 0, case .paymentRequired = decision, let route = request.route,
            !excludedRoutes.contains(route), request.payment.isEmpty, request.lease == nil,
            request.signInProof == nil, !request.streamRecheck
        else { return nil }
        return seconds
    }
}
