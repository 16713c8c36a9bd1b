/// Identifies one EIP-3009 authorization: the token contract on one network, the payer, and the
/// payer's 32-byte nonce. Two payments with the same key are the same money.
public struct NonceKey: Hashable, Sendable, CustomStringConvertible {
    /// CAIP-2 network id, e.g. `eip155:84532`.
    public let network: String
    /// Token contract, lowercase `0x` + 40 hex.
    public let asset: String
    /// Payer (`authorization.from`), lowercase `0x` + 40 hex.
    public let payer: String
    /// `authorization.nonce`, lowercase `0x` + 64 hex.
    public let nonce: String

    public init(network: String, asset: String, payer: String, nonce: String) {
        self.network = network
        self.asset = asset.lowercased()
        self.payer = payer.lowercased()
        self.nonce = nonce.lowercased()
    }

    /// One string naming the key, used by stores: `network|asset|payer|nonce`.
    public var description: String { "\(network)|\(asset)|\(payer)|\(nonce)" }
}
