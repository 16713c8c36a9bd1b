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
    /// Headers named by rate-limit rules (`key: header:NAME`), lowercased names.
    public var keyHeaders: [String: String] = [:]
    public var payment: PresentedPayment

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
