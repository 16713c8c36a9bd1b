import X402

/// The lease steps of the decision: a protected route opened by a lease checks the token (in
/// process: signature, key, `exp`/`nbf`, host, route) and then the store (revocation, request
/// count, concurrency slot); a paid request on a lease route comes out as a new token.
extension AuthorizationFlow {
    /// The lease token this route takes from this request, if any.
    func presentedLease(_ route: RouteRequirements) -> PresentedLease? {
        guard let lease = request.lease, let leases = policy.leases, leases.openedBy[route.name] != nil else {
            return nil
        }
        if lease.source == .query && !leases.queryTokenRoutes.contains(route.name) { return nil }
        return lease
    }

    mutating func checkLease(_ lease: PresentedLease, route: RouteRequirements) -> Action {
        guard let leases = policy.leases, let host = LeaseClaims.normalizedHost(request.host) else {
            return respond(.leaseRefused(LeaseFailure(.wrongHost, "the request's host is not a host name"),
                                         challenge: challenge(route, .wrongHost)))
        }
        if lease.duplicated {
            let failure = LeaseFailure(.duplicated, "more than one X-X402-Lease header")
            return respond(.leaseRefused(failure, challenge: challenge(route, failure.reason)))
        }
        let expectation = LeaseExpectation(route: route.name, host: host, now: policy.now(),
                                           clockSkew: leases.clockSkewSeconds)
        switch leases.keyring.verify(lease.token, expecting: expectation) {
        case .failure(let failure):
            // A bearer token that is not one of ours belongs to the backend: pay as usual.
            if lease.source == .bearer && (failure.reason == .malformed || failure.reason == .unknownKey) {
                return verify(route, limits: policy.limits[route.name])
            }
            return respond(.leaseRefused(failure, challenge: challenge(route, failure.reason)))
        case .success(let claims):
            let slot = claims.maxConcurrent == nil ? nil : (request.requestId ?? policy.makePaymentId())
            state = .admittingLease(route, claims, slot: slot)
            var use = LeaseUse(claims: claims, slot: slot)
            // A recheck of an open stream: revocation only; its slot (named by its request id) is
            // the one it already holds, and it is not another request.
            if request.streamRecheck { use.maxRequests = nil }
            return .admitLease(use)
        }
    }

    mutating func leaseAdmitted(_ answer: Result<LeaseAdmission, any Error>, claims: LeaseClaims, slot: String?,
                                route: RouteRequirements) -> Action {
        switch answer {
        case .success(.admitted(let requests)):
            return respond(.leased(LeaseGrant(claims: claims, slot: slot, requests: requests)))
        case .success(.refused(let reason)):
            let message: String
            switch reason {
            case .revoked: message = "the lease was revoked"
            case .requestLimit: message = "the lease's \(claims.maxRequests ?? 0) requests are used up"
            case .concurrencyLimit: message = "the lease's \(claims.maxConcurrent ?? 0) concurrent requests are open"
            default: message = reason.rawValue
            }
            let failure = LeaseFailure(reason, message, jti: claims.jti, payer: claims.payer)
            return respond(.leaseRefused(failure, challenge: challenge(route, reason)))
        case .failure:
            return respond(.unavailable(reason: "lease store unavailable", retryAfter: 5))
        }
    }

    /// Paying helps against everything but the lease's own concurrency limit.
    func challenge(_ route: RouteRequirements, _ reason: LeaseRefusal) -> Challenge? {
        reason == .concurrencyLimit ? nil : challenge(route, error: reason.rawValue)
    }

    // MARK: Buying a lease

    /// A payment was accepted: remember it for Sign-In-With-X where the route offers it; then allow
    /// it, or on a lease route issue the lease it bought.
    mutating func granted(_ grant: Grant, route: RouteRequirements) -> Action {
        if let access = paidAccess(grant, route: route) {
            state = .recordingPaidAccess(grant, route)
            return .recordPaidAccess(access)
        }
        return issueOrAllow(grant, route: route)
    }

    mutating func issueOrAllow(_ grant: Grant, route: RouteRequirements) -> Action {
        guard let leases = policy.leases, let lease = leases.leaseRoutes[route.name] else {
            return respond(.allow(grant))
        }
        let now = policy.now()
        let payment = grant.payment
        let host = LeaseClaims.normalizedHost(request.host) ?? "localhost"
        var expiresAt = now + lease.seconds
        var renewing: LeaseClaims?
        if let presented = request.lease, presented.source != .query, let first = lease.opens.first,
            case .success(let old) = leases.keyring.verify(
                presented.token,
                expecting: LeaseExpectation(route: first, host: host, now: now, clockSkew: leases.clockSkewSeconds)),
            old.leaseRoute == route.name, old.payer == payment.payer, old.expiresAt - now <= lease.renewalWindowSeconds
        {
            // Inside the renewal window: the successor runs on from the old lease's end.
            expiresAt = max(old.expiresAt, now) + lease.seconds
            renewing = old
        }
        let claims = LeaseClaims(
            payer: payment.payer, host: host, routes: lease.opens, jti: policy.makePaymentId(), issuedAt: now,
            notBefore: now, expiresAt: expiresAt, leaseRoute: route.name, amount: payment.option.amount,
            asset: payment.option.token.address.lowercased(), network: payment.option.network.caip2,
            paymentID: grant.paymentId, transaction: grant.transaction, maxRequests: lease.maxRequests,
            maxConcurrent: lease.maxConcurrent)
        state = .issuingLease(LeaseIssue(grant: grant, claims: claims, token: leases.keyring.issue(claims),
                                         renewed: renewing?.jti))
        return .registerLease(claims, renewing: renewing)
    }

    /// The lease is paid for: it is handed over whatever the store said (charging for a refused
    /// request is never an option). A renewal that lost to another one still gets its own lease,
    /// counted from now instead of from the old lease's end.
    mutating func leaseRegistered(_ answer: Result<LeaseRenewal?, any Error>, _ issue: LeaseIssue) -> Action {
        guard case .success(let renewal?) = answer, renewal != .renewed, let leases = policy.leases,
            let lease = leases.leaseRoutes[issue.claims.leaseRoute]
        else { return respond(.leaseIssued(issue)) }
        var fresh = issue
        fresh.claims.expiresAt = fresh.claims.issuedAt + lease.seconds
        fresh.token = leases.keyring.issue(fresh.claims)
        fresh.renewed = nil
        return respond(.leaseIssued(fresh))
    }
}
