/// One way to pay for a route: the `exact` scheme on one network, one token, one price.
/// Everything a request is checked against comes from here — never from the client's echo.
public struct PaymentOption: Sendable, Equatable {
    public let scheme: String
    public let network: Network
    public let token: TokenInfo
    /// Recipient as configured (any case).
    public let payTo: String
    /// Price in atomic units, canonical decimal string.
    public let amount: String
    public let maxTimeoutSeconds: Int

    // Precomputed for the hot path.
    public let payToBytes: [UInt8]
    public let assetBytes: [UInt8]
    public let amountBytes: [UInt8]
    public let domainSeparator: [UInt8]

    public enum InvalidOption: Error, Equatable {
        case badPayTo, badAsset, badAmount
    }

    public init(network: Network, token: TokenInfo, payTo: String, amount: String, maxTimeoutSeconds: Int) throws(
        InvalidOption
    ) {
        guard let payToBytes = Hex.decode(payTo, byteCount: 20) else { throw .badPayTo }
        guard let assetBytes = Hex.decode(token.address, byteCount: 20) else { throw .badAsset }
        guard Amount.isCanonical(amount), amount != "0", let amountBytes = Amount.uint256(amount) else {
            throw .badAmount
        }
        self.scheme = "exact"
        self.network = network
        self.token = token
        self.payTo = payTo
        self.amount = amount
        self.maxTimeoutSeconds = maxTimeoutSeconds
        self.payToBytes = payToBytes
        self.assetBytes = assetBytes
        self.amountBytes = amountBytes
        self.domainSeparator = EIP712.domainSeparator(
            name: token.eip712Name, version: token.eip712Version, chainId: network.chainId,
            verifyingContract: assetBytes)
    }

    /// The v2 `accepts` entry.
    func writeV2(_ json: inout JSONWriter) {
        json.beginObject()
        json.field("scheme", scheme)
        json.field("network", network.caip2)
        json.field("amount", amount)
        json.field("asset", token.address)
        json.field("payTo", payTo)
        json.field("maxTimeoutSeconds", maxTimeoutSeconds)
        writeExtra(&json)
        json.endObject()
    }

    /// The v1 `accepts` entry (v1 field names; resource fields live inside each requirement).
    func writeV1(_ json: inout JSONWriter, v1Network: String, resource: ResourceInfo) {
        let parts = v1Parts(v1Network: v1Network, description: resource.description, mimeType: resource.mimeType)
        json.raw(parts.head + JSONWriter.quoted(resource.url) + parts.tail)
    }

    /// A v1 requirement around its resource URL: `{"scheme":…,"resource":` and `,"description":…}`
    /// (what `ChallengeTemplate` stores, and what `writeV1` puts the URL between).
    func v1Parts(v1Network: String, description: String, mimeType: String) -> (head: [UInt8], tail: [UInt8]) {
        var head = JSONWriter(capacity: 128)
        head.beginObject()
        head.field("scheme", scheme)
        head.field("network", v1Network)
        head.field("maxAmountRequired", amount)
        head.key("resource")
        var tail = JSONWriter(capacity: 384)
        tail.beginObject()
        tail.field("description", description)
        tail.field("mimeType", mimeType)
        tail.field("payTo", payTo)
        tail.field("maxTimeoutSeconds", maxTimeoutSeconds)
        tail.field("asset", token.address)
        tail.key("outputSchema")
        tail.null()
        writeExtra(&tail)
        tail.endObject()
        return (head.bytes, [UInt8(ascii: ",")] + tail.bytes.dropFirst())
    }

    /// The requirement as a facilitator's `/verify` and `/settle` take it (`paymentRequirements`),
    /// in the field names of the payment's protocol version.
    public func requirementsJSON(version: Int, resource: ResourceInfo) -> String {
        var json = JSONWriter()
        if version == 1 {
            writeV1(&json, v1Network: network.v1Name ?? network.caip2, resource: resource)
        } else {
            writeV2(&json)
        }
        return json.string
    }

    private func writeExtra(_ json: inout JSONWriter) {
        json.key("extra")
        json.beginObject()
        json.field("name", token.eip712Name)
        json.field("version", token.eip712Version)
        json.endObject()
    }
}

/// The `resource` object of a v2 challenge (and the matching v1 requirement fields).
public struct ResourceInfo: Sendable, Equatable {
    public var url: String
    public var description: String
    public var mimeType: String

    public init(url: String, description: String, mimeType: String) {
        self.url = url
        self.description = description
        self.mimeType = mimeType
    }

    /// The v2 `resource` object.
    func write(_ json: inout JSONWriter) {
        json.beginObject()
        json.field("url", url)
        json.field("description", description)
        json.field("mimeType", mimeType)
        json.endObject()
    }
}

/// What a route asks for: its description and every accepted way to pay.
public struct RouteRequirements: Sendable, Equatable {
    public let name: String
    public let description: String
    public let mimeType: String
    public let options: [PaymentOption]
    /// The challenge's constant parts, encoded once (the fields above are constant for that reason).
    let template: ChallengeTemplate

    public init(name: String, description: String, mimeType: String, options: [PaymentOption]) {
        self.name = name
        self.description = description
        self.mimeType = mimeType
        self.options = options
        template = ChallengeTemplate(description: description, mimeType: mimeType, options: options)
    }

    func option(v2Network network: String) -> PaymentOption? {
        options.first { $0.network.caip2 == network }
    }

    func option(v1Network network: String) -> PaymentOption? {
        options.first { $0.network.v1Name == network }
    }
}
