import X402
import Yams

/// `relayer:` — our own key that sends `transferWithAuthorization` ("be your own facilitator") on
/// every chain in `rpc_urls`.
public struct RelayerSettings: Sendable, Equatable {
    /// 0x + 64 hex digits, a valid secp256k1 key (checked when the configuration is read).
    public var privateKey: String
    /// The key's address, checksummed.
    public var address: String
    public var legacyTransactions = false
    public var simulate = true
    public var checkBalance = true
    public var receiptTimeoutSeconds = 30

    /// nil unless `privateKey` is 0x + 64 hex digits that secp256k1 accepts.
    public init?(privateKey: String) {
        guard let bytes = Hex.decode(privateKey, byteCount: 32), let address = Secp256k1.address(privateKey: bytes)
        else { return nil }
        self.privateKey = privateKey
        self.address = Hex.checksumAddress(address)
    }
}

extension RelayerSettings {
    static let keys = ["private_key", "legacy_transactions", "simulate", "check_balance", "receipt_timeout_seconds"]

    static func parse(_ node: Node?, _ r: inout ConfigReader) -> RelayerSettings? {
        guard let s = r.section(node, "relayer", allowed: keys) else { return nil }
        guard let key = r.string(s["private_key"], "relayer.private_key") else {
            if s["private_key"] == nil {
                r.problem("relayer.private_key", "is required (use ${X402_RELAYER_KEY}; never commit a key)", node)
            }
            return nil
        }
        guard var settings = RelayerSettings(privateKey: key) else {
            r.problem("relayer.private_key", "must be 0x followed by 64 hex digits (a valid secp256k1 key)",
                      s["private_key"])
            return nil
        }
        if let value = r.bool(s["legacy_transactions"], "relayer.legacy_transactions") {
            settings.legacyTransactions = value
        }
        if let value = r.bool(s["simulate"], "relayer.simulate") { settings.simulate = value }
        if let value = r.bool(s["check_balance"], "relayer.check_balance") { settings.checkBalance = value }
        if let value = r.int(s["receipt_timeout_seconds"], "relayer.receipt_timeout_seconds", range: 1...600) {
            settings.receiptTimeoutSeconds = value
        }
        return settings
    }
}
