/// The EIP-3009 authorization a payer signed, fields as sent (strings checked for syntax).
public struct Authorization: Sendable, Equatable {
    public var from: String
    public var to: String
    public var value: String
    public var validAfter: String
    public var validBefore: String
    public var nonce: String

    public init(from: String, to: String, value: String, validAfter: String, validBefore: String, nonce: String) {
        self.from = from
        self.to = to
        self.value = value
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.nonce = nonce
    }
}

/// A decoded `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1) header.
public struct PaymentPayload: Sendable, Equatable {
    public var version: Int
    public var scheme: String
    /// v2: CAIP-2 id from `accepted.network`; v1: the legacy name.
    public var network: String
    /// v2 only: the requirement the client says it chose.
    public var accepted: [String: JSONValue]?
    /// The `payload` object: `{signature, authorization}` for `exact` on EVM.
    public var payload: [String: JSONValue]
    /// The whole decoded document, for forwarding to a facilitator unchanged.
    public var document: JSONValue
}

/// The payment headers a request carried, as the HTTP layer found them.
public struct PresentedPayment: Sendable, Equatable {
    /// `PAYMENT-SIGNATURE` (v2).
    public var v2Header: String?
    /// `X-PAYMENT` (v1).
    public var v1Header: String?
    /// Some payment header appeared more than once.
    public var duplicated: Bool

    public init(v2Header: String? = nil, v1Header: String? = nil, duplicated: Bool = false) {
        self.v2Header = v2Header
        self.v1Header = v1Header
        self.duplicated = duplicated
    }

    public var isEmpty: Bool { v2Header == nil && v1Header == nil && !duplicated }
}

/// Hard limits on what a client may send.
public enum PaymentLimits {
    /// Larger payment headers are refused before decoding.
    public static let maxHeaderBytes = 8192
    public static let maxJSONDepth = 16
}

extension PaymentPayload {
    /// Decodes one header. `expectedVersion` is the version its header name implies.
    public static func decode(header: String, expectedVersion: Int) -> Result<PaymentPayload, PaymentFailure> {
        guard header.utf8.count <= PaymentLimits.maxHeaderBytes else {
            return .failure(PaymentFailure(.invalidPayload, "payment header exceeds \(PaymentLimits.maxHeaderBytes) bytes"))
        }
        guard let bytes = Base64.decode(header) else {
            return .failure(PaymentFailure(.invalidPayload, "payment header is not standard base64"))
        }
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes, maxDepth: PaymentLimits.maxJSONDepth)
        } catch {
            let detail: String
            switch error {
            case .tooDeep: detail = "nested deeper than \(PaymentLimits.maxJSONDepth)"
            case .duplicateKey: detail = "has a duplicate key"
            case .invalidUTF8: detail = "is not valid UTF-8"
            case .syntax: detail = "is not valid JSON"
            }
            return .failure(PaymentFailure(.invalidPayload, "payment header \(detail)"))
        }
        guard case .object(let root) = document else {
            return .failure(PaymentFailure(.invalidPayload, "payment header is not a JSON object"))
        }
        guard let version = root["x402Version"]?.integerValue else {
            return .failure(PaymentFailure(.invalidPayload, "x402Version is missing or not an integer"))
        }
        guard version == 1 || version == 2 else {
            return .failure(PaymentFailure(.invalidVersion, "x402Version \(version) is not supported"))
        }
        guard version == expectedVersion else {
            let header = expectedVersion == 2 ? "PAYMENT-SIGNATURE" : "X-PAYMENT"
            return .failure(PaymentFailure(.invalidVersion, "a version \(version) payload was sent in \(header)"))
        }
        guard let payload = root["payload"]?.objectValue else {
            return .failure(PaymentFailure(.invalidPayload, "payload is missing or not an object"))
        }
        if version == 2 {
            guard let accepted = root["accepted"]?.objectValue,
                let scheme = accepted["scheme"]?.stringValue,
                let network = accepted["network"]?.stringValue
            else {
                return .failure(PaymentFailure(.invalidPayload, "accepted.scheme and accepted.network are required"))
            }
            return .success(
                PaymentPayload(
                    version: 2, scheme: scheme, network: network, accepted: accepted, payload: payload,
                    document: document))
        }
        guard let scheme = root["scheme"]?.stringValue, let network = root["network"]?.stringValue else {
            return .failure(PaymentFailure(.invalidPayload, "scheme and network are required"))
        }
        return .success(
            PaymentPayload(
                version: 1, scheme: scheme, network: network, accepted: nil, payload: payload, document: document))
    }

    /// Reads `payload.authorization` and `payload.signature` strictly.
    func exactEVMFields() -> Result<(Authorization, String), PaymentFailure> {
        guard let auth = payload["authorization"]?.objectValue else {
            return .failure(PaymentFailure(.invalidPayload, "payload.authorization is missing or not an object"))
        }
        func field(_ name: String) -> String? { auth[name]?.stringValue }
        guard let from = field("from"), Hex.isAddress(from) else {
            return .failure(PaymentFailure(.invalidPayload, "authorization.from is not an address"))
        }
        guard let to = field("to"), Hex.isAddress(to) else {
            return .failure(PaymentFailure(.invalidPayload, "authorization.to is not an address", payer: from))
        }
        for name in ["value", "validAfter", "validBefore"] {
            guard let text = field(name), Amount.isCanonical(text) else {
                return .failure(
                    PaymentFailure(
                        .invalidPayload, "authorization.\(name) must be a decimal string without leading zeros",
                        payer: from))
            }
        }
        guard let nonce = field("nonce"), Hex.decode(nonce, byteCount: 32) != nil else {
            return .failure(PaymentFailure(.invalidPayload, "authorization.nonce is not 32 bytes of hex", payer: from))
        }
        guard let signature = payload["signature"]?.stringValue else {
            return .failure(PaymentFailure(.invalidSignature, "payload.signature is missing", payer: from))
        }
        let authorization = Authorization(
            from: from, to: to, value: field("value")!, validAfter: field("validAfter")!,
            validBefore: field("validBefore")!, nonce: nonce)
        return .success((authorization, signature))
    }
}
