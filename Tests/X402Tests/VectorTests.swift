import Foundation
import Testing
@testable import X402

/// Payloads signed by the official x402 Python SDK (Tests/Vectors/generate.py): every case's
/// verdict and reason must match what the generator expects.
@Suite struct VectorTests {
    struct Fixture: Decodable {
        struct Server: Decodable {
            var network: String
            var v1Network: String
            var chainId: UInt64
            var asset: String
            var payTo: String
            var amount: String
            var maxTimeoutSeconds: Int
            var extra: [String: String]
            var resource: [String: String]
        }
        struct Case: Decodable {
            struct Expect: Decodable {
                var valid: Bool
                var reason: String?
                var payer: String?
                var version: Int?
            }
            var name: String
            var headers: [String: String]
            var expect: Expect
            var eip712: [String: String]?
        }
        var now: Int64
        var server: Server
        var cases: [Case]
    }

    static let fixture: Fixture = {
        let url = Bundle.module.url(forResource: "vectors", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    static func route(_ server: Fixture.Server) throws -> RouteRequirements {
        let token = TokenInfo(
            address: server.asset, eip712Name: server.extra["name"]!, eip712Version: server.extra["version"]!,
            decimals: 6, symbol: "USDC")
        let option = try PaymentOption(
            network: Network(chainId: server.chainId, v1Name: server.v1Network), token: token, payTo: server.payTo,
            amount: server.amount, maxTimeoutSeconds: server.maxTimeoutSeconds)
        #expect(option.network.caip2 == server.network)
        return RouteRequirements(
            name: "vectors", description: server.resource["description"] ?? "", mimeType: "application/json",
            options: [option])
    }

    @Test func fixtureCoversEveryReasonAndEnoughInvalidCases() {
        let cases = Self.fixture.cases
        let invalid = cases.filter { !$0.expect.valid }
        #expect(invalid.count >= 25)
        let reasons = Set(invalid.compactMap(\.expect.reason))
        let local: Set<String> = [
            "invalid_payload", "invalid_x402_version", "unsupported_scheme", "network_mismatch",
            "invalid_exact_evm_payload_recipient_mismatch", "invalid_exact_evm_payload_authorization_value_mismatch",
            "invalid_exact_evm_payload_authorization_valid_before", "invalid_exact_evm_payload_authorization_valid_after",
            "invalid_exact_evm_payload_signature",
        ]
        #expect(local.isSubset(of: reasons), "missing: \(local.subtracting(reasons))")
    }

    @Test(arguments: fixture.cases.map(\.name))
    func verdictMatches(name: String) throws {
        let fixture = Self.fixture
        let vector = fixture.cases.first { $0.name == name }!
        let route = try Self.route(fixture.server)
        let presented = PresentedPayment(v2Header: vector.headers["PAYMENT-SIGNATURE"], v1Header: vector.headers["X-PAYMENT"])
        let result = PaymentVerifier().verify(presented, route: route, now: fixture.now)
        switch result {
        case .success(let payment):
            #expect(vector.expect.valid, "accepted, but expected \(vector.expect.reason ?? "?")")
            if let payer = vector.expect.payer { #expect(payment.payer == payer.lowercased()) }
            if let version = vector.expect.version { #expect(payment.version == version) }
            #expect(payment.nonceKey.network == fixture.server.network)
        case .failure(let failure):
            #expect(!vector.expect.valid, "refused with \(failure.reason.rawValue): \(failure.message)")
            #expect(failure.reason.rawValue == vector.expect.reason, "\(failure.message)")
        }
    }

    /// A nonce key the caller already knows as used is refused before the signature is recovered
    /// (replays cost a lookup), and only ever refused: what it would otherwise accept or refuse
    /// for another reason is untouched.
    @Test func knownUsedKeysAreRefusedBeforeRecovery() throws {
        let fixture = Self.fixture
        let route = try Self.route(fixture.server)
        var checked = 0
        for vector in fixture.cases {
            let presented = PresentedPayment(v2Header: vector.headers["PAYMENT-SIGNATURE"], v1Header: vector.headers["X-PAYMENT"])
            let plain = PaymentVerifier().verify(presented, route: route, now: fixture.now)
            var asked: [NonceKey] = []
            let used = PaymentVerifier().verify(presented, route: route, now: fixture.now, alreadyUsed: {
                asked.append($0)
                return true
            })
            switch (plain, used) {
            case (.success(let payment), .failure(let failure)):
                #expect(failure.reason == .nonceAlreadyUsed, "\(vector.name)")
                #expect(asked == [payment.nonceKey], "\(vector.name)")
                checked += 1
            case (.failure(let first), .failure(let second)):
                // Refused anyway: either for the same reason (found before the lookup), or as used
                // where only the signature was wrong (the lookup comes before the recovery).
                #expect(first.reason == second.reason
                    || (second.reason == .nonceAlreadyUsed && first.reason == .invalidSignature), "\(vector.name)")
            default:
                Issue.record("\(vector.name): a known-used key must never turn a refusal into an acceptance")
            }
            let unknown = PaymentVerifier().verify(presented, route: route, now: fixture.now, alreadyUsed: { _ in false })
            #expect(unknown == plain, "\(vector.name)")
        }
        #expect(checked == fixture.cases.filter(\.expect.valid).count)
    }

    @Test(arguments: fixture.cases.filter { $0.eip712 != nil && $0.expect.valid }.map(\.name))
    func eip712HashesMatchTheSDK(name: String) throws {
        let fixture = Self.fixture
        let vector = fixture.cases.first { $0.name == name }!
        let route = try Self.route(fixture.server)
        let header = vector.headers["PAYMENT-SIGNATURE"] ?? vector.headers["X-PAYMENT"]!
        let payload = try PaymentPayload.decode(header: header, expectedVersion: vector.headers["PAYMENT-SIGNATURE"] != nil ? 2 : 1).get()
        let (authorization, _) = try payload.exactEVMFields().get()
        let option = route.options[0]
        #expect(Hex.encode(option.domainSeparator) == vector.eip712?["domainSeparator"]?.lowercased())
        let structHash = EIP712.transferWithAuthorizationHash(
            from: Hex.decode(authorization.from, byteCount: 20)!, to: Hex.decode(authorization.to, byteCount: 20)!,
            value: Amount.uint256(authorization.value)!, validAfter: Amount.uint256(authorization.validAfter)!,
            validBefore: Amount.uint256(authorization.validBefore)!, nonce: Hex.decode(authorization.nonce, byteCount: 32)!)
        #expect(Hex.encode(structHash) == vector.eip712?["structHash"]?.lowercased())
        #expect(
            Hex.encode(EIP712.digest(domainSeparator: option.domainSeparator, structHash: structHash))
                == vector.eip712?["digest"]?.lowercased())
    }
}

@Suite struct KeccakFixtureTests {
    struct Vectors: Decodable {
        struct Vector: Decodable {
            var inputHex: String
            var hash: String
        }
        var vectors: [Vector]
    }

    @Test func matchesReferenceImplementationAcrossRateBoundaries() throws {
        let url = try #require(Bundle.module.url(forResource: "keccak", withExtension: "json", subdirectory: "Fixtures"))
        let vectors = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url)).vectors
        let lengths = Set(vectors.map { ($0.inputHex.count - ($0.inputHex.hasPrefix("0x") ? 2 : 0)) / 2 })
        #expect(lengths.isSuperset(of: [0, 135, 136, 137, 272]))
        for vector in vectors {
            let hex = vector.inputHex.hasPrefix("0x") ? vector.inputHex : "0x" + vector.inputHex
            let input = try #require(Hex.decode(hex))
            #expect(Hex.encode(Keccak256.hash(input)) == vector.hash.lowercased(), "length \(input.count)")
        }
    }
}

/// `verify: facilitator`: everything that binds the payment to the route is still checked
/// locally; only the signature is left to the facilitator.
@Suite struct SignatureLeftToFacilitatorTests {
    @Test func smartWalletSignatureShapesPassOnlyWithoutLocalSignatureCheck() throws {
        let fixture = VectorTests.fixture
        let route = try VectorTests.route(fixture.server)
        let valid = try #require(fixture.cases.first { $0.expect.valid && $0.headers["PAYMENT-SIGNATURE"] != nil })
        var document = try #require(
            try JSONParser.parse(Base64.decode(valid.headers["PAYMENT-SIGNATURE"]!)!, maxDepth: 16).objectValue)
        guard case .object(var payload)? = document["payload"] else {
            Issue.record("no payload object")
            return
        }
        // An ERC-6492-wrapped signature is far longer than 65 bytes.
        payload["signature"] = .string("0x" + String(repeating: "ab", count: 300))
        document["payload"] = .object(payload)
        var json = JSONWriter()
        json.value(.object(document))
        let presented = PresentedPayment(v2Header: Base64.encode(json.bytes))

        let local = PaymentVerifier().verify(presented, route: route, now: fixture.now)
        guard case .failure(let failure) = local else { Issue.record("accepted without a signature check"); return }
        #expect(failure.reason == .invalidSignature)

        var delegating = PaymentVerifier()
        delegating.checksSignature = false
        guard case .success(let payment) = delegating.verify(presented, route: route, now: fixture.now) else {
            Issue.record("refused although only the signature differs")
            return
        }
        #expect(payment.payer == valid.expect.payer?.lowercased())

        // The route binding still holds: a wrong recipient is refused without any signature check.
        var wrong = document
        guard case .object(var p)? = wrong["payload"], case .object(var auth)? = p["authorization"] else { return }
        auth["to"] = .string("0x000000000000000000000000000000000000bEEF")
        p["authorization"] = .object(auth)
        wrong["payload"] = .object(p)
        var wrongJSON = JSONWriter()
        wrongJSON.value(.object(wrong))
        let refused = delegating.verify(PresentedPayment(v2Header: Base64.encode(wrongJSON.bytes)), route: route,
                                        now: fixture.now)
        guard case .failure(let reason) = refused else { Issue.record("wrong payTo accepted"); return }
        #expect(reason.reason == .recipientMismatch)
    }
}
