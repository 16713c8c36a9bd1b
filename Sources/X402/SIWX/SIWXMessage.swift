/// The EIP-4361 (Sign-In with Ethereum) message a SIWX proof signs, byte for byte as the SDK
/// builds it (`format_siwe_message` → siwe's `SiweMessage.prepare_message`), and its EIP-191 hash.
public enum SIWXMessage {
    /// The message text. `chainNumber` is the numeric part of `eip155:<n>`.
    public static func text(for proof: SIWXProof, chainNumber: UInt64) -> String {
        var prefix = "\(proof.domain) wants you to sign in with your Ethereum account:\n\(proof.address)"
        var suffix = [
            "URI: \(proof.uri)", "Version: \(proof.version)", "Chain ID: \(chainNumber)", "Nonce: \(proof.nonce)",
            "Issued At: \(proof.issuedAt)",
        ]
        if let expirationTime = proof.expirationTime { suffix.append("Expiration Time: \(expirationTime)") }
        if let notBefore = proof.notBefore { suffix.append("Not Before: \(notBefore)") }
        if let requestId = proof.requestId { suffix.append("Request ID: \(requestId)") }
        if let resources = proof.resources {
            suffix.append((["Resources:"] + resources.map { "- \($0)" }).joined(separator: "\n"))
        }
        if let statement = proof.statement {
            prefix += "\n\n" + statement
        } else {
            prefix += "\n"
        }
        return prefix + "\n\n" + suffix.joined(separator: "\n")
    }

    /// EIP-191 personal-sign digest: keccak256("\u{19}Ethereum Signed Message:\n" ‖ len ‖ message).
    public static func personalSignDigest(_ message: String) -> [UInt8] {
        let bytes = Array(message.utf8)
        return Keccak256.hash(Array("\u{19}Ethereum Signed Message:\n\(bytes.count)".utf8) + bytes)
    }

    /// The numeric chain of `eip155:<digits>` (no leading zeros), or nil.
    public static func eip155ChainNumber(_ chainId: String) -> UInt64? {
        guard chainId.hasPrefix("eip155:") else { return nil }
        let digits = chainId.dropFirst("eip155:".count)
        guard !digits.isEmpty, digits.count <= 19, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits == "0" || !digits.hasPrefix("0")
        else { return nil }
        return UInt64(digits)
    }
}
