/// What a proof must match for one request.
public struct SIWXExpectation: Sendable, Equatable {
    /// What this route advertises for this request (origin, URI, statement, chains).
    public var resource: SIWXResource
    /// Unix seconds.
    public var now: Int64
    /// Oldest accepted `issuedAt`, in seconds (the SDK's 5 minutes by default).
    public var maxAgeSeconds: Int64
    /// Tolerance for an `issuedAt`/`notBefore` slightly ahead of this clock.
    public var clockSkew: Int64

    public init(
        resource: SIWXResource, now: Int64, maxAgeSeconds: Int64 = SIWXLimits.defaultMaxAgeSeconds,
        clockSkew: Int64 = 30
    ) {
        self.resource = resource
        self.now = now
        self.maxAgeSeconds = maxAgeSeconds
        self.clockSkew = clockSkew
    }
}

/// An authentic proof: who signed, and the nonce the store must now consume exactly once.
public struct SIWXEntry: Sendable, Equatable {
    /// The wallet, lowercase `0x` address.
    public var payer: String
    public var nonce: String
    public var chainId: String
    /// Until when the consumed nonce must be remembered: after that the proof is stale anyway.
    public var nonceExpiresAt: Int64
}

/// Verifies `SIGN-IN-WITH-X` proofs (EVM, EIP-191 personal-sign by an EOA). Pure: the nonce
/// consumption and the paid-access lookup are the store's (`siwx_nonce_used`, `siwx_not_paid`).
public enum SIWXVerifier {
    /// Decodes and verifies a header value. Checks, first failure wins: shape → chain → domain →
    /// URI → echo of version/statement/resources → issuedAt age → expirationTime → notBefore →
    /// nonce issued by us → signature recovers to `address`.
    public static func verify(
        header: String, expecting expectation: SIWXExpectation, mac: ([UInt8]) -> [UInt8]
    ) -> Result<SIWXEntry, SIWXFailure> {
        SIWXProof.decode(header: header).flatMap { verify($0, expecting: expectation, mac: mac) }
    }

    /// Verifies a decoded proof (see `verify(header:expecting:mac:)`).
    public static func verify(
        _ proof: SIWXProof, expecting expectation: SIWXExpectation, mac: ([UInt8]) -> [UInt8]
    ) -> Result<SIWXEntry, SIWXFailure> {
        func refuse(_ reason: SIWXRefusal, _ message: String) -> Result<SIWXEntry, SIWXFailure> {
            .failure(SIWXFailure(reason, message))
        }
        let resource = expectation.resource
        guard proof.type == "eip191", proof.signatureScheme == nil || proof.signatureScheme == "eip191",
            resource.chains.contains(SIWXChain(chainId: proof.chainId, type: "eip191")),
            let chainNumber = SIWXMessage.eip155ChainNumber(proof.chainId)
        else {
            return refuse(.unsupportedChain, "this route accepts EIP-191 proofs on \(resource.chains.map(\.chainId))")
        }
        guard proof.domain == resource.domain else { return refuse(.wrongDomain, "the proof is for another domain") }
        guard proof.uri == resource.uri else {
            let sameOrigin = proof.uri.hasPrefix(resource.origin + "/") || proof.uri == resource.origin
            return refuse(
                .wrongURI, sameOrigin ? "the proof is for another resource" : "the proof is for another origin")
        }
        guard proof.version == resource.version, proof.statement == resource.statement,
            proof.resources == resource.resources
        else { return refuse(.echoMismatch, "version, statement or resources differ from what was advertised") }
        guard let issuedAt = RFC3339.parse(proof.issuedAt) else {
            return refuse(.malformed, "issuedAt is not RFC 3339")
        }
        if expectation.now - issuedAt > expectation.maxAgeSeconds {
            return refuse(.stale, "issuedAt is older than \(expectation.maxAgeSeconds) seconds")
        }
        if issuedAt > expectation.now + expectation.clockSkew {
            return refuse(.notYetValid, "issuedAt is in the future")
        }
        var forgetAt = issuedAt + expectation.maxAgeSeconds + 1
        if let text = proof.expirationTime {
            guard let expiration = RFC3339.parse(text) else {
                return refuse(.malformed, "expirationTime is not RFC 3339")
            }
            if expiration < expectation.now { return refuse(.expired, "the proof expired") }
            forgetAt = min(forgetAt, expiration + 1)
        }
        if let text = proof.notBefore {
            guard let notBefore = RFC3339.parse(text) else { return refuse(.malformed, "notBefore is not RFC 3339") }
            if expectation.now + expectation.clockSkew < notBefore { return refuse(.notYetValid, "notBefore is ahead") }
        }
        guard
            SIWXChallenge.isIssuedNonce(
                proof.nonce, issuedAt: proof.issuedAt, expirationTime: proof.expirationTime, domain: proof.domain,
                uri: proof.uri, mac: mac)
        else { return refuse(.unknownNonce, "the nonce was not issued for this challenge") }
        let digest = SIWXMessage.personalSignDigest(SIWXMessage.text(for: proof, chainNumber: chainNumber))
        guard case .success(let recovered) = Secp256k1.recoverAddress(digest: digest, signature: proof.signature),
            let claimed = Hex.decode(proof.address, byteCount: 20), recovered == claimed
        else { return refuse(.badSignature, "the signature does not recover to address") }
        return .success(
            SIWXEntry(
                payer: Hex.encode(recovered), nonce: proof.nonce, chainId: proof.chainId, nonceExpiresAt: forgetAt))
    }
}
