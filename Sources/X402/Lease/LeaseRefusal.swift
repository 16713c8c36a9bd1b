/// Why a lease token was refused. The raw values are the reason codes the sidecar puts in
/// `X-X402-Reason` and the JSON log, and the ones the nginx module uses for the same checks.
public enum LeaseRefusal: String, Sendable, CaseIterable, Error {
    /// Not a compact JWS of our shape: segments, base64url, JSON, header or claim types, size.
    case malformed = "lease_malformed"
    /// `alg` is not `HS256` or `EdDSA` (`none`, `RS256`, `ES256`, `HS384`, ...).
    case unsupportedAlgorithm = "lease_unsupported_alg"
    /// `kid` names no key in the keyring.
    case unknownKey = "lease_unknown_key"
    /// The key named by `kid` is of another algorithm than the header's (HS/EdDSA confusion).
    case algorithmMismatch = "lease_alg_mismatch"
    /// The signature does not verify.
    case badSignature = "lease_bad_signature"
    /// Signed by one of our keys, but `iss` is not `x402-nginx`.
    case wrongIssuer = "lease_wrong_issuer"
    /// `exp` has passed (beyond the clock skew).
    case expired = "lease_expired"
    /// `nbf` is still ahead (beyond the clock skew).
    case notYetValid = "lease_not_yet_valid"
    /// The requested route is not in `x402_routes`.
    case wrongRoute = "lease_wrong_route"
    /// `aud` is not the client-visible host of the request.
    case wrongHost = "lease_wrong_host"
    /// Two `X-X402-Lease` headers: which one nginx or the backend would act on is not ours to
    /// guess, so neither is taken (as with two payment headers).
    case duplicated = "lease_duplicated"
    /// Revoked by `jti` or payer, or superseded by a renewal.
    case revoked = "lease_revoked"
    /// `x402_max_requests` requests were already made with this lease.
    case requestLimit = "lease_request_limit"
    /// `x402_max_concurrent` requests are already open with this lease.
    case concurrencyLimit = "lease_concurrency_limit"
}

/// A refused lease: the reason code plus a message for logs. Messages never echo token content
/// beyond the `jti` and payer, which are only set once the signature has verified.
public struct LeaseFailure: Error, Sendable, Equatable {
    public var reason: LeaseRefusal
    public var message: String
    /// The lease's `jti`, when the token was authentic.
    public var jti: String?
    /// The lease's payer (`sub`), when the token was authentic.
    public var payer: String?

    public init(_ reason: LeaseRefusal, _ message: String, jti: String? = nil, payer: String? = nil) {
        self.reason = reason
        self.message = message
        self.jti = jti
        self.payer = payer
    }
}

/// Hard limits on lease tokens.
public enum LeaseLimits {
    /// Longer tokens are refused before any decoding.
    public static let maxTokenBytes = 4096
    /// At most this many routes in `x402_routes`.
    public static let maxRoutes = 32
    /// Longest accepted string claim (route names, payment id, asset, ...), in bytes.
    public static let maxStringBytes = 256
}
