import X402

/// The inputs of one `/authorize` call, as Nginx's auth subrequest passes them in headers.
///
/// | header | meaning |
/// |---|---|
/// | `X-X402-Route` | route name from `$x402_route` (required) |
/// | `X-Original-Method`, `X-Original-URI` | the client's request line |
/// | `X-Forwarded-Proto`, `X-Forwarded-Host` (else `Host`) | how the client reached Nginx |
/// | `X-Real-IP` | the address nginx saw (`$remote_addr`) |
/// | `X-Forwarded-For` | the client's chain of proxies, believed only from trusted proxies |
/// | `X-Request-ID` | Nginx's `$request_id` |
/// | `PAYMENT-SIGNATURE` / `X-PAYMENT` | the client's payment (v2 / v1) |
public struct AuthorizeRequest: Sendable, Equatable {
    public var route: String?
    public var method: String
    public var uri: String
    public var scheme: String
    public var host: String
    public var clientAddress: String?
    public var forwardedFor: String?
    public var requestId: String?
    /// Sent by our nginx include (`X-X402-Via: nginx`): the challenge body can be left out.
    public var viaNginx = false
    /// The client talks to us directly (a lease path proxied by nginx): real statuses.
    public var direct = false
    /// Headers named by rate-limit rules (`key: header:NAME`), lowercased names.
    public var keyHeaders: [String: String] = [:]
    public var payment: PresentedPayment
    /// A lease token, when the request carries one (`X-X402-Lease`, `Authorization: Bearer`, or
    /// `?x402_lease=` — the last only counts on routes that allow it).
    public var lease: PresentedLease?
    /// A `SIGN-IN-WITH-X` proof.
    public var signInProof: String?
    /// `X-X402-Recheck: stream`: the module re-asks about the lease of a stream already open (not
    /// a new request: nothing is counted, the stream's own slot is kept).
    public var streamRecheck = false

    public init(
        route: String?, method: String = "GET", uri: String = "/", scheme: String = "http", host: String = "localhost",
        clientAddress: String? = nil, requestId: String? = nil, payment: PresentedPayment = PresentedPayment()
    ) {
        self.route = route
        self.method = method
        self.uri = uri
        self.scheme = scheme
        self.host = host
        self.clientAddress = clientAddress
        self.requestId = requestId
        self.payment = payment
    }

    /// The URL the client asked for, as the challenge's `resource.url` (x402 PR #924: never the
    /// sidecar's own address).
    public var resourceURL: String { "\(scheme)://\(host)\(uri)" }
}

/// A lease token as presented, and where it came from.
public struct PresentedLease: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// `X-X402-Lease`: meant for us; anything wrong with it is refused with its reason.
        case header
        /// `Authorization: Bearer`: may be the backend's own token; one that is not ours (not a
        /// JWT under one of our key ids) is left alone.
        case bearer
        /// `?x402_lease=`: only where `leases.query_token_routes` allows it.
        case query
    }

    public var token: String
    public var source: Source
    /// `X-X402-Lease` came more than once: refused (`lease_duplicated`) whatever the copies hold.
    public var duplicated: Bool

    public init(token: String, source: Source, duplicated: Bool = false) {
        self.token = token
        self.source = source
        self.duplicated = duplicated
    }

    /// The token in these places, in this order of precedence.
    public static func find(
        header: String?, authorization: String?, uri: String, headerDuplicated: Bool = false
    ) -> PresentedLease? {
        if let header, !header.isEmpty || headerDuplicated {
            return PresentedLease(token: header, source: .header, duplicated: headerDuplicated)
        }
        if let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " {
            let token = String(authorization.dropFirst(7))
            if token.utf8.lazy.filter({ $0 == UInt8(ascii: ".") }).count == 2 {
                return PresentedLease(token: token, source: .bearer)
            }
        }
        if let range = uri.range(of: "x402_lease="), uri[..<range.lowerBound].contains("?") {
            let value = uri[range.upperBound...].prefix { $0 != "&" && $0 != "#" }
            if !value.isEmpty { return PresentedLease(token: String(value), source: .query) }
        }
        return nil
    }
}
