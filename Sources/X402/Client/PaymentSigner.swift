/// Signs `exact` EVM payments the way the official clients do: an EIP-3009 authorization for the
/// route's price to its `payTo`, wrapped in a v2 `PAYMENT-SIGNATURE` or v1 `X-PAYMENT` header.
///
/// The reference payer in our tests is the official Python SDK; this signer exists so that load
/// tests and benchmarks can mint thousands of distinct, valid payments quickly.
public struct PaymentSigner: Sendable {
    public let privateKey: [UInt8]
    /// EIP-55 `0x` address of `privateKey` (the official clients sign with checksummed addresses).
    public let address: String

    public init?(privateKeyHex: String) {
        guard let key = Hex.decode(privateKeyHex, byteCount: 32), let address = Secp256k1.address(privateKey: key) else {
            return nil
        }
        self.privateKey = key
        self.address = Hex.checksumAddress(address)
    }

    /// The header value paying `option` (for v1, its network must have a v1 name).
    /// - Parameters:
    ///   - now: unix seconds; the authorization is valid from `now - 600` to `now + maxTimeoutSeconds`,
    ///     as the official client does.
    ///   - nonce: 32 bytes; must be unique per payment.
    public func header(
        paying option: PaymentOption, resource: ResourceInfo, version: Int = 2, now: Int64, nonce: [UInt8]
    ) -> String {
        let validAfter = String(now - 600)
        let validBefore = String(now + Int64(option.maxTimeoutSeconds))
        let structHash = EIP712.transferWithAuthorizationHash(
            from: Hex.decode(address, byteCount: 20)!, to: option.payToBytes, value: option.amountBytes,
            validAfter: Amount.uint256(validAfter)!, validBefore: Amount.uint256(validBefore)!, nonce: nonce)
        let digest = EIP712.digest(domainSeparator: option.domainSeparator, structHash: structHash)
        let signature = Secp256k1.sign(digest: digest, privateKey: privateKey)!

        var json = JSONWriter(capacity: 1024)
        json.beginObject()
        json.field("x402Version", version)
        if version == 2 {
            json.key("resource")
            resource.write(&json)
            json.key("accepted")
            option.writeV2(&json)
        } else {
            json.field("scheme", option.scheme)
            json.field("network", option.network.v1Name ?? option.network.caip2)
        }
        json.key("payload")
        json.beginObject()
        json.field("signature", Hex.encode(signature))
        json.key("authorization")
        json.beginObject()
        json.field("from", address)
        json.field("to", option.payTo)
        json.field("value", option.amount)
        json.field("validAfter", validAfter)
        json.field("validBefore", validBefore)
        json.field("nonce", Hex.encode(nonce))
        json.endObject()
        json.endObject()
        json.endObject()
        return Base64.encode(json.bytes)
    }
}
