import Yams

/// Issue 11's "no dangerous defaults": public test keys, placeholder and short secrets. A finding
/// refuses the file when any network the file touches has value, and is only a warning when every
/// one is a testnet (the devnet, base-sepolia…), where test keys and demo secrets are the point.
enum SafetyRules {
    /// Shorter secrets can be guessed offline from one signed context (HMAC-SHA256 keys).
    static let minimumSecretBytes = 32

    /// Words that mark text someone was meant to replace.
    static let placeholderWords = [
        "change-me", "changeme", "change_me", "example", "secret", "placeholder", "replace-me", "replace_me",
        "replaceme", "dummy", "password", "your-", "your_", "todo", "xxxx",
    ]

    /// Admin tokens whose SHA-256 is refused in `admin.token_sha256` (the token itself is not known).
    static let placeholderTokens = [
        "", "admin", "token", "test", "changeme", "change-me", "secret", "password", "example",
    ]

    /// Why `secret` reads like a placeholder, or nil.
    static func placeholderReason(_ secret: String) -> String? {
        let lower = secret.lowercased()
        if let word = placeholderWords.first(where: { lower.contains($0) }) { return "contains \"\(word)\"" }
        if Set(secret.utf8).count < 8 { return "has fewer than 8 different characters" }
        return nil
    }

    /// An error on mainnet, a warning when every network is a testnet.
    static func report(_ path: String, _ message: String, _ node: Node?, testnet: Bool, _ r: inout ConfigReader) {
        if testnet {
            r.problem(path, "\(message) (a warning only because every network here is a testnet)", node,
                      severity: .warning)
        } else {
            r.problem(path, "\(message); refused where payments have value (mainnet networks)", node)
        }
    }

    /// `backend.hmac_secret`, `admin.token`: long enough always; no placeholder on mainnet.
    static func checkSecret(_ secret: String, _ path: String, _ node: Node?, testnet: Bool, _ r: inout ConfigReader) {
        let length = secret.utf8.count
        if length < minimumSecretBytes {
            r.problem(path, "is too short (\(length) bytes): use at least \(minimumSecretBytes) random bytes, "
                      + "e.g. openssl rand -hex 32", node)
        }
        if let why = placeholderReason(secret) {
            report(path, "looks like a placeholder (it \(why)): use random bytes, e.g. openssl rand -hex 32", node,
                   testnet: testnet, &r)
        }
    }

    /// `relayer.private_key`.
    static func checkRelayerKey(_ relayer: RelayerSettings, _ node: Node?, testnet: Bool, _ r: inout ConfigReader) {
        guard let index = PublicTestKeys.accountIndex(privateKey: relayer.privateKey) else { return }
        report("relayer.private_key", "is a public test key (account \(index) of the Anvil/Hardhat mnemonic, "
               + "\(relayer.address)): anyone can spend from it", node, testnet: testnet, &r)
    }
}
