import X402

/// Signs what the backend is told about a paid request, so a backend can check that the
/// `X-X402-*` headers came from the sidecar (through Nginx) and not from a client, and — in the
/// bound form — that they were minted for the very request it is serving:
///
///     X-X402-Signature = hex(HMAC-SHA256(secret, message))
///     version 2 (bound, the default):
///         "x402-context-v2" "\n" method "\n" host "\n" uri "\n" payer "\n" amount "\n" network "\n"
///         payment_id "\n" transaction "\n" lease_id "\n" timestamp
///     version 1 (legacy, `backend.context_version: 1`, for one release):
///         payer "\n" amount "\n" network "\n" payment_id "\n" transaction "\n" timestamp
///
/// Version 1 says nothing about the request, so a context captured from one request verifies on
/// any other path of the backend within its freshness window; version 2 ties it to the client's
/// method, host and URI (and the lease, for leased requests). The leading tag keeps a version 2
/// message from ever reading as another version's. `X-X402-Context-Version` says which one was
/// signed, so a backend can accept both while it migrates. `transaction` and `lease_id` are empty
/// when there is none; `timestamp` is unix seconds (`X-X402-Timestamp`). No field can hold a
/// newline (nginx refuses one in a request line or header), so the joined message is unambiguous.
public struct BackendContextSigner: Sendable {
    public enum Version: Int, Sendable, CaseIterable {
        case legacy = 1
        case bound = 2
    }

    let key: [UInt8]
    public let version: Version

    public init(secret: String, version: Version = .bound) {
        key = Array(secret.utf8)
        self.version = version
    }

    /// The signer for one request, bound to its request line and host.
    public func bound(to request: RequestBinding) -> BackendContext {
        BackendContext(signer: self, request: request)
    }

    func sign(_ message: String) -> String {
        Hex.encode(OpenSSL.hmacSHA256(key: key, message: Array(message.utf8)), prefix: false)
    }
}

/// What a bound context is minted for: the client's request as nginx received it — the method,
/// the host and the URI as the client sent it (`$request_uri`, with its query). The host is signed
/// as the backend sees it (`proxy_set_header Host $host`): lowercase, without a port or a trailing
/// dot (`signedHost`), and worked out only when a context is signed, not for every decision.
public struct RequestBinding: Sendable, Equatable {
    public var method: String
    /// As the client wrote it (the sidecar hears `X-Forwarded-Host: $http_host`).
    public var host: String
    public var uri: String

    public init(method: String, host: String, uri: String) {
        self.method = method
        self.host = host
        self.uri = uri
    }

    public init(_ request: AuthorizeRequest) {
        self.init(method: request.method, host: request.host, uri: request.uri)
    }

    /// nginx's `$host` for this host: what the backend receives in `Host` through `protect.conf`.
    /// The lease's `aud` rule (lowercase, no port), and no trailing dot, which `$host` drops too.
    public var signedHost: String {
        var host = Substring(LeaseClaims.normalizedHost(host) ?? host.lowercased())
        while host.last == "." { host = host.dropLast() }
        return String(host)
    }
}

/// The paid request's facts the backend receives as `X-X402-*` headers, in the order they are signed.
public struct BackendContextFields: Sendable, Equatable {
    public var payer: String
    public var amount: String
    public var network: String
    public var paymentId: String
    public var transaction: String
    /// The lease's `jti` for a leased request (`X-X402-Lease-Id`), else empty.
    public var leaseId: String

    public init(payer: String, amount: String, network: String, paymentId: String, transaction: String = "",
                leaseId: String = "") {
        self.payer = payer
        self.amount = amount
        self.network = network
        self.paymentId = paymentId
        self.transaction = transaction
        self.leaseId = leaseId
    }
}

/// A `BackendContextSigner` for one request: what `DecisionResponse` signs an allow answer with.
public struct BackendContext: Sendable {
    public let signer: BackendContextSigner
    public let request: RequestBinding

    public var version: BackendContextSigner.Version { signer.version }

    public func sign(_ fields: BackendContextFields, timestamp: Int64) -> String {
        signer.sign(Self.message(version: signer.version, request: request, fields: fields, timestamp: timestamp))
    }

    /// The exact text the HMAC covers (see `BackendContextSigner`).
    public static func message(version: BackendContextSigner.Version, request: RequestBinding,
                               fields: BackendContextFields, timestamp: Int64) -> String {
        switch version {
        case .legacy:
            return "\(fields.payer)\n\(fields.amount)\n\(fields.network)\n\(fields.paymentId)\n"
                + "\(fields.transaction)\n\(timestamp)"
        case .bound:
            return "x402-context-v2\n\(request.method)\n\(request.signedHost)\n\(request.uri)\n"
                + "\(fields.payer)\n\(fields.amount)\n\(fields.network)\n\(fields.paymentId)\n"
                + "\(fields.transaction)\n\(fields.leaseId)\n\(timestamp)"
        }
    }
}
