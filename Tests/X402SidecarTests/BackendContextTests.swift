import NIOHTTP1
import Testing
import X402
@testable import X402Sidecar

/// The HMAC the backend checks: the exact bytes of both messages, signatures computed outside
/// Swift (Python's `hmac`, as a backend would), and the headers each allow answer carries.
@Suite struct BackendContextTests {
    static let secret = "e2e-backend-secret-0123456789abcdef"
    static let payer = "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"
    static let paymentId = "0123456789abcdef0123456789abcdef"
    static let jti = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    static let transaction = "0x" + String(repeating: "ab", count: 32)
    static let now: Int64 = 1_767_225_600
    static let request = RequestBinding(method: "GET", host: "API.Example.com:8443", uri: "/weather?city=Paris")
    static let fields = BackendContextFields(
        payer: payer, amount: "10000", network: "eip155:84532", paymentId: paymentId)

    static func context(_ version: BackendContextSigner.Version = .bound, _ request: RequestBinding = request)
        -> BackendContext
    {
        BackendContextSigner(secret: secret, version: version).bound(to: request)
    }

    @Test func boundMessageCoversMethodHostURIAndLease() {
        #expect(BackendContext.message(version: .bound, request: Self.request, fields: Self.fields, timestamp: Self.now)
            == "x402-context-v2\nGET\napi.example.com\n/weather?city=Paris\n\(Self.payer)\n10000\neip155:84532\n"
            + "\(Self.paymentId)\n\n\n1767225600")
        var leased = Self.fields
        leased.transaction = Self.transaction
        leased.leaseId = Self.jti
        let stream = RequestBinding(method: "GET", host: "api.example.com", uri: "/stream?x402_lease=-")
        #expect(BackendContext.message(version: .bound, request: stream, fields: leased, timestamp: Self.now)
            == "x402-context-v2\nGET\napi.example.com\n/stream?x402_lease=-\n\(Self.payer)\n10000\neip155:84532\n"
            + "\(Self.paymentId)\n\(Self.transaction)\n\(Self.jti)\n1767225600")
        #expect(Self.context(.bound, stream).sign(leased, timestamp: Self.now)
            == "b8c254d01699b6e83cab5af9723a95adc50345b2ecdd11fe32f104e2aacd3dda")
    }

    @Test func legacyMessageIsTheOldFieldList() {
        #expect(BackendContext.message(
            version: .legacy, request: Self.request, fields: Self.fields, timestamp: Self.now)
            == "\(Self.payer)\n10000\neip155:84532\n\(Self.paymentId)\n\n1767225600")
        #expect(Self.context(.legacy).sign(Self.fields, timestamp: Self.now)
            == "f777daa40d3d1593af8d82ba6b55f408adc7c541c6ee151b7d5a10b90ed8d2d8")
        // Nothing of the request is in it: the same signature anywhere (the replay this release ends).
        let elsewhere = RequestBinding(method: "DELETE", host: "other.example", uri: "/admin")
        #expect(Self.context(.legacy, elsewhere).sign(Self.fields, timestamp: Self.now)
            == Self.context(.legacy).sign(Self.fields, timestamp: Self.now))
    }

    @Test func boundSignatureChangesWithEveryPartOfTheRequest() {
        let minted = Self.context().sign(Self.fields, timestamp: Self.now)
        #expect(minted == "d27d9f892850ee1f1c4a11778240dc983d216412d46d3b30d0be6dbcc73372fa")
        let others = [
            RequestBinding(method: "POST", host: "api.example.com", uri: "/weather?city=Paris"),
            RequestBinding(method: "GET", host: "other.example.com", uri: "/weather?city=Paris"),
            RequestBinding(method: "GET", host: "api.example.com", uri: "/weather?city=Rome"),
            RequestBinding(method: "GET", host: "api.example.com", uri: "/admin"),
        ]
        for other in others {
            #expect(Self.context(.bound, other).sign(Self.fields, timestamp: Self.now) != minted, "\(other)")
        }
        var leased = Self.fields
        leased.leaseId = Self.jti
        #expect(Self.context().sign(leased, timestamp: Self.now) != minted)
    }

    /// The host the backend gets from nginx's `$host`: lowercase, no port, no trailing dot.
    @Test(arguments: [
        ("API.Example.com:8443", "api.example.com"), ("127.0.0.1:8402", "127.0.0.1"), ("[::1]:8402", "[::1]"),
        ("[::1]", "[::1]"), ("example.com.", "example.com"), ("Example.COM.:80", "example.com"),
        ("localhost", "localhost"),
    ])
    func signedHostIsNginxHost(given: String, signed: String) {
        #expect(RequestBinding(method: "GET", host: given, uri: "/").signedHost == signed)
    }

    @Test func allowAnswerCarriesTheBoundContext() throws {
        let known = KnownNetwork.find("base-sepolia")!
        let option = try PaymentOption(
            network: known.network, token: known.usdc, payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            amount: "10000", maxTimeoutSeconds: 60)
        let route = RouteRequirements(
            name: "weather", description: "W", mimeType: "application/json", options: [option])
        let signer = PaymentSigner(privateKeyHex: "0x" + String(repeating: "11", count: 32))!
        let header = signer.header(
            paying: option,
            resource: ResourceInfo(url: "https://api.example.com/weather", description: "", mimeType: ""),
            now: Self.now, nonce: Keccak256.hash(Array("context".utf8)))
        let payment = try PaymentVerifier()
            .verify(PresentedPayment(v2Header: header), route: route, now: Self.now).get()
        let grant = Grant(payment: payment, paymentId: Self.paymentId, transaction: Self.transaction)
        let response = DecisionResponse(.allow(grant), backendContext: Self.context(), now: Self.now)
        let fields = BackendContextFields(payer: payment.payer, amount: "10000", network: "eip155:84532",
                                          paymentId: Self.paymentId, transaction: Self.transaction)
        #expect(response.headers.first(name: "X-X402-Signature") == Self.context().sign(fields, timestamp: Self.now))
        #expect(response.headers.first(name: "X-X402-Context-Version") == "2")
        #expect(response.headers.first(name: "X-X402-Timestamp") == "1767225600")
        #expect(response.headers.first(name: "X-X402-Transaction") == Self.transaction)
        let legacy = DecisionResponse(.allow(grant), backendContext: Self.context(.legacy), now: Self.now)
        #expect(legacy.headers.first(name: "X-X402-Signature")
            == Self.context(.legacy).sign(fields, timestamp: Self.now))
        #expect(legacy.headers.first(name: "X-X402-Context-Version") == "1")
        // Without a secret nothing is signed, and no version is claimed.
        let unsigned = DecisionResponse(.allow(grant), now: Self.now)
        #expect(unsigned.headers["X-X402-Signature"].isEmpty && unsigned.headers["X-X402-Context-Version"].isEmpty)
    }

    @Test func leasedAnswerIsBoundToTheLease() {
        let claims = LeaseClaims(
            payer: Self.payer, host: "api.example.com", routes: ["stream"], jti: Self.jti, issuedAt: Self.now,
            notBefore: Self.now, expiresAt: Self.now + 600, leaseRoute: "stream-pass", amount: "10000",
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", network: "eip155:84532", paymentID: Self.paymentId,
            transaction: Self.transaction)
        let stream = RequestBinding(method: "GET", host: "api.example.com", uri: "/stream?x402_lease=-")
        let response = DecisionResponse(.leased(LeaseGrant(claims: claims, slot: nil, requests: 1)),
                                        backendContext: Self.context(.bound, stream), now: Self.now)
        #expect(response.headers.first(name: "X-X402-Lease-Id") == Self.jti)
        #expect(response.headers.first(name: "X-X402-Signature")
            == "b8c254d01699b6e83cab5af9723a95adc50345b2ecdd11fe32f104e2aacd3dda")
        #expect(response.headers.first(name: "X-X402-Context-Version") == "2")
    }

    @Test func signedInAnswerIsBoundToTheRequest() {
        let grant = SignInGrant(payer: Self.payer, paymentId: Self.paymentId, amount: "10000",
                                asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", network: "eip155:84532",
                                expiresAt: Self.now + 600)
        let response = DecisionResponse(.signedIn(grant), backendContext: Self.context(), now: Self.now)
        #expect(response.headers.first(name: "X-X402-Signature")
            == "d27d9f892850ee1f1c4a11778240dc983d216412d46d3b30d0be6dbcc73372fa")
        #expect(response.headers.first(name: "X-X402-Context-Version") == "2")
    }

    @Test func configurationChoosesTheVersion() throws {
        func load(_ backend: String) -> Result<SidecarConfiguration, ConfigurationProblems> {
            ConfigurationLoader.load(yaml: ConfigurationRuleTests.yaml(backend), environment: [:])
        }
        let secret = ConfigurationRuleTests.goodSecret
        #expect(try load("backend: {hmac_secret: \"\(secret)\"}").get().backendContext?.version == .bound)
        let bound = try load("backend: {hmac_secret: \"\(secret)\", context_version: 2}").get()
        #expect(bound.backendContext?.version == .bound && bound.warnings.isEmpty)
        let legacy = try load("backend: {hmac_secret: \"\(secret)\", context_version: 1}").get()
        #expect(legacy.backendContext?.version == .legacy)
        #expect(legacy.warnings.map(\.path) == ["backend.context_version"])
        #expect(legacy.warnings.first?.message.contains("replayed to another path") == true)
        guard case .failure(let problems) = load("backend: {hmac_secret: \"\(secret)\", context_version: v2}") else {
            Issue.record("context_version: v2 was accepted")
            return
        }
        #expect(problems.problems.map(\.path) == ["backend.context_version"])
        #expect(problems.problems.first?.message.contains("must be 2") == true)
    }
}
