import NIOHTTP1
import Testing
import X402
@testable import X402Sidecar

/// The lease steps of `AuthorizationFlow`, driven by events without a store or a socket.
@Suite struct AuthorizationFlowLeaseTests {
    static let now = AuthorizationFlowTests.now
    static let keyring = try! LeaseKeyring(keys: [("k1", .hs256(secret: Array(repeating: 7, count: 32)))])

    static func leases(window: Int64 = 60) -> LeaseSettings {
        var settings = LeaseSettings(keyring: keyring)
        settings.leaseRoutes["weather"] = LeaseRouteSettings(
            opens: ["weather"], seconds: 600, maxRequests: 3, maxConcurrent: nil, renewalWindowSeconds: window)
        settings.openedBy["weather"] = ["weather"]
        return settings
    }

    static func policy(leases: LeaseSettings = leases()) -> AuthorizationPolicy {
        AuthorizationPolicy(routes: ["weather": AuthorizationFlowTests.route], verifier: PaymentVerifier(),
                            leases: leases, now: { now }, makePaymentId: { "0123456789abcdef0123456789abcdef" })
    }

    static func claims(exp: Int64 = now + 300, host: String = "api.example.com", maxConcurrent: Int? = nil) -> LeaseClaims {
        LeaseClaims(payer: AuthServerTests.payer.address.lowercased(), host: host, routes: ["weather"],
                    jti: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", issuedAt: min(now, exp) - 100, notBefore: min(now, exp) - 100,
                    expiresAt: exp,
                    leaseRoute: "weather", amount: "10000", asset: "0x036cbd53842c5426634e7929541ec2318f3dcf7e",
                    network: "eip155:84532", paymentID: "p", maxRequests: 3, maxConcurrent: maxConcurrent)
    }

    static func request(_ token: String?, source: PresentedLease.Source = .header, paid: Bool = false) -> AuthorizeRequest {
        var request = AuthorizationFlowTests.request(paid: paid)
        request.requestId = "req-1"
        request.lease = token.map { PresentedLease(token: $0, source: source) }
        return request
    }

    @Test func aValidLeaseIsAdmittedByTheStore() {
        let claims = Self.claims(maxConcurrent: 2)
        var flow = AuthorizationFlow(Self.request(Self.keyring.issue(claims)), policy: Self.policy())
        guard case .admitLease(let use) = flow.start() else {
            Issue.record("a valid token goes to the store")
            return
        }
        #expect(use.jti == claims.jti && use.slot == "req-1" && use.maxConcurrent == 2 && use.maxRequests == 3)
        #expect(AuthorizationFlowTests.decision(flow.receive(.leaseAdmitted(.success(.admitted(requests: 2)))))
                == .leased(LeaseGrant(claims: claims, slot: "req-1", requests: 2)))
    }

    @Test func aStreamRecheckCountsNothingAndKeepsTheStreamsSlot() {
        var request = Self.request(Self.keyring.issue(Self.claims(maxConcurrent: 1)))
        request.streamRecheck = true
        var flow = AuthorizationFlow(request, policy: Self.policy())
        guard case .admitLease(let use) = flow.start() else {
            Issue.record("a recheck still asks the store (revocation)")
            return
        }
        #expect(use.maxRequests == nil && use.maxConcurrent == 1 && use.slot == "req-1")
    }

    @Test func storeRefusalsAndFailures() {
        let token = Self.keyring.issue(Self.claims())
        for (reason, paying) in [(LeaseRefusal.revoked, true), (.requestLimit, true), (.concurrencyLimit, false)] {
            var flow = AuthorizationFlow(Self.request(token), policy: Self.policy())
            _ = flow.start()
            guard case .respond(.leaseRefused(let failure, let challenge)) =
                flow.receive(.leaseAdmitted(.success(.refused(reason))))
            else {
                Issue.record("\(reason) must refuse")
                continue
            }
            #expect(failure.reason == reason && (challenge != nil) == paying)
        }
        var down = AuthorizationFlow(Self.request(token), policy: Self.policy())
        _ = down.start()
        #expect(AuthorizationFlowTests.decision(down.receive(.leaseAdmitted(.failure(AuthorizationFlowTests.Failure()))))
                == .unavailable(reason: "lease store unavailable", retryAfter: 5))
    }

    @Test func badTokensAreRefusedInProcessWithTheirReason() {
        let cases: [(String, LeaseRefusal)] = [
            (Self.keyring.issue(Self.claims(exp: Self.now - 60)), .expired),
            (Self.keyring.issue(Self.claims(host: "other.example.com")), .wrongHost),
            ("garbage", .malformed),
        ]
        for (token, reason) in cases {
            var flow = AuthorizationFlow(Self.request(token), policy: Self.policy())
            guard case .respond(.leaseRefused(let failure, let challenge?)) = flow.start() else {
                Issue.record("\(reason)")
                continue
            }
            #expect(failure.reason == reason)
            #expect(challenge == AuthorizationFlowTests.route.challenge(
                resourceURL: "https://api.example.com/weather", error: reason.rawValue))
        }
    }

    @Test func twoLeaseHeadersAreRefusedWhateverTheyHold() {
        let valid = Self.keyring.issue(Self.claims())
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/_x402/authorize")
        head.headers.add(name: "X-X402-Route", value: "weather")
        head.headers.add(name: "X-Forwarded-Proto", value: "https")
        head.headers.add(name: "Host", value: "api.example.com")
        head.headers.add(name: "X-Original-URI", value: "/weather")
        head.headers.add(name: "X-X402-Lease", value: valid)
        head.headers.add(name: "x-x402-lease", value: valid)
        let request = AuthorizeRequest(head)
        #expect(request.lease == PresentedLease(token: valid, source: .header, duplicated: true))
        var flow = AuthorizationFlow(request, policy: Self.policy())
        guard case .respond(.leaseRefused(let failure, let challenge?)) = flow.start() else {
            Issue.record("two lease headers are refused before any check")
            return
        }
        #expect(failure.reason == .duplicated && failure.reason.rawValue == "lease_duplicated")
        #expect(challenge == AuthorizationFlowTests.route.challenge(
            resourceURL: "https://api.example.com/weather", error: "lease_duplicated"))
    }

    @Test func aBearerTokenThatIsNotOursIsTheBackendsBusiness() {
        var flow = AuthorizationFlow(Self.request("a.b.c", source: .bearer), policy: Self.policy())
        guard case .respond(.paymentRequired(_, nil)) = flow.start() else {
            Issue.record("a foreign bearer token must not be refused as a lease")
            return
        }
        var query = AuthorizationFlow(Self.request(Self.keyring.issue(Self.claims()), source: .query), policy: Self.policy())
        guard case .respond(.paymentRequired) = query.start() else {
            Issue.record("a query token only counts where the route allows it")
            return
        }
    }

    @Test func aPaymentOnALeaseRouteIssuesALease() throws {
        var flow = AuthorizationFlow(Self.request(nil, paid: true), policy: Self.policy())
        guard case .reserve = flow.start() else {
            Issue.record("a payment is reserved first")
            return
        }
        guard case .registerLease(let claims, nil) = flow.receive(.reserved(.success(true))) else {
            Issue.record("a won reservation on a lease route registers the lease")
            return
        }
        #expect(claims.expiresAt == Self.now + 600 && claims.routes == ["weather"] && claims.host == "api.example.com")
        guard case .respond(.leaseIssued(let issue)) = flow.receive(.leaseRegistered(.success(nil))) else {
            Issue.record("the lease is handed over")
            return
        }
        #expect(issue.claims == claims)
        let verified = try Self.keyring.verify(issue.token, expecting: LeaseExpectation(
            route: "weather", host: "api.example.com", now: Self.now)).get()
        #expect(verified == claims)
    }

    @Test func renewalInsideTheWindowExtendsAndALostRenewalStartsFresh() {
        let old = Self.claims(exp: Self.now + 30)
        var flow = AuthorizationFlow(Self.request(Self.keyring.issue(old), paid: true), policy: Self.policy())
        // The paid request on the lease route carries a live token of the same lease and payer.
        guard case .admitLease = flow.start() else {
            Issue.record("the route is also opened by its own lease, so the token is checked first")
            return
        }
        // Not the case here: use a route whose lease opens another route for the renewal path.
        var settings = Self.leases()
        settings.openedBy = ["other": ["weather"]]
        settings.leaseRoutes["weather"]?.opens = ["other"]
        var renewed = old
        renewed.routes = ["other"]
        var renewal = AuthorizationFlow(Self.request(Self.keyring.issue(renewed), paid: true),
                                        policy: Self.policy(leases: settings))
        _ = renewal.start()
        guard case .registerLease(let claims, let renewing?) = renewal.receive(.reserved(.success(true))) else {
            Issue.record("inside the window the purchase renews")
            return
        }
        #expect(renewing.jti == old.jti && claims.expiresAt == old.expiresAt + 600)
        guard case .respond(.leaseIssued(let lost)) = renewal.receive(
            .leaseRegistered(.success(.alreadyRenewed(successor: "x"))))
        else {
            Issue.record("a lost renewal still hands over a lease")
            return
        }
        #expect(lost.claims.expiresAt == Self.now + 600 && lost.renewed == nil)
    }
}
