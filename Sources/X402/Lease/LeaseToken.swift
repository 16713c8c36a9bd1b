/// The two JWS algorithms a lease may be signed with.
public enum LeaseAlgorithm: String, Sendable, CaseIterable {
    /// HMAC-SHA256 with a shared secret of at least 32 bytes.
    case hs256 = "HS256"
    /// Ed25519 (RFC 8037).
    case edDSA = "EdDSA"

    /// The signature length the algorithm always produces.
    public var signatureLength: Int { self == .hs256 ? 32 : 64 }
}

/// The keys a token is verified with, by `kid`. The sidecar's `LeaseKeyring` implements it on
/// OpenSSL; the checks here only decide which key and algorithm apply.
public protocol LeaseVerificationKeys {
    /// The algorithm of key `kid`, or nil when there is no such key.
    func algorithm(ofKey kid: String) -> LeaseAlgorithm?
    /// Whether `signature` is valid over `signingInput` (`header.claims`, ASCII) for key `kid`.
    func isValidSignature(_ signature: [UInt8], over signingInput: UnsafeRawBufferPointer, key kid: String) -> Bool
}

/// What the request a lease is presented on must match.
public struct LeaseExpectation: Sendable, Equatable {
    /// The route the request is for (its name in the configuration).
    public var route: String
    /// The client-visible host, normalized (`LeaseClaims.normalizedHost`).
    public var host: String
    /// Unix seconds.
    public var now: Int64
    /// Seconds of tolerance on `nbf` and `exp` for clocks that disagree.
    public var clockSkew: Int64

    public init(route: String, host: String, now: Int64, clockSkew: Int64 = 30) {
        self.route = route
        self.host = host
        self.now = now
        self.clockSkew = clockSkew
    }
}

/// Lease tokens are standard JWTs (RFC 7519) in compact JWS form (RFC 7515): header
/// `{"alg":"HS256"|"EdDSA","typ":"JWT","kid":"…"}`, claims `LeaseClaims`, base64url without
/// padding. Any JWT library verifies them; the checks here are stricter than most.
public enum LeaseToken {
    /// The JOSE header we write.
    public static func header(algorithm: LeaseAlgorithm, keyID: String) -> [UInt8] {
        var writer = JSONWriter(capacity: 64)
        writer.beginObject()
        writer.field("alg", algorithm.rawValue)
        writer.field("typ", "JWT")
        writer.field("kid", keyID)
        writer.endObject()
        return writer.bytes
    }

    /// A key id usable in a token and in the nginx key file: 1–64 of `A–Z a–z 0–9 . _ -`.
    public static func isValidKeyID(_ kid: String) -> Bool {
        (1...64).contains(kid.utf8.count)
            && kid.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            }
    }

    /// Signs `claims`: `sign` receives the signing input and returns the raw signature.
    public static func make(
        claims: LeaseClaims, algorithm: LeaseAlgorithm, keyID: String,
        sign: (UnsafeRawBufferPointer) -> [UInt8]
    ) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(768)
        header(algorithm: algorithm, keyID: keyID).withUnsafeBytes { Base64URL.encode($0, into: &out) }
        out.append(UInt8(ascii: "."))
        claims.json.withUnsafeBytes { Base64URL.encode($0, into: &out) }
        let signature = out.withUnsafeBytes { sign($0) }
        out.append(UInt8(ascii: "."))
        signature.withUnsafeBytes { Base64URL.encode($0, into: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Verifies a token for a request: `authenticate`, then `check`.
    public static func verify(
        _ token: String, keys: some LeaseVerificationKeys, expecting expectation: LeaseExpectation
    ) -> Result<LeaseClaims, LeaseFailure> {
        authenticate(token, keys: keys).flatMap { claims in
            if let failure = check(claims, expecting: expectation) { return .failure(failure) }
            return .success(claims)
        }
    }

    /// Shape, header, key, signature, then claims; ignores time, route and host (renewal and
    /// revocation look at a token that may have expired). Claims are parsed only once the
    /// signature has verified.
    public static func authenticate(
        _ token: String, keys: some LeaseVerificationKeys
    ) -> Result<LeaseClaims, LeaseFailure> {
        guard token.utf8.count <= LeaseLimits.maxTokenBytes else {
            return .failure(LeaseFailure(.malformed, "the token is longer than \(LeaseLimits.maxTokenBytes) bytes"))
        }
        var token = token
        return token.withUTF8 { bytes in authenticate(UnsafeRawBufferPointer(bytes), keys: keys) }
    }

    private static func authenticate(
        _ bytes: UnsafeRawBufferPointer, keys: some LeaseVerificationKeys
    ) -> Result<LeaseClaims, LeaseFailure> {
        func bad(_ why: String) -> Result<LeaseClaims, LeaseFailure> { .failure(LeaseFailure(.malformed, why)) }
        guard let firstDot = bytes.firstIndex(of: UInt8(ascii: ".")),
            let secondDot = bytes[(firstDot + 1)...].firstIndex(of: UInt8(ascii: ".")),
            !bytes[(secondDot + 1)...].contains(UInt8(ascii: ".")),
            firstDot > 0, secondDot > firstDot + 1
        else { return bad("the token is not header.claims.signature") }
        guard let headerJSON = Base64URL.decode(UnsafeRawBufferPointer(rebasing: bytes[..<firstDot])) else {
            return bad("the header is not base64url")
        }
        let algorithm: LeaseAlgorithm, kid: String
        switch parseHeader(headerJSON) {
        case .success(let header): (algorithm, kid) = header
        case .failure(let failure): return .failure(failure)
        }
        guard let keyAlgorithm = keys.algorithm(ofKey: kid) else {
            return .failure(LeaseFailure(.unknownKey, "no lease key has kid \(kid)"))
        }
        guard keyAlgorithm == algorithm else {
            return .failure(
                LeaseFailure(.algorithmMismatch, "key \(kid) is \(keyAlgorithm.rawValue), not \(algorithm.rawValue)"))
        }
        guard let signature = Base64URL.decode(UnsafeRawBufferPointer(rebasing: bytes[(secondDot + 1)...])) else {
            return bad("the signature is not base64url")
        }
        let signingInput = UnsafeRawBufferPointer(rebasing: bytes[..<secondDot])
        guard signature.count == algorithm.signatureLength,
            keys.isValidSignature(signature, over: signingInput, key: kid)
        else { return .failure(LeaseFailure(.badSignature, "the signature does not verify with key \(kid)")) }
        guard let claimsJSON = Base64URL.decode(UnsafeRawBufferPointer(rebasing: bytes[(firstDot + 1)..<secondDot]))
        else { return bad("the claims are not base64url") }
        return LeaseClaims.decode(json: claimsJSON)
    }

    /// alg and kid from the header; refuses anything but `alg`, `typ` (= `JWT`) and `kid`.
    private static func parseHeader(_ json: [UInt8]) -> Result<(LeaseAlgorithm, String), LeaseFailure> {
        func bad(_ why: String) -> Result<(LeaseAlgorithm, String), LeaseFailure> {
            .failure(LeaseFailure(.malformed, why))
        }
        guard case .object(let header)? = try? JSONParser.parse(json, maxDepth: 2) else {
            return bad("the header is not a JSON object")
        }
        guard let alg = header["alg"]?.stringValue else { return bad("the header has no alg") }
        guard let algorithm = LeaseAlgorithm(rawValue: alg) else {
            return .failure(LeaseFailure(.unsupportedAlgorithm, "alg \(alg.prefix(16)) is not HS256 or EdDSA"))
        }
        guard header.keys.allSatisfy({ $0 == "alg" || $0 == "typ" || $0 == "kid" }) else {
            return bad("the header has parameters other than alg, typ and kid")
        }
        if let typ = header["typ"], typ != .string("JWT") { return bad("typ is not JWT") }
        guard let kid = header["kid"]?.stringValue, isValidKeyID(kid) else {
            return bad("the header has no valid kid")
        }
        return .success((algorithm, kid))
    }

    /// The request-dependent checks on authentic claims: time (with skew), host, route.
    public static func check(_ claims: LeaseClaims, expecting expectation: LeaseExpectation) -> LeaseFailure? {
        func failure(_ reason: LeaseRefusal, _ message: String) -> LeaseFailure {
            LeaseFailure(reason, message, jti: claims.jti, payer: claims.payer)
        }
        if expectation.now >= claims.expiresAt + expectation.clockSkew {
            return failure(.expired, "the lease expired at \(claims.expiresAt)")
        }
        if expectation.now + expectation.clockSkew < claims.notBefore {
            return failure(.notYetValid, "the lease is valid from \(claims.notBefore)")
        }
        // Issued in the future by more than the skew: a clock gone wrong or a forged mint time
        // (the module refuses it the same way).
        if expectation.now + expectation.clockSkew < claims.issuedAt {
            return failure(.notYetValid, "the lease was issued at \(claims.issuedAt), in the future")
        }
        if claims.host != expectation.host { return failure(.wrongHost, "the lease is for another host") }
        if !claims.routes.contains(expectation.route) {
            return failure(.wrongRoute, "the lease does not open route \(expectation.route)")
        }
        return nil
    }
}
