import X402
import Yams

/// `admin:` — the token-protected listener for `/admin/ratelimit`.
public struct AdminSettings: Sendable, Equatable {
    public var listen: ListenAddress
    /// SHA-256 of the admin token, never the token itself.
    public var tokenSHA256: [UInt8]

    public init(listen: ListenAddress, tokenSHA256: [UInt8]) {
        self.listen = listen
        self.tokenSHA256 = tokenSHA256
    }
}

extension AdminSettings {
    /// `token` (usually `${X402_ADMIN_TOKEN}`, the variable `admin ratelimit` reads) can be checked
    /// for length; `token_sha256` (`x402-sidecar admin hash-token`) only against known placeholders.
    static func parse(_ node: Node?, testnet: Bool, _ r: inout ConfigReader) -> AdminSettings? {
        guard let a = r.section(node, "admin", allowed: ["listen", "token", "token_sha256"]) else { return nil }
        let listen = r.string(a["listen"], "admin.listen").flatMap { ListenAddress(parsing: $0, mode: 0o600) }
        if listen == nil { r.problem("admin.listen", "is required: unix:/path or 127.0.0.1:PORT", a["listen"] ?? node) }
        var hash: [UInt8]?
        switch (a["token"], a["token_sha256"]) {
        case (.some, .some):
            r.problem("admin", "give either token or token_sha256, not both", node)
        case (.some(let tokenNode), nil):
            if let token = r.string(tokenNode, "admin.token") {
                SafetyRules.checkSecret(token, "admin.token", tokenNode, testnet: testnet, &r)
                hash = OpenSSL.sha256(Array(token.utf8))
            }
        case (nil, let hashNode):
            let text = r.string(hashNode, "admin.token_sha256")
            hash = text.flatMap { Hex.decode($0.hasPrefix("0x") ? $0 : "0x" + $0, byteCount: 32) }
            if hash == nil, !(hashNode != nil && text == nil) {
                r.problem("admin.token_sha256",
                          "must be the SHA-256 (64 hex digits) of the admin token: x402-sidecar admin hash-token "
                          + "(or give admin.token: \"${X402_ADMIN_TOKEN}\")", hashNode ?? node)
            }
            if let hash,
                let word = SafetyRules.placeholderTokens.first(where: { OpenSSL.sha256(Array($0.utf8)) == hash })
            {
                SafetyRules.report("admin.token_sha256", "is the SHA-256 of \"\(word)\", a placeholder token", hashNode,
                                   testnet: testnet, &r)
            }
        }
        guard let listen, let hash else { return nil }
        return AdminSettings(listen: listen, tokenSHA256: hash)
    }
}

/// `backend:` — the secret of the HMAC over the `X-X402-*` context the backend receives.
enum BackendSection {
    static func parse(_ node: Node?, testnet: Bool, _ r: inout ConfigReader) -> String? {
        guard let b = r.section(node, "backend", allowed: ["hmac_secret"]) else { return nil }
        guard let secret = r.string(b["hmac_secret"], "backend.hmac_secret") else { return nil }
        SafetyRules.checkSecret(secret, "backend.hmac_secret", b["hmac_secret"], testnet: testnet, &r)
        return secret
    }
}
