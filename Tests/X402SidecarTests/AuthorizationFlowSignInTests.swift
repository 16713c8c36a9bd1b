import Testing
import X402
@testable import X402Sidecar

/// The Sign-In-With-X steps of `AuthorizationFlow`, with a proof the official SDK made
/// (Tests/Vectors/generate_siwx.py, case "official": api.example.com, 2026-01-01T00:00:00Z; its nonce
/// MAC is the fixture's Keccak-256 of key and message).
@Suite struct AuthorizationFlowSignInTests {
    static let header = "eyJkb21haW4iOiAiYXBpLmV4YW1wbGUuY29tIiwgImFkZHJlc3MiOiAiMHg3RTVGNDU1MjA5MUE2OTEyNWQ1RGZDYjdiOEMyNjU5MDI5Mzk1QmRmIiwgInVyaSI6ICJodHRwczovL2FwaS5leGFtcGxlLmNvbS93ZWF0aGVyP2NpdHk9UGFyaXMiLCAidmVyc2lvbiI6ICIxIiwgImNoYWluSWQiOiAiZWlwMTU1Ojg0NTMyIiwgInR5cGUiOiAiZWlwMTkxIiwgIm5vbmNlIjogIjY4OTYxOTFhMTRmNmM2NjUwNjYwOTAyMDQ0NTViZmRlIiwgImlzc3VlZEF0IjogIjIwMjYtMDEtMDFUMDA6MDA6MDAuMDAwWiIsICJzdGF0ZW1lbnQiOiAiU2lnbiBpbiB0byByZWFjaCBwYWlkIHJvdXRlcyB5b3UgYWxyZWFkeSBib3VnaHQiLCAiZXhwaXJhdGlvblRpbWUiOiAiMjAyNi0wMS0wMVQwMDoxMDowMC4wMDBaIiwgInJlc291cmNlcyI6IFsiaHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20vd2VhdGhlcj9jaXR5PVBhcmlzIl0sICJzaWduYXR1cmUiOiAiMHgxYWJkZjllMDAwMTQwMGQ3NzdjMWRmNWFiZGVhZTA4Y2VlOGViYTM5MzdhOWI5NmNkODU5MTMyYWFhNjY4NGMzNDgwYWE4MTVjNTIzOGYzMTM1ZGJiYzQ3YmFmZDdkMGQ2MTc1ZDUwYTczM2RhZDVmOGFkOGZhYThmNTY4M2EwODFjIn0="
    static let macKey = Array("x402-nginx siwx fixture nonce key".utf8)
    static let now: Int64 = 1_767_225_600 + 10
    static let payer = "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"

    static let route: RouteRequirements = {
        let options = ["base-sepolia", "base"].map { name in
            let known = KnownNetwork.find(name)!
            return try! PaymentOption(network: known.network, token: known.usdc, payTo: AuthServerTests.payTo,
                                      amount: "10000", maxTimeoutSeconds: 60)
        }
        return RouteRequirements(name: "weather", description: "Weather", mimeType: "application/json", options: options)
    }()

    static func policy() -> AuthorizationPolicy {
        let settings = SignInRouteSettings(accessSeconds: 600, proofLifetimeSeconds: 600,
                                           statement: "Sign in to reach paid routes you already bought")
        return AuthorizationPolicy(
            routes: ["weather": route], verifier: PaymentVerifier(),
            signIn: SignInSettings(nonceKey: SIWXNonceKey(mac: { Keccak256.hash(macKey + $0) }), routes: ["weather": settings]),
            now: { now })
    }

    static func request(proof: String? = header) -> AuthorizeRequest {
        var request = AuthorizeRequest(route: "weather", uri: "/weather?city=Paris", scheme: "https",
                                       host: "api.example.com")
        request.signInProof = proof
        return request
    }

    static func access(amount: String = "10000", expiresAt: Int64 = now + 60) -> PaidAccess {
        PaidAccess(payer: payer, route: "weather", host: "api.example.com", amount: amount,
                   asset: KnownNetwork.find("base-sepolia")!.usdc.address.lowercased(), network: "eip155:84532",
                   paymentID: "p1", expiresAt: expiresAt)
    }

    /// Runs a proof up to the paid-access lookup.
    static func signedProof() -> AuthorizationFlow {
        var flow = AuthorizationFlow(request(), policy: policy())
        let first = flow.start()
        guard case .consumeSignInNonce(let nonce, _) = first else { preconditionFailure("the proof must verify: \(first)") }
        #expect(nonce == "6896191a14f6c665066090204455bfde")
        guard case .findPaidAccess(let who, let route, let host) = flow.receive(.signInNonceConsumed(.success(true))) else {
            preconditionFailure("a consumed nonce goes on to the paid-access lookup")
        }
        #expect(who == payer && route == "weather" && host == "api.example.com")
        return flow
    }

    @Test func aWalletThatPaidIsLetIn() {
        var flow = Self.signedProof()
        #expect(AuthorizationFlowTests.decision(flow.receive(.paidAccessFound(.success(Self.access()))))
                == .signedIn(SignInGrant(payer: Self.payer, paymentId: "p1", amount: "10000",
                                         asset: Self.access().asset, network: "eip155:84532", expiresAt: Self.now + 60)))
    }

    @Test func notPaidUnderpaidReplayedOrStoreDown() {
        func reason(_ action: AuthorizationFlow.Action) -> String? {
            if case .respond(.signInRefused(let reason, _, _)) = action { return reason }
            return nil
        }
        var none = Self.signedProof()
        #expect(reason(none.receive(.paidAccessFound(.success(nil)))) == "siwx_not_paid")
        var cheaper = Self.signedProof()
        #expect(reason(cheaper.receive(.paidAccessFound(.success(Self.access(amount: "9999"))))) == "siwx_not_paid")
        var replay = AuthorizationFlow(Self.request(), policy: Self.policy())
        _ = replay.start()
        #expect(reason(replay.receive(.signInNonceConsumed(.success(false)))) == "siwx_nonce_used")
        var down = Self.signedProof()
        #expect(AuthorizationFlowTests.decision(down.receive(.paidAccessFound(.failure(AuthorizationFlowTests.Failure()))))
                == .unavailable(reason: "sign-in store unavailable", retryAfter: 5))
    }

    @Test func badProofsAreRefusedInProcessWithAFreshChallenge() {
        var wrongHost = Self.request()
        wrongHost.host = "evil.example.com"
        var flow = AuthorizationFlow(wrongHost, policy: Self.policy())
        guard case .respond(.signInRefused(let reason, _, let challenge)) = flow.start() else {
            Issue.record("a proof for another domain must be refused")
            return
        }
        #expect(reason == "siwx_wrong_domain")
        // The challenge declares the extension for the client-visible origin, with a fresh nonce.
        let v2 = String(decoding: Base64.decode(challenge.paymentRequiredHeader) ?? [], as: UTF8.self)
        #expect(v2.contains(#""sign-in-with-x":{"info":{"domain":"evil.example.com""#))
        var garbage = AuthorizationFlow(Self.request(proof: "not a proof"), policy: Self.policy())
        guard case .respond(.signInRefused("siwx_malformed", _, _)) = garbage.start() else {
            Issue.record("garbage must be siwx_malformed")
            return
        }
    }
}
