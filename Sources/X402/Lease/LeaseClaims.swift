/// What a lease token asserts. The JSON names are fixed (the nginx module reads the same ones):
/// `iss`, `sub`, `aud`, `jti`, `iat`, `nbf`, `exp`, `x402_routes`, `x402_lease`, `x402_amount`,
/// `x402_asset`, `x402_network`, `x402_payment_id`, and optional `x402_tx`, `x402_max_requests`,
/// `x402_max_concurrent`.
public struct LeaseClaims: Sendable, Equatable {
    /// The only accepted `iss`.
    public static let issuer = "x402-nginx"

    /// `sub`: the payer, `0x` + 40 lowercase hex.
    public var payer: String
    /// `aud`: the client-visible host, lowercased, without port (see `LeaseClaims.normalizedHost`).
    public var host: String
    /// `x402_routes`: the route names this lease opens (1 to `LeaseLimits.maxRoutes`).
    public var routes: [String]
    /// `jti`: 32 lowercase hex digits, random per lease.
    public var jti: String
    /// `iat`, `nbf`, `exp`: unix seconds.
    public var issuedAt: Int64
    public var notBefore: Int64
    public var expiresAt: Int64
    /// `x402_lease`: the lease route that was paid.
    public var leaseRoute: String
    /// `x402_amount`: the price paid, decimal atomic units.
    public var amount: String
    /// `x402_asset`: the token contract paid in.
    public var asset: String
    /// `x402_network`: CAIP-2 id of the chain paid on.
    public var network: String
    /// `x402_payment_id`: our id of the payment that bought the lease.
    public var paymentID: String
    /// `x402_tx`: the settlement transaction, when known at issuance.
    public var transaction: String?
    /// `x402_max_requests`: at most this many requests with this lease.
    public var maxRequests: Int?
    /// `x402_max_concurrent`: at most this many requests open at once (streams, WebSockets).
    public var maxConcurrent: Int?

    public init(
        payer: String, host: String, routes: [String], jti: String, issuedAt: Int64, notBefore: Int64,
        expiresAt: Int64, leaseRoute: String, amount: String, asset: String, network: String, paymentID: String,
        transaction: String? = nil, maxRequests: Int? = nil, maxConcurrent: Int? = nil
    ) {
        self.payer = payer
        self.host = host
        self.routes = routes
        self.jti = jti
        self.issuedAt = issuedAt
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.leaseRoute = leaseRoute
        self.amount = amount
        self.asset = asset
        self.network = network
        self.paymentID = paymentID
        self.transaction = transaction
        self.maxRequests = maxRequests
        self.maxConcurrent = maxConcurrent
    }

    /// The claims as compact JSON, in the order above (ASCII only).
    public var json: [UInt8] {
        var writer = JSONWriter(capacity: 512)
        writer.beginObject()
        writer.field("iss", Self.issuer)
        writer.field("sub", payer)
        writer.field("aud", host)
        writer.field("jti", jti)
        writer.field("iat", issuedAt)
        writer.field("nbf", notBefore)
        writer.field("exp", expiresAt)
        writer.key("x402_routes")
        writer.beginArray()
        for route in routes { writer.string(route) }
        writer.endArray()
        writer.field("x402_lease", leaseRoute)
        writer.field("x402_amount", amount)
        writer.field("x402_asset", asset)
        writer.field("x402_network", network)
        writer.field("x402_payment_id", paymentID)
        if let transaction { writer.field("x402_tx", transaction) }
        if let maxRequests { writer.field("x402_max_requests", maxRequests) }
        if let maxConcurrent { writer.field("x402_max_concurrent", maxConcurrent) }
        writer.endObject()
        return writer.bytes
    }

    /// The host a lease is bound to for a request's client-visible `Host` (or `X-Forwarded-Host`)
    /// value: lowercased, port removed (`API.Example.com:8443` → `api.example.com`, `[::1]:80` →
    /// `[::1]`). nil when the value is not a plain host name or address.
    public static func normalizedHost(_ value: String) -> String? {
        var host = Substring(value.lowercased())
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isASCIIDigit)) else {
                return nil
            }
            host = host[...close]
            let inside = host.dropFirst().dropLast()
            guard !inside.isEmpty,
                inside.utf8.allSatisfy({ Hex.nibble($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return nil }
            return String(host)
        }
        if let colon = host.firstIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isASCIIDigit) else { return nil }
            host = host[..<colon]
        }
        guard !host.isEmpty, host.utf8.count <= 253,
            host.utf8.allSatisfy({ isHostByte($0) })
        else { return nil }
        return String(host)
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"),
            UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default: return false
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
