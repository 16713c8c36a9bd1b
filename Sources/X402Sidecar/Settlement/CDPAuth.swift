import X402

/// Coinbase CDP API-key authentication: a short-lived JWT per request, signed with the API key
/// secret (EC P-256 PEM → ES256, or base64 Ed25519 → EdDSA), bound to the request's method, host
/// and path (`uris`), sent as `Authorization: Bearer …`.
public struct CDPCredentials: Sendable {
    public let keyId: String
    let key: OpenSSL.SigningKey
    /// Seconds a token is valid (CDP's default).
    public var lifetime: Int64 = 120

    /// `secret` as CDP hands it out: a PEM EC key (literal `\n` sequences allowed, as in env
    /// files) or base64 of 64 bytes (Ed25519 seed ‖ public key). nil when it is neither, or does
    /// not sign.
    public init?(keyId: String, secret: String) {
        guard !keyId.isEmpty else { return nil }
        let text = secret.replacingOccurrences(of: "\\n", with: "\n")
        if text.contains("-----BEGIN") {
            key = .ecP256(pem: text)
        } else if let bytes = Base64.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 64 {
            key = .ed25519(seed: Array(bytes.prefix(32)))
        } else {
            return nil
        }
        self.keyId = keyId
        guard OpenSSL.sign([0], with: key) != nil else { return nil }
    }

    /// The bearer token for one request.
    public func token(method: String, url: String, now: Int64 = UnixClock.seconds()) -> String? {
        guard let uri = Self.uri(method: method, url: url) else { return nil }
        var nonce = ""
        for byte in OpenSSL.randomBytes(16) { nonce.append(Character(Unicode.Scalar(UInt8(ascii: "0") + byte % 10))) }
        var header = JSONWriter()
        header.beginObject()
        header.field("alg", key.jwsAlgorithm)
        header.field("kid", keyId)
        header.field("typ", "JWT")
        header.field("nonce", nonce)
        header.endObject()
        var claims = JSONWriter()
        claims.beginObject()
        claims.field("sub", keyId)
        claims.field("iss", "cdp")
        claims.field("iat", now)
        claims.field("nbf", now)
        claims.field("exp", now + lifetime)
        claims.key("uris")
        claims.beginArray()
        claims.string(uri)
        claims.endArray()
        claims.endObject()
        let signingInput = Self.base64url(header.bytes) + "." + Self.base64url(claims.bytes)
        guard let signature = OpenSSL.sign(Array(signingInput.utf8), with: key) else { return nil }
        return signingInput + "." + Self.base64url(signature)
    }

    /// `POST api.cdp.coinbase.com/platform/v2/x402/settle` from the method and URL.
    static func uri(method: String, url: String) -> String? {
        guard let scheme = url.range(of: "://") else { return nil }
        let rest = url[scheme.upperBound...]
        let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let host = rest[..<hostEnd]
        var path = rest[hostEnd...]
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        guard !host.isEmpty else { return nil }
        return "\(method.uppercased()) \(host)\(path)"
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        var text = Base64.encode(bytes)
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }
}
