import FuzzSupport
import X402

/// Lease tokens (compact JWS): shape, header, key and signature checks, then the claims.
///
/// Signatures are not what is fuzzed here (OpenSSL checks them in the sidecar): the keyring below
/// holds one key per algorithm and accepts any signature of the right length, so mutated claims
/// reach the claims parser. It still checks that the signing input is exactly `header.claims`.
///
/// Mode byte: bit 0 set sends the body as the token text; clear reads it as `header JSON` `\n`
/// `claims JSON` `\n` `signature bytes` and base64url-encodes each part, so mutations land in JSON.
final class AnySignatureKeys: LeaseVerificationKeys {
    let token: [UInt8]
    /// The key whose signature was accepted, for re-signing the claims the same way.
    private(set) var verifiedKey: String?

    init(token: [UInt8]) { self.token = token }

    func algorithm(ofKey kid: String) -> LeaseAlgorithm? {
        switch kid {
        case "hs-2026": .hs256
        case "ed-2026": .edDSA
        default: nil
        }
    }

    func isValidSignature(_ signature: [UInt8], over signingInput: UnsafeRawBufferPointer, key kid: String) -> Bool {
        let dots = token.indices.filter { token[$0] == UInt8(ascii: ".") }
        require(dots.count == 2 && Array(signingInput) == Array(token[..<dots[1]]), "signed input is not header.claims")
        require(signature.count == algorithm(ofKey: kid)?.signatureLength, "signature length not checked first")
        verifiedKey = kid
        return true
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let token: String
    if input.mode & 1 == 1 {
        token = input.text
    } else {
        let parts = input.body.split(separator: UInt8(ascii: "\n"), maxSplits: 2, omittingEmptySubsequences: false)
        token = parts.map { Base64URL.encode(Array($0)) }.joined(separator: ".")
    }
    let keys = AnySignatureKeys(token: Array(token.utf8))
    switch LeaseToken.authenticate(token, keys: keys) {
    case .failure(let failure):
        require(!failure.message.isEmpty, "a refusal without a message")
        // Only the store's checks name the lease; authentication never echoes unverified claims.
        require(failure.jti == nil && failure.payer == nil, "an authentication refusal names the lease")
        require(
            [.malformed, .unsupportedAlgorithm, .unknownKey, .algorithmMismatch, .badSignature, .wrongIssuer]
                .contains(failure.reason), "authentication refused with \(failure.reason)")
    case .success(let claims):
        guard let kid = keys.verifiedKey else {
            require(false, "accepted without a signature check")
            return 0
        }
        checkAuthentic(claims, token: token, kid: kid)
    }
    return 0
}

/// Authentic claims: they encode back to themselves, and a request inside them is let through.
func checkAuthentic(_ claims: LeaseClaims, token: String, kid: String) {
    require(token.utf8.count <= LeaseLimits.maxTokenBytes, "accepted a token over the size limit")
    require(claims.notBefore < claims.expiresAt, "nbf is not before exp")
    require(!claims.routes.isEmpty && claims.routes.count <= LeaseLimits.maxRoutes, "bad x402_routes count")
    require(LeaseClaims.normalizedHost(claims.host) == claims.host, "aud is not a normalized host")
    require(LeaseClaims.decode(json: claims.json) == .success(claims), "the claims do not survive encoding")
    let algorithm: LeaseAlgorithm = kid == "ed-2026" ? .edDSA : .hs256
    let reissued = LeaseToken.make(claims: claims, algorithm: algorithm, keyID: kid) { _ in
        [UInt8](repeating: 7, count: algorithm.signatureLength)
    }
    let keys = AnySignatureKeys(token: Array(reissued.utf8))
    if reissued.utf8.count <= LeaseLimits.maxTokenBytes {
        require(LeaseToken.authenticate(reissued, keys: keys) == .success(claims), "a reissued token differs")
    }
    // Valid from nbf, and not before its own issue time (iat) either, until exp.
    let start = max(claims.notBefore, claims.issuedAt)
    if start < claims.expiresAt {
        let inside = LeaseExpectation(route: claims.routes[0], host: claims.host, now: start)
        let verdict = LeaseToken.check(claims, expecting: inside)
        require(verdict == nil, "a request inside the lease is refused: \(String(describing: verdict))")
    }
    var late = LeaseExpectation(route: claims.routes[0], host: claims.host, now: 0)
    late.now = claims.expiresAt + late.clockSkew
    require(LeaseToken.check(claims, expecting: late)?.reason == .expired, "a request after exp + skew is served")
}

@main
enum FuzzLease {
    static func main() { runFuzzer(testOneInput) }
}
