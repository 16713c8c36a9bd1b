import Testing

@testable import X402

/// The pure lease-token format: base64url, claims JSON, header rules and request checks, with a
/// stand-in signature (Keccak-256 of the signing input) so no crypto library is involved. The real
/// keys and PyJWT-made tokens are tested in X402SidecarTests/LeaseKeyringTests.swift.
@Suite struct LeaseTokenTests {
    /// "Signs" with Keccak-256(kid ‖ input), truncated to the algorithm's length.
    struct StubKeys: LeaseVerificationKeys {
        var keys: [String: LeaseAlgorithm] = ["hs": .hs256, "ed": .edDSA]

        func algorithm(ofKey kid: String) -> LeaseAlgorithm? { keys[kid] }

        func isValidSignature(_ signature: [UInt8], over signingInput: UnsafeRawBufferPointer, key kid: String) -> Bool
        {
            signature == Self.sign(signingInput, kid: kid, algorithm: keys[kid]!)
        }

        static func sign(_ input: UnsafeRawBufferPointer, kid: String, algorithm: LeaseAlgorithm) -> [UInt8] {
            let hash = Keccak256.hash(Array(kid.utf8) + Array(input))
            return Array((hash + hash).prefix(algorithm.signatureLength))
        }
    }

    static let claims = LeaseClaims(
        payer: "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf", host: "api.example.com", routes: ["stream", "socket"],
        jti: "0123456789abcdef0123456789abcdef", issuedAt: 1_767_225_600, notBefore: 1_767_225_600,
        expiresAt: 1_767_229_200, leaseRoute: "stream-hour", amount: "250000",
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", network: "eip155:84532",
        paymentID: "5f1d2c3b4a5968778695a4b3c2d1e0f0")

    static func token(_ claims: LeaseClaims = claims, kid: String = "hs", algorithm: LeaseAlgorithm = .hs256) -> String
    {
        LeaseToken.make(claims: claims, algorithm: algorithm, keyID: kid) {
            StubKeys.sign($0, kid: kid, algorithm: algorithm)
        }
    }

    static let expectation = LeaseExpectation(
        route: "stream", host: "api.example.com", now: 1_767_226_000, clockSkew: 30)

    @Test func base64URLRoundTripsEveryLengthAndRefusesOtherSpellings() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Base64URL.decode(encoded) == bytes)
        }
        #expect(Base64URL.encode(Array("\u{FB}\u{FF}".utf8)) == "w7vDvw")
        #expect(Base64URL.decode("-_-_") == [0xFB, 0xFF, 0xBF])
        for bad in ["A", "AB==", "AB=", "+/+/", "AB C", "AB\n", "AR", "ABD", "A!"] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
    }

    @Test func claimsRoundTripThroughJSONInTheFixedOrder() throws {
        var full = Self.claims
        full.transaction = "0x" + String(repeating: "ab", count: 32)
        full.maxRequests = 100
        full.maxConcurrent = 2
        for claims in [Self.claims, full] {
            #expect(try LeaseClaims.decode(json: claims.json).get() == claims)
        }
        let text = String(decoding: Self.claims.json, as: UTF8.self)
        let head = #"{"iss":"x402-nginx","sub":"0x7e5f4552091a69125d5dfcb7b8c2659029395bdf","aud":"api.example.com","#
        #expect(text.hasPrefix(head + #""jti":"0123456789abcdef0123456789abcdef","iat":1767225600,"#))
        #expect(text.hasSuffix(#""x402_payment_id":"5f1d2c3b4a5968778695a4b3c2d1e0f0"}"#))
    }

    @Test func roundTripsWithBothAlgorithms() throws {
        for (kid, algorithm) in [("hs", LeaseAlgorithm.hs256), ("ed", .edDSA)] {
            let token = Self.token(kid: kid, algorithm: algorithm)
            #expect(try LeaseToken.verify(token, keys: StubKeys(), expecting: Self.expectation).get() == Self.claims)
            let header = try #require(Base64URL.decode(String(token.split(separator: ".")[0])))
            #expect(
                String(decoding: header, as: UTF8.self)
                    == #"{"alg":"\#(algorithm.rawValue)","typ":"JWT","kid":"\#(kid)"}"#)
        }
    }

    @Test func requestChecksGiveTheirOwnReasons() {
        func reason(_ change: (inout LeaseExpectation) -> Void) -> LeaseRefusal? {
            var expectation = Self.expectation
            change(&expectation)
            if case .failure(let failure) = LeaseToken.verify(Self.token(), keys: StubKeys(), expecting: expectation) {
                #expect(failure.jti == Self.claims.jti && failure.payer == Self.claims.payer)
                return failure.reason
            }
            return nil
        }
        #expect(reason { _ in } == nil)
        #expect(reason { $0.now = Self.claims.expiresAt + 29 } == nil)
        #expect(reason { $0.now = Self.claims.expiresAt + 30 } == .expired)
        #expect(
            reason {
                $0.now = Self.claims.expiresAt; $0.clockSkew = 0
            } == .expired)
        #expect(reason { $0.now = Self.claims.notBefore - 30 } == nil)
        #expect(reason { $0.now = Self.claims.notBefore - 31 } == .notYetValid)
        #expect(reason { $0.route = "other" } == .wrongRoute)
        #expect(reason { $0.route = "socket" } == nil)
        #expect(reason { $0.host = "evil.example.com" } == .wrongHost)
    }

    @Test func aTokenIssuedInTheFutureIsNotYetValid() {
        var claims = Self.claims
        claims.issuedAt = claims.notBefore + 100
        func reason(at now: Int64) -> LeaseRefusal? {
            var expectation = Self.expectation
            expectation.now = now
            if case .failure(let failure) = LeaseToken.verify(Self.token(claims), keys: StubKeys(), expecting: expectation) {
                return failure.reason
            }
            return nil
        }
        #expect(reason(at: claims.issuedAt - 31) == .notYetValid)  // nbf passed, iat still ahead beyond the skew
        #expect(reason(at: claims.issuedAt - 30) == nil)
    }

    @Test func keyAndHeaderRules() {
        func reason(_ token: String, keys: StubKeys = StubKeys()) -> LeaseRefusal? {
            if case .failure(let failure) = LeaseToken.authenticate(token, keys: keys) { return failure.reason }
            return nil
        }
        #expect(reason(Self.token(kid: "gone")) == .unknownKey)
        #expect(reason(Self.token(kid: "ed", algorithm: .hs256)) == .algorithmMismatch)
        #expect(reason(Self.token(kid: "hs", algorithm: .edDSA)) == .algorithmMismatch)
        let parts = Self.token().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        func withHeader(_ json: String) -> String {
            Base64URL.encode(Array(json.utf8)) + "." + parts[1] + "." + parts[2]
        }
        #expect(reason(withHeader(#"{"alg":"HS256","typ":"JWT","kid":"hs"}"#)) == nil)
        // Another spelling of the header parses, but the signature covers the header's bytes.
        #expect(reason(withHeader(#"{"kid":"hs","alg":"HS256"}"#)) == .badSignature)
        #expect(reason(withHeader(#"{"alg":"none","kid":"hs"}"#)) == .unsupportedAlgorithm)
        #expect(reason(withHeader(#"{"alg":"RS256","kid":"hs"}"#)) == .unsupportedAlgorithm)
        #expect(reason(withHeader(#"{"alg":"HS256","kid":"hs","crit":["exp"]}"#)) == .malformed)
        #expect(reason(withHeader(#"{"alg":"HS256","kid":"hs","typ":"jwt"}"#)) == .malformed)
        #expect(reason(withHeader(#"{"alg":"HS256"}"#)) == .malformed)
        #expect(reason(withHeader(#"{"alg":"HS256","kid":""}"#)) == .malformed)
        #expect(reason(withHeader(#"{"alg":["HS256"],"kid":"hs"}"#)) == .malformed)
        #expect(reason(parts[0] + "." + parts[1] + "." + parts[2] + "x") == .badSignature)  // 33 bytes
        #expect(reason(parts[0] + "." + parts[1] + "." + parts[2] + "xx") == .malformed)  // 45 chars
        #expect(reason(parts[0] + ".." + parts[2]) == .malformed)
        #expect(reason(String(repeating: "a", count: LeaseLimits.maxTokenBytes + 1)) == .malformed)
    }

    @Test func normalizedHosts() {
        #expect(LeaseClaims.normalizedHost("API.Example.com:8443") == "api.example.com")
        #expect(LeaseClaims.normalizedHost("api.example.com") == "api.example.com")
        #expect(LeaseClaims.normalizedHost("127.0.0.1:8402") == "127.0.0.1")
        #expect(LeaseClaims.normalizedHost("[::1]:80") == "[::1]")
        #expect(LeaseClaims.normalizedHost("[::1]") == "[::1]")
        for bad in [
            "", ":80", "api.example.com:", "api.example.com:8x", "a b", "evil.com/x", "[::1", "[zz]", "user@host",
        ] {
            #expect(LeaseClaims.normalizedHost(bad) == nil, "\(bad)")
        }
    }
}
