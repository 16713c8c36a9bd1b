import X402
import Yams

/// `routes.NAME.sign_in_with_x`: a wallet that paid for the route comes back by signing in.
public struct SignInRouteSettings: Sendable, Equatable {
    /// How long after a payment its wallet may sign in instead of paying again.
    public var accessSeconds: Int64
    /// How long a challenge's proof may be signed and sent (the declaration's `expirationTime`).
    public var proofLifetimeSeconds: Int64
    public var statement: String?
}

/// `sign_in_with_x:` and every route's `sign_in_with_x:`.
public struct SignInSettings: Sendable {
    /// Binds the nonces of our challenges; every sidecar that may see a proof needs the same one.
    public var nonceKey: SIWXNonceKey
    public var routes: [String: SignInRouteSettings] = [:]

    static func parse(_ node: Node?, routes: Node?, testnet: Bool, _ r: inout ConfigReader) -> SignInSettings? {
        var signIn: [String: SignInRouteSettings] = [:]
        for (name, routeNode) in r.mapping(routes, "routes") ?? [] {
            guard let value = routeNode.mapping?["sign_in_with_x"] else { continue }
            let path = "routes.\(name).sign_in_with_x"
            guard let s = r.section(value, path, allowed: ["access_seconds", "proof_lifetime_seconds", "statement"])
            else { continue }
            guard let access = r.int(s["access_seconds"], "\(path).access_seconds", range: 1...(365 * 86400)) else {
                if s["access_seconds"] == nil {
                    r.problem("\(path).access_seconds", "is required (how long a payment lets its wallet back in)", value)
                }
                continue
            }
            let lifetime = r.int(s["proof_lifetime_seconds"], "\(path).proof_lifetime_seconds", range: 10...3600)
            signIn[name] = SignInRouteSettings(
                accessSeconds: Int64(access), proofLifetimeSeconds: Int64(lifetime ?? 300),
                statement: r.string(s["statement"], "\(path).statement"))
        }
        var key: SIWXNonceKey?
        if let s = r.section(node, "sign_in_with_x", allowed: ["nonce_secret"]),
            let secret = r.string(s["nonce_secret"], "sign_in_with_x.nonce_secret")
        {
            key = SIWXNonceKey(secret: Array(secret.utf8))
            if key == nil {
                r.problem("sign_in_with_x.nonce_secret", "must be at least \(SIWXNonceKey.minimumSecretBytes) bytes "
                          + "(openssl rand -hex 32)", s["nonce_secret"])
            }
        }
        guard !signIn.isEmpty else { return nil }
        if key == nil && node == nil {
            // One sidecar can make its own; several behind one nginx must share it.
            r.problem("sign_in_with_x.nonce_secret", "is not set: a random one is used, so a proof only works on the "
                      + "sidecar that issued its challenge and not across a restart", severity: .warning)
            key = SIWXNonceKey.random()
        }
        guard let key else { return nil }
        return SignInSettings(nonceKey: key, routes: signIn)
    }
}
