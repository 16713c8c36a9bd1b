/// Why a `SIGN-IN-WITH-X` proof does not let a request in. Raw values are the reason codes for
/// `X-X402-Reason` and the JSON log. A refused proof never blocks paying: the flow answers with a
/// fresh 402 (challenge and new nonce) for every one of these.
public enum SIWXRefusal: String, Sendable, CaseIterable, Error {
    /// Not strict base64 of a JSON object with the required string fields, a field has a line
    /// break or control character, an address or signature is not hex of the right length, ...
    case malformed = "siwx_malformed"
    /// `chainId`/`type`/`signatureScheme` name a chain or scheme this route does not accept.
    case unsupportedChain = "siwx_unsupported_chain"
    /// `domain` is not the client-visible host (with port) of the request.
    case wrongDomain = "siwx_wrong_domain"
    /// `uri` is not the resource the request is for (origin or path differ).
    case wrongURI = "siwx_wrong_uri"
    /// An advertised static field (`version`, `statement`, `resources`) came back changed.
    case echoMismatch = "siwx_echo_mismatch"
    /// `issuedAt` is older than the allowed age (the SDK's 5 minutes by default).
    case stale = "siwx_stale"
    /// `issuedAt` or `notBefore` is ahead of the clock (beyond the skew).
    case notYetValid = "siwx_not_yet_valid"
    /// `expirationTime` has passed.
    case expired = "siwx_expired"
    /// The nonce was not issued by us for this resource and these times.
    case unknownNonce = "siwx_nonce_unknown"
    /// The signature does not recover to `address` (or is malleable, or a smart-wallet one).
    case badSignature = "siwx_bad_signature"
    /// The nonce was already used (store decision).
    case nonceUsed = "siwx_nonce_used"
    /// The wallet holds no current payment for this route and host (store decision).
    case notPaid = "siwx_not_paid"
}

/// A refused proof: the reason plus a message for logs (never echoing client text beyond the
/// address, and that only once the signature has verified).
public struct SIWXFailure: Error, Sendable, Equatable {
    public var reason: SIWXRefusal
    public var message: String
    /// The wallet, once the signature verified (for `nonceUsed` / `notPaid`).
    public var payer: String?

    public init(_ reason: SIWXRefusal, _ message: String, payer: String? = nil) {
        self.reason = reason
        self.message = message
        self.payer = payer
    }
}

/// Hard limits on SIWX input.
public enum SIWXLimits {
    /// Larger `SIGN-IN-WITH-X` headers are refused before decoding.
    public static let maxHeaderBytes = 8192
    /// Longest accepted string field, in bytes.
    public static let maxFieldBytes = 2048
    /// At most this many `resources`.
    public static let maxResources = 16
    /// The SDK's default maximum age of `issuedAt` (5 minutes).
    public static let defaultMaxAgeSeconds: Int64 = 300
}
