import Testing
import X402
@testable import X402Sidecar

/// Which answers the nginx module may keep (`X-Accel-Expires`): only the 402 of an unpaid request
/// on a plain route, which depends on nothing but the module's key and changes nothing anywhere.
@Suite struct DecisionCachingTests {
    static let caching = DecisionCaching(seconds: 2, excludedRoutes: ["limited", "members"])
    static let challenge = Decision.paymentRequired(
        AuthorizationFlowTests.route.challenge(resourceURL: "https://api.example.com/weather", error: "payment_required"),
        failure: nil)

    @Test func theChallengeOfAnUnpaidRequestOnAPlainRouteIsKept() {
        #expect(Self.caching.seconds(for: Self.challenge, request: AuthorizationFlowTests.request()) == 2)
    }

    @Test func nothingPaidSignedInLeasedOrRefusedIsKept() {
        // A payment (valid or not), a sign-in proof, a lease token, a stream recheck: always asked.
        #expect(Self.caching.seconds(for: Self.challenge, request: AuthorizationFlowTests.request(paid: true)) == nil)
        var proof = AuthorizationFlowTests.request()
        proof.signInProof = "proof"
        #expect(Self.caching.seconds(for: Self.challenge, request: proof) == nil)
        var leased = AuthorizationFlowTests.request()
        leased.lease = PresentedLease(token: "a.b.c", source: .bearer)
        #expect(Self.caching.seconds(for: Self.challenge, request: leased) == nil)
        var recheck = AuthorizationFlowTests.request()
        recheck.streamRecheck = true
        #expect(Self.caching.seconds(for: Self.challenge, request: recheck) == nil)
        // Routes with rate limits, free quotas or sign-in: their answers change per request.
        for route in ["limited", "members"] {
            #expect(Self.caching.seconds(for: Self.challenge, request: AuthorizationFlowTests.request(route: route)) == nil)
        }
        // Anything but a challenge: never.
        let unpaid = AuthorizationFlowTests.request()
        for decision: Decision in [
            .refused(status: 403, retryAfter: nil, reason: "x"), .unavailable(reason: "down", retryAfter: 5),
            .misconfigured(reason: "unknown route"), .free(remaining: 3),
            .leased(LeaseGrant(claims: AuthorizationFlowLeaseTests.claims(), slot: nil, requests: 0)),
        ] {
            #expect(Self.caching.seconds(for: decision, request: unpaid) == nil)
        }
        #expect(DecisionCaching(seconds: 0, excludedRoutes: []).seconds(for: Self.challenge, request: unpaid) == nil)
    }

    @Test func thePolicysLimitedAndSignInRoutesAreExcluded() {
        let limits = RouteLimits(rules: [.init(name: "ip", rule: AuthorizationFlowTests.rule, key: .ip)])
        let caching = DecisionCaching(seconds: 1, policy: AuthorizationFlowTests.policy(limits: limits))
        #expect(caching.excludedRoutes == ["weather"])
    }
}
