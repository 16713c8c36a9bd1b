import Testing
import X402
@testable import X402Sidecar

@Suite struct RateLimitTests {
    @Test func trustedProxiesDecideWhoseForwardedForCounts() throws {
        let proxies = try #require(TrustedProxies(["10.0.0.0/8", "::1"]))
        #expect(proxies.clientAddress(peer: "203.0.113.9", forwardedFor: "1.2.3.4") == "203.0.113.9")
        #expect(proxies.clientAddress(peer: "10.1.2.3", forwardedFor: "1.2.3.4, 198.51.100.7") == "198.51.100.7")
        #expect(proxies.clientAddress(peer: "10.1.2.3", forwardedFor: "1.2.3.4, 10.9.9.9") == "1.2.3.4")
        #expect(proxies.clientAddress(peer: "::1", forwardedFor: "2001:db8::1") == "2001:db8::1")
        #expect(proxies.clientAddress(peer: "10.1.2.3", forwardedFor: "not-an-ip") == "10.1.2.3")
        #expect(TrustedProxies(["10.0.0.0/33"]) == nil)
    }

    static let option = try! PaymentOption(
        network: Network(chainId: 84532, v1Name: "base-sepolia"),
        token: TokenInfo(address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", eip712Name: "USDC", eip712Version: "2",
                         decimals: 6, symbol: "USDC"),
        payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", amount: "10000", maxTimeoutSeconds: 60)
    static let route = RouteRequirements(name: "api", description: "API", mimeType: "application/json", options: [option])

    func authorizer(_ limits: RouteLimits, clock: @escaping @Sendable () -> Int64) -> Authorizer {
        Authorizer(routes: ["api": Self.route], verifier: PaymentVerifier(), ledger: MemoryNonceLedger(),
                   limits: ["api": limits], limiter: EmbeddedRateLimiter(now: clock))
    }

    @Test func unpaidRequestsAreLimitedPerAddressWith429Headers() async throws {
        let limits = RouteLimits(rules: [.init(name: "ip", rule: try RateRule.parse("10/s burst 5").get(), key: .ip)])
        let authorizer = authorizer(limits, clock: { 1_000_000_000 })
        var outcomes: [Decision] = []
        for _ in 0..<7 {
            outcomes.append(await authorizer.decide(AuthorizeRequest(route: "api", clientAddress: "198.51.100.1")))
        }
        #expect(outcomes.prefix(5).allSatisfy { if case .paymentRequired = $0 { true } else { false } })
        guard case .rateLimited(let notice) = outcomes[5] else {
            Issue.record("expected a rate limit, got \(outcomes[5])")
            return
        }
        #expect(notice.policy == "ip" && notice.retryAfterSeconds == 1)
        let response = DecisionResponse(outcomes[5])
        #expect(response.status == .forbidden)
        #expect(response.headers.first(name: "X-X402-Status") == "429")
        #expect(response.headers.first(name: "Retry-After") == "1")
        #expect(response.headers.first(name: "RateLimit-Policy") == "\"ip\";q=5;w=1")
        #expect(response.headers.first(name: "RateLimit") == "\"ip\";r=0;t=1")
        // Another address has its own bucket.
        let other = await authorizer.decide(AuthorizeRequest(route: "api", clientAddress: "198.51.100.2"))
        guard case .paymentRequired = other else {
            Issue.record("another client was limited: \(other)")
            return
        }
    }

    /// The embedded limiter answers in place: `start` decides on the event loop, with the same
    /// answers as the task path.
    @Test func inLoopPathMatchesTheAsyncPath() async throws {
        let limits = RouteLimits(rules: [.init(name: "ip", rule: try RateRule.parse("10/s burst 3").get(), key: .ip)])
        let inLoop = authorizer(limits, clock: { 5_000_000 })
        let viaTask = authorizer(limits, clock: { 5_000_000 })
        let request = AuthorizeRequest(route: "api", clientAddress: "198.51.100.9")
        for _ in 0..<5 {
            guard case .decided(let immediate) = inLoop.start(request) else {
                Issue.record("an in-process limiter suspended")
                return
            }
            let awaited = await viaTask.decide(request)
            #expect(immediate == awaited)
        }
        // Paid requests and free quotas are decided in place too: the stores are in-process.
        var paid = request
        paid.payment = PresentedPayment(v2Header: "x")
        guard case .decided = inLoop.start(paid) else {
            Issue.record("an in-process limiter suspended a paid request")
            return
        }
    }

    @Test func freeQuotaRunsOutAfterExactlyN() async throws {
        let limits = RouteLimits(free: .init(calls: 3, windowSeconds: 3600, key: .header("X-API-Key")))
        let authorizer = authorizer(limits, clock: { UnixClock.microseconds() })
        var request = AuthorizeRequest(route: "api", clientAddress: "198.51.100.1")
        request.keyHeaders["x-api-key"] = "key-1"
        var free: [Int] = []
        for _ in 0..<5 {
            if case .free(let remaining) = await authorizer.decide(request) { free.append(remaining) }
        }
        #expect(free == [2, 1, 0])
        let response = DecisionResponse(.free(remaining: 0))
        #expect(response.status == .ok && response.headers.first(name: "X-X402-Free") == "1")
        // Without the header the quota has no key: payment is asked for at once.
        guard case .paymentRequired = await authorizer.decide(AuthorizeRequest(route: "api")) else {
            Issue.record("a request without the key header got a free call")
            return
        }
    }
}
