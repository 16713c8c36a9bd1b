/// A decoded `SIGN-IN-WITH-X` header: base64 of JSON with the echoed challenge fields plus
/// `address`, `chainId`, `type` and `signature` (the SDK's `SIWxPayload`).
public struct SIWXProof: Sendable, Equatable {
    public var domain: String
    /// As sent (EIP-55 or all one case); it is part of the signed message.
    public var address: String
    public var uri: String
    public var version: String
    public var chainId: String
    public var type: String
    public var nonce: String
    public var issuedAt: String
    public var statement: String?
    public var expirationTime: String?
    public var notBefore: String?
    public var requestId: String?
    public var resources: [String]?
    public var signatureScheme: String?
    /// 65 bytes `r ‖ s ‖ v`.
    public var signature: [UInt8]

    public init(
        domain: String, address: String, uri: String, version: String, chainId: String, type: String,
        nonce: String, issuedAt: String, statement: String? = nil, expirationTime: String? = nil,
        notBefore: String? = nil, requestId: String? = nil, resources: [String]? = nil,
        signatureScheme: String? = nil, signature: [UInt8]
    ) {
        self.domain = domain
        self.address = address
        self.uri = uri
        self.version = version
        self.chainId = chainId
        self.type = type
        self.nonce = nonce
        self.issuedAt = issuedAt
        self.statement = statement
        self.expirationTime = expirationTime
        self.notBefore = notBefore
        self.requestId = requestId
        self.resources = resources
        self.signatureScheme = signatureScheme
        self.signature = signature
    }

    /// Decodes a header value strictly: bounded size, strict base64 and JSON, string fields without
    /// control characters (a line break would forge lines of the signed message), an address of
    /// 40 hex digits (mixed case only as a valid EIP-55 checksum, as siwe requires), and a
    /// signature of 65 bytes of hex.
    public static func decode(header: String) -> Result<SIWXProof, SIWXFailure> {
        func bad(_ why: String) -> Result<SIWXProof, SIWXFailure> { .failure(SIWXFailure(.malformed, why)) }
        guard header.utf8.count <= SIWXLimits.maxHeaderBytes else {
            return bad("SIGN-IN-WITH-X exceeds \(SIWXLimits.maxHeaderBytes) bytes")
        }
        guard let bytes = Base64.decode(header) else { return bad("SIGN-IN-WITH-X is not standard base64") }
        guard case .object(let root)? = try? JSONParser.parse(bytes, maxDepth: 3) else {
            return bad("SIGN-IN-WITH-X is not a JSON object")
        }
        var problem: String?
        func text(_ name: String, required: Bool = true) -> String? {
            guard let value = root[name], value != .null else {
                if required { problem = problem ?? "\(name) is missing" }
                return nil
            }
            guard let text = value.stringValue, isCleanField(text) else {
                problem = problem ?? "\(name) is not a string without control characters"
                return nil
            }
            return text
        }
        let domain = text("domain"), address = text("address"), uri = text("uri"), version = text("version")
        let chainId = text("chainId"), type = text("type"), nonce = text("nonce"), issuedAt = text("issuedAt")
        let signatureText = text("signature"), statement = text("statement", required: false)
        let expirationTime = text("expirationTime", required: false), notBefore = text("notBefore", required: false)
        let requestId = text("requestId", required: false), signatureScheme = text("signatureScheme", required: false)
        if let problem { return bad(problem) }
        var resources: [String]?
        if let value = root["resources"], value != .null {
            guard case .array(let items) = value, items.count <= SIWXLimits.maxResources else {
                return bad("resources is not an array of at most \(SIWXLimits.maxResources)")
            }
            resources = []
            for item in items {
                guard let text = item.stringValue, isCleanField(text) else { return bad("resources holds a non-URI") }
                resources!.append(text)
            }
        }
        guard let address, let addressBytes = Hex.decode(address, byteCount: 20), address.hasPrefix("0x") else {
            return bad("address is not 0x + 40 hex digits")
        }
        let digits = address.dropFirst(2)
        if digits != digits.lowercased(), digits != digits.uppercased(), Hex.checksumAddress(addressBytes) != address {
            return bad("address has mixed case but is not a valid EIP-55 checksum")
        }
        guard let signatureText, let signature = Hex.decode(signatureText, byteCount: 65) else {
            return bad("signature is not 0x + 130 hex digits (smart-wallet signatures are not supported)")
        }
        return .success(
            SIWXProof(
                domain: domain!, address: address, uri: uri!, version: version!, chainId: chainId!, type: type!,
                nonce: nonce!, issuedAt: issuedAt!, statement: statement, expirationTime: expirationTime,
                notBefore: notBefore, requestId: requestId, resources: resources, signatureScheme: signatureScheme,
                signature: signature))
    }

    /// Non-empty printable text without control characters, bounded.
    static func isCleanField(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= SIWXLimits.maxFieldBytes
            && text.unicodeScalars.allSatisfy {
                $0.value >= 0x20 && !(0x7F...0x9F).contains($0.value) && $0.value != 0x2028 && $0.value != 0x2029
            }
    }
}
