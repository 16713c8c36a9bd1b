import Foundation
import Testing

@testable import X402

/// `SIGN-IN-WITH-X` proofs made by the official SDK's client (Tests/Vectors/generate_siwx.py):
/// each must get its exact verdict; our declaration and SIWE message must match the SDK's bytes.
@Suite struct SIWXTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            struct Expect: Decodable {
                var valid: Bool
                var reason: String?
                var payer: String?
            }
            var name: String
            var made: String
            var header: String
            var now: Int64
            var expect: Expect
            /// Present when the route advertises another statement than `expect.statement` (null: none).
            var routeStatement: String??

            enum CodingKeys: String, CodingKey { case name, made, header, now, expect, routeStatement }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                name = try container.decode(String.self, forKey: .name)
                made = try container.decode(String.self, forKey: .made)
                header = try container.decode(String.self, forKey: .header)
                now = try container.decode(Int64.self, forKey: .now)
                expect = try container.decode(Expect.self, forKey: .expect)
                if container.contains(.routeStatement) {
                    routeStatement = .some(try container.decodeIfPresent(String.self, forKey: .routeStatement))
                }
            }
        }
        struct Declaration: Decodable {
            var label: String
            var issued: Int64
            var lifetime: Int64
            var json: String
            var random: String
        }
        var macKeyHex: String
        var maxAgeSeconds: Int64
        var clockSkew: Int64
        var expect: [String: JSONValueBox]
        var declaration: Declaration
        var message: [String: String]
        var cases: [Case]
    }

    /// Strings or string arrays from the fixture's `expect`.
    struct JSONValueBox: Decodable {
        var strings: [String]
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let list = try? container.decode([String].self) {
                strings = list
            } else {
                strings = [try container.decode(String.self)]
            }
        }
    }

    static let fixture: Fixture = {
        let url = Bundle.module.url(forResource: "siwx", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    /// The generator's stand-in MAC: keccak256(key ‖ message).
    static func mac(_ message: [UInt8]) -> [UInt8] {
        Keccak256.hash(Hex.decode("0x" + fixture.macKeyHex)! + message)
    }

    static var resource: SIWXResource {
        let expect = fixture.expect
        return SIWXResource(
            origin: expect["origin"]!.strings[0], pathAndQuery: expect["pathAndQuery"]!.strings[0],
            statement: expect["statement"]!.strings[0], chains: expect["chains"]!.strings.map { SIWXChain(chainId: $0) }
        )
    }

    @Test func fixtureCoversEveryProofReason() {
        let reasons = Set(Self.fixture.cases.compactMap(\.expect.reason))
        let proofReasons = Set(SIWXRefusal.allCases.map(\.rawValue)).subtracting(["siwx_nonce_used", "siwx_not_paid"])
        #expect(reasons == proofReasons)
        #expect(Self.fixture.cases.filter(\.expect.valid).count >= 6)
    }

    @Test(arguments: fixture.cases.map(\.name))
    func officialClientProofVerdict(name: String) {
        let vector = Self.fixture.cases.first { $0.name == name }!
        var resource = Self.resource
        if let statement = vector.routeStatement { resource.statement = statement }
        let expectation = SIWXExpectation(
            resource: resource, now: vector.now, maxAgeSeconds: Self.fixture.maxAgeSeconds,
            clockSkew: Self.fixture.clockSkew)
        switch SIWXVerifier.verify(header: vector.header, expecting: expectation, mac: Self.mac) {
        case .success(let entry):
            #expect(vector.expect.valid, "accepted, but expected \(vector.expect.reason ?? "?")")
            #expect(entry.payer == vector.expect.payer)
            #expect(entry.nonceExpiresAt > vector.now)
        case .failure(let failure):
            #expect(!vector.expect.valid, "refused with \(failure.reason.rawValue): \(failure.message)")
            #expect(failure.reason.rawValue == vector.expect.reason, "\(failure.message)")
        }
    }

    @Test func declarationIsByteIdenticalToTheGenerators() throws {
        let declaration = Self.fixture.declaration
        let challenge = SIWXChallenge.issue(
            for: Self.resource, now: declaration.issued, lifetimeSeconds: declaration.lifetime,
            random: try #require(Hex.decode("0x" + declaration.random)), mac: Self.mac)
        #expect(String(decoding: challenge.declarationJSON, as: UTF8.self) == declaration.json)
        #expect(challenge.nonce.count == 32)
        #expect(
            SIWXChallenge.isIssuedNonce(
                challenge.nonce, issuedAt: challenge.issuedAt, expirationTime: challenge.expirationTime,
                domain: Self.resource.domain, uri: Self.resource.uri, mac: Self.mac))
        #expect(
            !SIWXChallenge.isIssuedNonce(
                challenge.nonce, issuedAt: challenge.issuedAt, expirationTime: nil, domain: Self.resource.domain,
                uri: Self.resource.uri, mac: Self.mac))
    }

    @Test func messageIsByteIdenticalToSiwe() throws {
        let proof = try SIWXProof.decode(header: Self.fixture.message["header"]!).get()
        let chain = try #require(SIWXMessage.eip155ChainNumber(proof.chainId))
        #expect(SIWXMessage.text(for: proof, chainNumber: chain) == Self.fixture.message["text"]!)
    }

    @Test func messageWithoutStatementHasThreeLineBreaks() throws {
        var proof = try SIWXProof.decode(header: Self.fixture.message["header"]!).get()
        proof.statement = nil
        proof.resources = nil
        let text = SIWXMessage.text(for: proof, chainNumber: 84532)
        #expect(text.contains("\(proof.address)\n\n\nURI: "))
        #expect(text.hasSuffix("Expiration Time: \(proof.expirationTime!)"))
    }

    @Test func chainNumbers() {
        #expect(SIWXMessage.eip155ChainNumber("eip155:84532") == 84532)
        #expect(SIWXMessage.eip155ChainNumber("eip155:0") == 0)
        for bad in [
            "eip155:", "eip155:084532", "eip155:-1", "solana:5eykt4", "eip155:1e3", "eip155:99999999999999999999",
        ] {
            #expect(SIWXMessage.eip155ChainNumber(bad) == nil, "\(bad)")
        }
    }

    @Test func rfc3339RoundTripsAndRefusesOtherShapes() {
        for seconds: Int64 in [0, 951_782_400, 1_767_225_600, 1_767_225_600 + 86_399, 4_102_444_800] {
            #expect(RFC3339.parse(RFC3339.format(unixSeconds: seconds)) == seconds)
        }
        #expect(RFC3339.format(unixSeconds: 1_767_225_600) == "2026-01-01T00:00:00.000Z")
        #expect(RFC3339.format(unixSeconds: 951_782_400) == "2000-02-29T00:00:00.000Z")
        #expect(RFC3339.parse("2026-01-01T00:00:00.123456Z") == 1_767_225_600)
        #expect(RFC3339.parse("2026-01-01T01:00:00+01:00") == 1_767_225_600)
        #expect(RFC3339.parse("2025-12-31t19:00:00-05:00") == 1_767_225_600)
        #expect(RFC3339.parse("2026-01-01T00:00:00Z") == 1_767_225_600)
        for bad in [
            "2026-01-01", "2026-01-01T00:00:00", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+0100", "2026-01-01 00:00:00Z", "+2026-01-01T00:00:00Z",
        ] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }
}
