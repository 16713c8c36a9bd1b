import Foundation
import Testing
import X402
import X402Sidecar

/// Lease tokens made by PyJWT (Tests/Vectors/generate_leases.py) verified with our keyring on
/// OpenSSL, and tokens we sign checked the same way.
@Suite struct LeaseKeyringTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            struct Expect: Decodable {
                var valid: Bool
                var reason: String?
                var claims: [String: JSONAny]?
            }
            var name: String
            var made: String
            var token: String
            var expect: Expect
        }
        var now: Int64
        var clockSkew: Int64
        var expect: [String: String]
        var signingKeyID: String
        var keyFile: String
        var nginxKeyLines: [String]
        var cases: [Case]
    }

    /// Any JSON value, re-encoded for comparing claims.
    struct JSONAny: Decodable {
        var json: Data
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let int = try? container.decode(Int64.self) {
                json = Data("\(int)".utf8)
            } else if let string = try? container.decode(String.self) {
                json = try JSONEncoder().encode(string)
            } else {
                json = try JSONEncoder().encode(try container.decode([String].self))
            }
        }
    }

    static let fixture: Fixture = {
        let url = Bundle.module.url(forResource: "leases", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    static let keyring = try! LeaseKeyring(keyFile: fixture.keyFile, signingKeyID: fixture.signingKeyID)

    static var expectation: LeaseExpectation {
        LeaseExpectation(
            route: fixture.expect["route"]!, host: fixture.expect["host"]!, now: fixture.now,
            clockSkew: fixture.clockSkew)
    }

    @Test func fixtureCoversEveryTokenReason() {
        let reasons = Set(Self.fixture.cases.compactMap(\.expect.reason))
        let tokenReasons = Set(LeaseRefusal.allCases.map(\.rawValue)).subtracting([
            "lease_revoked", "lease_request_limit", "lease_concurrency_limit",  // store decisions, LeaseStoreTests
            "lease_duplicated",  // two headers, not a token: AuthorizationFlowLeaseTests
        ])
        #expect(tokenReasons == reasons)
        #expect(Self.fixture.cases.filter(\.expect.valid).count >= 8)
    }

    @Test(arguments: fixture.cases.map(\.name))
    func pyJWTTokenVerdict(name: String) throws {
        let vector = Self.fixture.cases.first { $0.name == name }!
        switch Self.keyring.verify(vector.token, expecting: Self.expectation) {
        case .success(let claims):
            #expect(vector.expect.valid, "accepted, but expected \(vector.expect.reason ?? "?")")
            // Our encoding of what we read equals PyJWT's claims, field by field.
            let ours = try #require(try JSONSerialization.jsonObject(with: Data(claims.json)) as? [String: Any])
            let theirs = try #require(vector.expect.claims)
            for (key, value) in theirs where key != "extra" {
                let mine = try JSONSerialization.data(withJSONObject: ours[key] as Any, options: .fragmentsAllowed)
                #expect(String(decoding: mine, as: UTF8.self) == String(decoding: value.json, as: UTF8.self), "\(key)")
            }
            #expect(Set(ours.keys) == Set(theirs.keys).subtracting(["extra"]))
        case .failure(let failure):
            #expect(!vector.expect.valid, "refused with \(failure.reason.rawValue): \(failure.message)")
            #expect(failure.reason.rawValue == vector.expect.reason, "\(failure.message)")
        }
    }

    @Test func nginxKeyFileHasPublicMaterialOnly() {
        let lines = Self.keyring.nginxKeyFile().split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
        #expect(lines == Self.fixture.nginxKeyLines)
    }

    static let claims = LeaseClaims(
        payer: "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf", host: "api.example.com", routes: ["stream"],
        jti: "0123456789abcdef0123456789abcdef", issuedAt: 1_767_225_600, notBefore: 1_767_225_600,
        expiresAt: 1_767_229_200, leaseRoute: "stream-hour", amount: "250000",
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", network: "eip155:84532",
        paymentID: "5f1d2c3b4a5968778695a4b3c2d1e0f0", transaction: nil, maxRequests: 3, maxConcurrent: 1)

    @Test func rotationSignsWithTheCurrentKeyAndVerifiesWithAnyListed() throws {
        let expectation = LeaseExpectation(route: "stream", host: "api.example.com", now: 1_767_226_000)
        let old = try LeaseKeyring(keyFile: Self.fixture.keyFile, signingKeyID: "hs-2025")
        let ed = try LeaseKeyring(keyFile: Self.fixture.keyFile, signingKeyID: "ed-2026")
        for keyring in [Self.keyring, old, ed] {
            let token = keyring.issue(Self.claims)
            #expect(
                token.hasPrefix(
                    Base64URL.encode(
                        LeaseToken.header(
                            algorithm: keyring.signingKeyID.hasPrefix("ed") ? .edDSA : .hs256,
                            keyID: keyring.signingKeyID))))
            for verifier in [Self.keyring, old, ed] {
                #expect(try verifier.verify(token, expecting: expectation).get() == Self.claims)
            }
        }
        // A keyring that dropped the old key no longer accepts its tokens.
        let rotated = try LeaseKeyring(
            keyFile: Self.fixture.keyFile.split(separator: "\n").filter { !$0.hasPrefix("hs-2025") }.joined(
                separator: "\n"))
        #expect(throws: Never.self) {
            try rotated.verify(Self.keyring.issue(Self.claims), expecting: expectation).get()
        }
        guard case .failure(let failure) = rotated.verify(old.issue(Self.claims), expecting: expectation) else {
            Issue.record("a token of a dropped key verified")
            return
        }
        #expect(failure.reason == .unknownKey)
    }

    /// A token verified once is remembered, but every request still checks time, host and route,
    /// and a token that differs in one byte is verified from scratch.
    @Test func rememberedTokensAreStillCheckedPerRequest() throws {
        let keyring = try LeaseKeyring(keyFile: Self.fixture.keyFile, signingKeyID: "hs-2025")
        let token = keyring.issue(Self.claims)
        let during = LeaseExpectation(route: "stream", host: "api.example.com", now: 1_767_226_000, clockSkew: 0)
        #expect(try keyring.verify(token, expecting: during).get() == Self.claims)
        #expect(try keyring.verify(token, expecting: during).get() == Self.claims)
        var after = during
        after.now = Self.claims.expiresAt
        #expect(keyring.verify(token, expecting: after).failureReason == .expired)
        var elsewhere = during
        elsewhere.route = "other"
        #expect(keyring.verify(token, expecting: elsewhere).failureReason == .wrongRoute)
        elsewhere = during
        elsewhere.host = "evil.example.com"
        #expect(keyring.verify(token, expecting: elsewhere).failureReason == .wrongHost)
        var tampered = Array(token.utf8)
        tampered[tampered.count - 2] = tampered[tampered.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(keyring.verify(String(decoding: tampered, as: UTF8.self), expecting: during).failureReason == .badSignature)
        // A keyring without the key (a reload that dropped it) does not share the memory.
        let rotated = try LeaseKeyring(
            keyFile: Self.fixture.keyFile.split(separator: "\n").filter { !$0.hasPrefix("hs-2025") }.joined(
                separator: "\n"))
        #expect(rotated.verify(token, expecting: during).failureReason == .unknownKey)
    }

    @Test func generatedKeysWorkAndRenderInTheNginxFormat() throws {
        let hsLine = LeaseKeyring.generateKeyLine(algorithm: .hs256, keyID: "a")
        let edLine = LeaseKeyring.generateKeyLine(algorithm: .edDSA, keyID: "b")
        let keyring = try LeaseKeyring(keyFile: "\(edLine)\n\(hsLine)\n")
        #expect(keyring.signingKeyID == "b" && keyring.keyIDs == ["b", "a"])
        let expectation = LeaseExpectation(route: "stream", host: "api.example.com", now: 1_767_226_000)
        #expect(try keyring.verify(keyring.issue(Self.claims), expecting: expectation).get() == Self.claims)
        let nginx = keyring.nginxKeyFile().split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(nginx.count == 2 && nginx[0].hasPrefix("b EdDSA ") && nginx[1] == Substring(hsLine))
        let publicKey = try #require(Base64URL.decode(String(nginx[0].split(separator: " ")[2])))
        let seed = try #require(Base64URL.decode(String(edLine.split(separator: " ")[2])))
        #expect(publicKey.count == 32 && publicKey == OpenSSL.Ed25519PrivateKey(seed: seed)?.publicKey)
    }

    @Test func badKeyFilesAreRefusedWithTheirLine() {
        let secret = Base64URL.encode([UInt8](repeating: 7, count: 32))
        let cases: [(String, String)] = [
            ("", "at least one key"),
            ("a HS256 \(Base64URL.encode([UInt8](repeating: 7, count: 31)))", "32 is the minimum"),
            ("a HS384 \(secret)", "line 1: algorithm"),
            ("# c\na HS256 \(secret)=", "line 2: the key of a"),
            ("a EdDSA \(secret)x", "line 1"),
            ("a EdDSA \(Base64URL.encode([1, 2, 3]))", "32-byte seed"),
            ("a HS256 \(secret)\na HS256 \(secret)", "listed twice"),
            ("a/b HS256 \(secret)", "key id"),
            ("a HS256", "expected KID ALG KEY"),
        ]
        for (text, message) in cases {
            #expect { try LeaseKeyring(keyFile: text) } throws: { error in
                (error as? LeaseKeyError)?.description.contains(message) == true
            }
        }
        #expect(throws: LeaseKeyError.self) { try LeaseKeyring(keyFile: "a HS256 \(secret)", signingKeyID: "b") }
    }
}

extension Result where Failure == LeaseFailure {
    fileprivate var failureReason: LeaseRefusal? {
        if case .failure(let failure) = self { return failure.reason }
        return nil
    }
}
