import Testing
import X402
@testable import X402Sidecar

@Suite struct DecisionLogTests {
    @Test func paidDecisionLineHasTheFieldsAndNoSecrets() throws {
        let known = KnownNetwork.find("base-sepolia")!
        let option = try PaymentOption(
            network: known.network, token: known.usdc, payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            amount: "10000", maxTimeoutSeconds: 60)
        let route = RouteRequirements(name: "weather", description: "Weather", mimeType: "application/json", options: [option])
        let signer = PaymentSigner(privateKeyHex: "0x" + String(repeating: "11", count: 32))!
        let header = signer.header(
            paying: option, resource: ResourceInfo(url: "https://a/weather", description: "", mimeType: ""),
            now: 1_767_225_600, nonce: Keccak256.hash(Array("log".utf8)))
        let payment = try PaymentVerifier().verify(PresentedPayment(v2Header: header), route: route, now: 1_767_225_600).get()
        let request = AuthorizeRequest(
            route: "weather", uri: "/weather?city=Paris", clientAddress: "203.0.113.7", requestId: "req-9",
            payment: PresentedPayment(v2Header: header))
        let line = DecisionLog.line(.allow(Grant(payment: payment, paymentId: "pid")), request: request, latencyMicros: 42)
        let json = try JSONParser.parse(line)
        #expect(json["event"] == .string("decision"))
        #expect(json["outcome"] == .string("paid"))
        #expect(json["request_id"] == .string("req-9"))
        #expect(json["route"] == .string("weather"))
        #expect(json["payer"] == .string(signer.address.lowercased()))
        #expect(json["amount"] == .string("10000"))
        #expect(json["network"] == .string("eip155:84532"))
        #expect(json["payment_id"] == .string("pid"))
        #expect(json["client"] == .string("203.0.113.7"))
        #expect(json["latency_us"] == .number("42"))
        #expect(json["time"]?.stringValue?.hasSuffix("Z") == true)
        let text = String(decoding: line, as: UTF8.self)
        #expect(!text.contains(payment.signature.dropFirst(2)))
        #expect(!text.contains(header.prefix(40)))
        #expect(!line.contains(0x0A))
    }

    @Test func refusedDecisionLineCarriesTheReason() throws {
        let failure = PaymentFailure(.validBefore, "authorization expires too soon or has expired", payer: "0xABC")
        let challenge = RouteRequirements(name: "w", description: "", mimeType: "", options: []).challenge(resourceURL: "", error: "")
        let line = DecisionLog.line(
            .paymentRequired(challenge, failure: failure), request: AuthorizeRequest(route: "weather"), latencyMicros: 3)
        let json = try JSONParser.parse(line)
        #expect(json["outcome"] == .string("payment_invalid"))
        #expect(json["reason"] == .string("invalid_exact_evm_payload_authorization_valid_before"))
        #expect(json["payer"] == nil)  // not an address: never echoed
        #expect(DecisionLog.outcome(of: .paymentRequired(challenge, failure: nil)) == "payment_required")
        #expect(DecisionLog.outcome(of: .unavailable(reason: "x", retryAfter: 1)) == "unavailable")
    }

    /// `/metrics` counts each decision at `SidecarMetrics.outcomeIndex`: it must name the decision
    /// log's word for every kind of decision.
    @Test func metricsOutcomeIndexNamesTheDecisionLogsWord() throws {
        let challenge = RouteRequirements(name: "w", description: "", mimeType: "", options: []).challenge(resourceURL: "", error: "")
        let known = KnownNetwork.find("base-sepolia")!
        let option = try PaymentOption(
            network: known.network, token: known.usdc, payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            amount: "10000", maxTimeoutSeconds: 60)
        let route = RouteRequirements(name: "weather", description: "Weather", mimeType: "application/json", options: [option])
        let signer = PaymentSigner(privateKeyHex: "0x" + String(repeating: "11", count: 32))!
        let header = signer.header(
            paying: option, resource: ResourceInfo(url: "https://a/weather", description: "", mimeType: ""),
            now: 1_767_225_600, nonce: Keccak256.hash(Array("metrics".utf8)))
        let payment = try PaymentVerifier().verify(PresentedPayment(v2Header: header), route: route, now: 1_767_225_600).get()
        let lease = LeaseClaims(
            payer: payment.payer, host: "a", routes: ["weather"], jti: String(repeating: "a", count: 32), issuedAt: 1,
            notBefore: 1, expiresAt: 2, leaseRoute: "pass", amount: "1", asset: "a", network: "n", paymentID: "p")
        let decisions: [Decision] = [
            .allow(Grant(payment: payment, paymentId: "pid")),
            .paymentRequired(challenge, failure: nil),
            .paymentRequired(challenge, failure: PaymentFailure(.validBefore, "late")),
            .refused(status: 403, retryAfter: nil, reason: "x"),
            .unavailable(reason: "x", retryAfter: 1),
            .misconfigured(reason: "x"),
            .rateLimited(RateLimitNotice(policy: "p", rule: RateRule(count: 1, periodMicros: 1_000_000, burst: 1),
                                         retryAfterSeconds: 1, resetSeconds: 1)),
            .free(remaining: 1),
            .leased(LeaseGrant(claims: lease, slot: nil, requests: 0)),
            .leaseRefused(LeaseFailure(.revoked, "x"), challenge: nil),
            .leaseIssued(LeaseIssue(grant: Grant(payment: payment, paymentId: "pid"), claims: lease, token: "t")),
            .signedIn(SignInGrant(payer: "0x", paymentId: "p", amount: "1", asset: "a", network: "n", expiresAt: 1)),
            .signInRefused(reason: "siwx_not_paid", message: "x", challenge: challenge),
        ]
        for decision in decisions {
            #expect(SidecarMetrics.outcomes[SidecarMetrics.outcomeIndex(decision)] == DecisionLog.outcome(of: decision))
        }
        #expect(Set(decisions.map(SidecarMetrics.outcomeIndex)).count == SidecarMetrics.outcomes.count)
    }
}
