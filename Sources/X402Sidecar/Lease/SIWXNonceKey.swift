import X402

/// The secret SIWX nonces are bound with (HMAC-SHA256), shared by every sidecar that may see the
/// proof for a challenge another one issued. With it, answering a 402 writes nothing to a store;
/// only an accepted proof consumes its nonce (`LeaseStore.consumeSIWXNonce`).
public struct SIWXNonceKey: Sendable {
    /// Minimum secret length.
    public static let minimumSecretBytes = 32

    private let macFunction: @Sendable ([UInt8]) -> [UInt8]

    /// nil when `secret` is shorter than `minimumSecretBytes`.
    public init?(secret: [UInt8]) {
        guard secret.count >= Self.minimumSecretBytes else { return nil }
        macFunction = { OpenSSL.hmacSHA256(key: secret, message: $0) }
    }

    /// Another MAC (tests that verify proofs made for fixtures with their own).
    init(mac: @escaping @Sendable ([UInt8]) -> [UInt8]) {
        macFunction = mac
    }

    /// A random key, for a single sidecar (challenges do not survive its restart).
    public static func random() -> SIWXNonceKey { SIWXNonceKey(secret: OpenSSL.randomBytes(32))! }

    /// HMAC-SHA256 of `message` with the secret.
    public func mac(_ message: [UInt8]) -> [UInt8] { macFunction(message) }

    /// A fresh challenge for the 402 (`declarationJSON` goes under `extensions["sign-in-with-x"]`).
    public func challenge(for resource: SIWXResource, now: Int64, lifetimeSeconds: Int64?) -> SIWXChallenge {
        SIWXChallenge.issue(
            for: resource, now: now, lifetimeSeconds: lifetimeSeconds, random: OpenSSL.randomBytes(8), mac: mac)
    }

    /// `SIWXVerifier.verify` with this key. On success the caller consumes `entry.nonce` until
    /// `entry.nonceExpiresAt`, then looks up paid access for `entry.payer`.
    public func verify(header: String, expecting expectation: SIWXExpectation) -> Result<SIWXEntry, SIWXFailure> {
        SIWXVerifier.verify(header: header, expecting: expectation, mac: mac)
    }
}
