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

/// `backend:` — the secret of the HMAC over the `X-X402-*` context the backend receives, and which
/// message it signs (`context_version`, `BackendContextSigner`).
enum BackendSection {
    static func parse(_ node: Node?, testnet: Bool, _ r: inout ConfigReader) -> BackendContextSigner? {
        guard let b = r.section(node, "backend", allowed: ["hmac_secret", "context_version"]) else { return nil }
        let version = contextVersion(b["context_version"], &r)
        guard let secret = r.string(b["hmac_secret"], "backend.hmac_secret") else {
            if b["context_version"] != nil, b["hmac_secret"] == nil {
                r.problem("backend.context_version", "says which context is signed, and nothing is signed without "
                          + "backend.hmac_secret", b["context_version"])
            }
            return nil
        }
        SafetyRules.checkSecret(secret, "backend.hmac_secret", b["hmac_secret"], testnet: testnet, &r)
        return version.map { BackendContextSigner(secret: secret, version: $0) }
    }

    /// 2 (the default) binds the context to its request; 1, the old field list, stays for one release
    /// so that backends can move over, and says so on every `check-config`.
    private static func contextVersion(_ node: Node?, _ r: inout ConfigReader) -> BackendContextSigner.Version? {
        guard let node else { return .bound }
        guard let text = r.string(node, "backend.context_version") else { return nil }
        switch BackendContextSigner.Version(rawValue: Int(text) ?? 0) {
        case .bound?:
            return .bound
        case .legacy?:
            r.problem("backend.context_version",
                      "1 signs the old context, which does not say which request it was minted for: a captured "
                      + "context can be replayed to another path of the backend until it goes stale. Move the "
                      + "backends to version 2 (README, \"Verifying the context in the backend\"); 1 goes in the "
                      + "next release",
                      node, severity: .warning)
            return .legacy
        case nil:
            r.problem("backend.context_version",
                      "must be 2 (the context bound to the request's method, host and URI) or 1 (the old field "
                      + "list, accepted for this release only), not \"\(text)\"", node)
            return nil
        }
    }
}
