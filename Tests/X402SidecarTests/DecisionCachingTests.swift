import NIOHTTP1
import Testing
import X402
@testable import X402Sidecar

/// Which answers nginx may keep (`X-Accel-Expires`): only those that depend on nothing but the
/// cache key and change nothing anywhere.
@Suite struct DecisionCachingTests {
    static let now = AuthorizationFlowTests.now
    static let caching = DecisionCaching(seconds: 2, excludedRoutes: ["limited", "members"])
    static let challenge = AuthorizationFlowTests.route.challenge(resourceURL: "https://api.example.com/weather",
                                                                  error: "payment_required")

    static func lease(exp: Int64 = now + 600, maxRequests: Int? = nil, maxConcurrent: Int? = nil) -> Decision {
        var claims = AuthorizationFlowLeaseTests.claims(exp: exp, maxConcurrent: maxConcurrent)
        claims.maxRequests = maxRequests
        return .leased(LeaseGrant(claims: claims, slot: nil, requests: 0))
    }

    @Test func theChallengeOfAnUnpaidRequestOnAPlainRouteIsKept() {
        let unpaid = AuthorizationFlowTests.request()
        #expect(Self.caching.seconds(for: .paymentRequired(Self.challenge, failure: nil), request: unpaid, now: Self.now) == 2)
    }

    @Test func nothingPaidSignedInCountedOrRefusedIsKept() {
        let challenge = Decision.paymentRequired(Self.challenge, failure: nil)
        // A payment (valid or not), a sign-in proof, a lease token: always asked.
        #expect(Self.caching.seconds(for: challenge, request: AuthorizationFlowTests.request(paid: true), now: Self.now) == nil)
        var proof = AuthorizationFlowTests.request()
        proof.signInProof = "proof"
        #expect(Self.caching.seconds(for: challenge, request: proof, now: Self.now) == nil)
        var leased = AuthorizationFlowTests.request()
        leased.lease = PresentedLease(token: "a.b.c", source: .bearer)
        #expect(Self.caching.seconds(for: challenge, request: leased, now: Self.now) == nil)
        // Routes with rate limits, free quotas or sign-in: their answers change per request.
        for route in ["limited", "members"] {
            #expect(Self.caching.seconds(for: challenge, request: AuthorizationFlowTests.request(route: route),
                                         now: Self.now) == nil)
        }
        // Refusals, allows of payments, unavailability: never.
        let unpaid = AuthorizationFlowTests.request()
        for decision: Decision in [
            .refused(status: 403, retryAfter: nil, reason: "x"), .unavailable(reason: "down", retryAfter: 5),
            .misconfigured(reason: "unknown route"), .free(remaining: 3),
            .leaseRefused(LeaseFailure(.revoked, "revoked"), challenge: Self.challenge),
        ] {
            #expect(Self.caching.seconds(for: decision, request: unpaid, now: Self.now) == nil)
        }
        #expect(DecisionCaching(seconds: 0, excludedRoutes: []).seconds(for: challenge, request: unpaid, now: Self.now)
                == nil)
    }

    @Test func aLeaseWithoutCountersIsKeptButNeverPastItsExpiry() {
        var request = AuthorizationFlowTests.request()
        request.lease = PresentedLease(token: "t", source: .header)
        #expect(Self.caching.seconds(for: Self.lease(), request: request, now: Self.now) == 2)
        // nginx keeps an answer through the second it expires in: a second of margin before `exp`.
        #expect(Self.caching.seconds(for: Self.lease(exp: Self.now + 2), request: request, now: Self.now) == 1)
        #expect(Self.caching.seconds(for: Self.lease(exp: Self.now + 1), request: request, now: Self.now) == nil)
        #expect(Self.caching.seconds(for: Self.lease(maxRequests: 10), request: request, now: Self.now) == nil)
        #expect(Self.caching.seconds(for: Self.lease(maxConcurrent: 2), request: request, now: Self.now) == nil)
        var recheck = request
        recheck.streamRecheck = true
        #expect(Self.caching.seconds(for: Self.lease(), request: recheck, now: Self.now) == nil)
    }

    @Test func thePolicysLimitedAndSignInRoutesAreExcluded() throws {
        let limits = RouteLimits(rules: [RouteLimits.Rule(name: "ip", rule: AuthorizationFlowTests.rule, key: .ip)])
        let caching = DecisionCaching(seconds: 1, policy: AuthorizationFlowTests.policy(limits: limits))
        #expect(caching.excludedRoutes == ["weather"])
    }
}
