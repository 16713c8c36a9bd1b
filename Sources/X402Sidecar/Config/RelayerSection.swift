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
    /// Replace a transaction not mined after this long (same nonce, higher fees); 0: never.
    public var replaceAfterSeconds = 0
    /// How much each replacement raises both fees at least (nodes refuse less than 10 %).
    public var feeBumpPercent = 20
    /// The most any transaction offers per gas, in wei (from `max_fee_per_gas_gwei`); required
    /// for replacements, so that a congested chain cannot bid our fees up without bound.
    public var maxFeePerGasWei: UInt64?

    /// nil unless `privateKey` is 0x + 64 hex digits that secp256k1 accepts.
    public init?(privateKey: String) {
        guard let bytes = Hex.decode(privateKey, byteCount: 32), let address = Secp256k1.address(privateKey: bytes)
        else { return nil }
        self.privateKey = privateKey
        self.address = Hex.checksumAddress(address)
    }
}

extension RelayerSettings {
    static let keys = ["private_key", "legacy_transactions", "simulate", "check_balance", "receipt_timeout_seconds",
                       "replace_after_seconds", "fee_bump_percent", "max_fee_per_gas_gwei"]

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
        parseReplacement(s, &settings, &r)
        return settings
    }
}

extension RelayerSettings {
    /// `replace_after_seconds`, `fee_bump_percent`, `max_fee_per_gas_gwei`, checked together.
    static func parseReplacement(_ s: [String: Node], _ settings: inout RelayerSettings, _ r: inout ConfigReader) {
        if let value = r.int(s["replace_after_seconds"], "relayer.replace_after_seconds", range: 0...3600) {
            settings.replaceAfterSeconds = value
        }
        if let value = r.int(s["fee_bump_percent"], "relayer.fee_bump_percent", range: 10...100) {
            settings.feeBumpPercent = value
        }
        if let text = r.string(s["max_fee_per_gas_gwei"], "relayer.max_fee_per_gas_gwei") {
            // gwei with up to 9 decimals is exactly wei; Base's fees are fractions of a gwei.
            switch Amount.atomicUnits(price: text, decimals: 9) {
            case .success(let wei) where UInt64(wei) != nil:
                settings.maxFeePerGasWei = UInt64(wei)
            case .success:
                r.problem("relayer.max_fee_per_gas_gwei", "is too large", s["max_fee_per_gas_gwei"])
            case .failure(let error):
                r.problem("relayer.max_fee_per_gas_gwei", "\(error)", s["max_fee_per_gas_gwei"])
            }
        }
        guard settings.replaceAfterSeconds > 0 else { return }
        if settings.maxFeePerGasWei == nil, s["max_fee_per_gas_gwei"] == nil {
            r.problem("relayer.max_fee_per_gas_gwei",
                      "is required with replace_after_seconds (the most a replacement may offer per gas)",
                      s["replace_after_seconds"])
        }
        if settings.replaceAfterSeconds >= settings.receiptTimeoutSeconds {
            r.problem("relayer.replace_after_seconds",
                      "must be below receipt_timeout_seconds (\(settings.receiptTimeoutSeconds)), or nothing is ever replaced",
                      s["replace_after_seconds"])
        }
    }
}
