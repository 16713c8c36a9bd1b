/// A chain a route accepts SIWX proofs from: `{chainId: "eip155:8453", type: "eip191"}`.
public struct SIWXChain: Sendable, Equatable {
    /// CAIP-2 id.
    public var chainId: String
    /// Signature type; only `eip191` (personal-sign by an EOA) is verified here.
    public var type: String

    public init(chainId: String, type: String = "eip191") {
        self.chainId = chainId
        self.type = type
    }
}

/// The static part of what a route advertises for one request, and expects back in a proof:
/// the client-visible origin, the resource URI, statement and chains.
public struct SIWXResource: Sendable, Equatable {
    /// `host[:port]` as the client sees it (the SDK compares it with the URL's netloc).
    public var domain: String
    /// `origin + path[?query]` of the resource.
    public var uri: String
    /// `scheme://host[:port]`.
    public var origin: String
    public var version: String
    public var statement: String?
    public var resources: [String]
    public var chains: [SIWXChain]

    /// - Parameters:
    ///   - origin: `scheme://host[:port]` from `X-Forwarded-Proto`/`X-Forwarded-Host` (or configured),
    ///     never the sidecar's own address.
    ///   - pathAndQuery: the original request URI (`/api/x?y=1`).
    public init(origin: String, pathAndQuery: String, statement: String? = nil, chains: [SIWXChain]) {
        self.origin = origin
        self.domain = origin.firstRange(of: "://").map { String(origin[$0.upperBound...]) } ?? origin
        self.uri = origin + pathAndQuery
        self.version = "1"
        self.statement = statement
        self.resources = [uri]
        self.chains = chains
    }
}

/// One 402's `sign-in-with-x` declaration: the resource plus a fresh nonce and times.
///
/// The nonce is 8 random bytes and 8 bytes of a MAC over them, the times, domain and URI, so the
/// sidecar can tell a nonce it issued (for these exact fields) without storing anything when it
/// answers a 402; a proof's nonce is then consumed once in the store.
public struct SIWXChallenge: Sendable, Equatable {
    public var resource: SIWXResource
    /// 32 lowercase hex digits.
    public var nonce: String
    /// RFC 3339 (`RFC3339.format`).
    public var issuedAt: String
    public var expirationTime: String?

    /// A new challenge. `random` must be 8 bytes from a CSPRNG; `mac` is a keyed MAC shared by
    /// every sidecar (e.g. HMAC-SHA256 with a configured secret), at least 8 bytes out.
    public static func issue(
        for resource: SIWXResource, now: Int64, lifetimeSeconds: Int64?, random: [UInt8], mac: ([UInt8]) -> [UInt8]
    ) -> SIWXChallenge {
        precondition(random.count == 8, "a SIWX nonce needs 8 random bytes")
        let issuedAt = RFC3339.format(unixSeconds: now)
        let expirationTime = lifetimeSeconds.map { RFC3339.format(unixSeconds: now + $0) }
        let tag = nonceTag(
            random: random, issuedAt: issuedAt, expirationTime: expirationTime, domain: resource.domain,
            uri: resource.uri, mac: mac)
        return SIWXChallenge(
            resource: resource, nonce: Hex.encode(random + tag, prefix: false), issuedAt: issuedAt,
            expirationTime: expirationTime)
    }

    /// Whether `nonce` is one `issue` made for exactly these fields.
    public static func isIssuedNonce(
        _ nonce: String, issuedAt: String, expirationTime: String?, domain: String, uri: String,
        mac: ([UInt8]) -> [UInt8]
    ) -> Bool {
        guard LeaseClaims.isLowercaseHex(nonce, prefixed: false, digits: 32),
            let bytes = Hex.decode("0x" + nonce, byteCount: 16)
        else { return false }
        let expected = nonceTag(
            random: Array(bytes[0..<8]), issuedAt: issuedAt, expirationTime: expirationTime, domain: domain, uri: uri,
            mac: mac)
        // Constant time: the tag is a secret-derived value.
        return zip(expected, bytes[8..<16]).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func nonceTag(
        random: [UInt8], issuedAt: String, expirationTime: String?, domain: String, uri: String,
        mac: ([UInt8]) -> [UInt8]
    ) -> [UInt8] {
        let fields = [Hex.encode(random, prefix: false), issuedAt, expirationTime ?? "", domain, uri]
        let input = "x402-siwx-nonce\n" + fields.joined(separator: "\n")
        let tag = mac(Array(input.utf8))
        precondition(tag.count >= 8, "the SIWX nonce MAC must give at least 8 bytes")
        return Array(tag.prefix(8))
    }

    /// The extension's value under `extensions["sign-in-with-x"]`: `{info, supportedChains,
    /// schema}` with `info` in the SDK's field order (domain, uri, version, nonce, issuedAt,
    /// resources, expirationTime, statement).
    public var declarationJSON: [UInt8] {
        var writer = JSONWriter(capacity: 1536)
        writer.beginObject()
        writer.key("info")
        writer.beginObject()
        writer.field("domain", resource.domain)
        writer.field("uri", resource.uri)
        writer.field("version", resource.version)
        writer.field("nonce", nonce)
        writer.field("issuedAt", issuedAt)
        writer.key("resources")
        writer.beginArray()
        for item in resource.resources { writer.string(item) }
        writer.endArray()
        if let expirationTime { writer.field("expirationTime", expirationTime) }
        if let statement = resource.statement { writer.field("statement", statement) }
        writer.endObject()
        writer.key("supportedChains")
        writer.beginArray()
        for chain in resource.chains {
            writer.beginObject()
            writer.field("chainId", chain.chainId)
            writer.field("type", chain.type)
            writer.endObject()
        }
        writer.endArray()
        writer.key("schema")
        writer.raw(Self.schemaJSON)
        writer.endObject()
        return writer.bytes
    }

    /// The SDK's `build_siwx_schema()` (x402 2.25.0), compact, in its key order.
    public static let schemaJSON = Array(
        ([
            #"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"#,
            #""domain":{"type":"string"},"address":{"type":"string"},"statement":{"type":"string"},"#,
            #""uri":{"type":"string","format":"uri"},"version":{"type":"string"},"chainId":{"type":"string"},"#,
            #""type":{"type":"string"},"nonce":{"type":"string"},"issuedAt":{"type":"string","format":"date-time"},"#,
            #""expirationTime":{"type":"string","format":"date-time"},"#,
            #""notBefore":{"type":"string","format":"date-time"},"#,
            #""requestId":{"type":"string"},"resources":{"type":"array","items":{"type":"string","format":"uri"}},"#,
            #""signature":{"type":"string"}},"#,
            #""required":["domain","address","uri","version","chainId","type","nonce","issuedAt","signature"]}"#,
        ] as [String]).joined().utf8)
}
