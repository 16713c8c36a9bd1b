internal import COpenSSL

/// libcrypto: random bytes, SHA-256, HMAC-SHA256, constant-time comparison, the ES256 /
/// EdDSA signatures of Coinbase CDP API-key JWTs, and the Ed25519 keys of lease tokens.
///
/// The only file that touches OpenSSL.
public enum OpenSSL {
    /// Cryptographically secure random bytes (RAND_bytes). Traps if the CSPRNG fails: nothing
    /// that needs unpredictable ids can continue safely without it.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let status = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(status == 1, "RAND_bytes failed")
        return bytes
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        data.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { output in
                _ = SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return digest
    }

    /// SHA-1, for Redis script ids only (EVALSHA names scripts by it); never for security.
    public static func sha1(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 20)
        data.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { output in
                _ = SHA1(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return digest
    }

    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        key.withUnsafeBufferPointer { keyBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                digest.withUnsafeMutableBufferPointer { output in
                    _ = HMAC(
                        EVP_sha256(), keyBuffer.baseAddress, Int32(keyBuffer.count), messageBuffer.baseAddress,
                        messageBuffer.count, output.baseAddress, &length)
                }
            }
        }
        return digest
    }

    /// Compares secrets without leaking where they differ through timing.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }

    public enum SigningKey: Sendable {
        /// An EC P-256 private key in PEM (CDP's "ECDSA" keys): JWS `ES256`.
        case ecP256(pem: String)
        /// A 32-byte Ed25519 seed (CDP's base64 keys hold seed ‖ public key): JWS `EdDSA`.
        case ed25519(seed: [UInt8])

        public var jwsAlgorithm: String {
            switch self {
            case .ecP256: return "ES256"
            case .ed25519: return "EdDSA"
            }
        }
    }

    /// Signs `message` as JWS wants it: ES256 → raw `r ‖ s` (64 bytes, not DER); EdDSA → 64 bytes.
    /// nil when the key does not load.
    public static func sign(_ message: [UInt8], with key: SigningKey) -> [UInt8]? {
        let pkey: OpaquePointer?
        switch key {
        case .ecP256(let pem):
            var pem = pem
            pkey = pem.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { COpenSSL_readPrivateKeyPEM($0.baseAddress, Int32($0.count)) }
            }
        case .ed25519(let seed):
            guard seed.count == 32 else { return nil }
            pkey = seed.withUnsafeBufferPointer { EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) }
        }
        guard let pkey else { return nil }
        defer { EVP_PKEY_free(pkey) }
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        let digest: OpaquePointer?
        if case .ecP256 = key { digest = EVP_sha256() } else { digest = nil }
        guard EVP_DigestSignInit(context, nil, digest, nil, pkey) == 1 else { return nil }
        var length = 0
        guard message.withUnsafeBufferPointer({ EVP_DigestSign(context, nil, &length, $0.baseAddress, $0.count) }) == 1
        else { return nil }
        var signature = [UInt8](repeating: 0, count: length)
        let signed = signature.withUnsafeMutableBufferPointer { output in
            message.withUnsafeBufferPointer { EVP_DigestSign(context, output.baseAddress, &length, $0.baseAddress, $0.count) }
        }
        guard signed == 1 else { return nil }
        signature = Array(signature.prefix(length))
        guard case .ecP256 = key else { return signature }
        // DER ECDSA-Sig-Value → fixed-width r ‖ s.
        var cursor: UnsafePointer<UInt8>? = nil
        return signature.withUnsafeBufferPointer { der -> [UInt8]? in
            cursor = der.baseAddress
            guard let parsed = d2i_ECDSA_SIG(nil, &cursor, der.count) else { return nil }
            defer { ECDSA_SIG_free(parsed) }
            var raw = [UInt8](repeating: 0, count: 64)
            let ok = raw.withUnsafeMutableBufferPointer { out in
                BN_bn2binpad(ECDSA_SIG_get0_r(parsed), out.baseAddress, 32) == 32
                    && BN_bn2binpad(ECDSA_SIG_get0_s(parsed), out.baseAddress! + 32, 32) == 32
            }
            return ok ? raw : nil
        }
    }
}

// MARK: - Ed25519 keys for lease tokens (JWS `EdDSA`)

extension OpenSSL {
    /// An Ed25519 private key held as an `EVP_PKEY` for its lifetime, so signing a lease does not
    /// re-import the key each time.
    ///
    /// `@unchecked Sendable`: the key is never mutated after creation, and OpenSSL allows one
    /// `EVP_PKEY` to be used by several threads at once for signing (each call has its own
    /// `EVP_MD_CTX`).
    public final class Ed25519PrivateKey: @unchecked Sendable {
        private let pkey: OpaquePointer

        /// Loads a 32-byte seed (RFC 8032 private key); nil for any other length.
        public init?(seed: [UInt8]) {
            guard seed.count == 32,
                let pkey = seed.withUnsafeBufferPointer({
                    EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
                })
            else { return nil }
            self.pkey = pkey
        }

        /// A fresh key from the CSPRNG.
        public convenience init() {
            self.init(seed: OpenSSL.randomBytes(32))!
        }

        deinit { EVP_PKEY_free(pkey) }

        /// The 32-byte seed, for writing a key file.
        public var seed: [UInt8] { OpenSSL.rawKey(pkey, private: true) }

        /// The 32-byte raw public key (RFC 8032 encoding), as JWKs (`x`) and our nginx key file carry it.
        public var publicKey: [UInt8] { OpenSSL.rawKey(pkey, private: false) }

        /// A 64-byte Ed25519 signature of `message` (pure Ed25519, no pre-hash).
        public func sign(_ message: UnsafeRawBufferPointer) -> [UInt8] {
            guard let context = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new failed") }
            defer { EVP_MD_CTX_free(context) }
            var signature = [UInt8](repeating: 0, count: 64)
            var length = 64
            let status = signature.withUnsafeMutableBufferPointer { output -> Int32 in
                guard EVP_DigestSignInit(context, nil, nil, nil, pkey) == 1 else { return 0 }
                return EVP_DigestSign(
                    context, output.baseAddress, &length, message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    message.count)
            }
            precondition(status == 1 && length == 64, "Ed25519 signing failed")
            return signature
        }
    }

    /// An Ed25519 public key held as an `EVP_PKEY`. `@unchecked Sendable` for the same reason as
    /// `Ed25519PrivateKey`: immutable after creation, each verification has its own context.
    public final class Ed25519PublicKey: @unchecked Sendable {
        private let pkey: OpaquePointer
        /// The 32-byte raw key.
        public let rawRepresentation: [UInt8]

        /// Loads a 32-byte raw public key; nil for any other length or an invalid point.
        public init?(raw: [UInt8]) {
            guard raw.count == 32,
                let pkey = raw.withUnsafeBufferPointer({
                    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
                })
            else { return nil }
            self.pkey = pkey
            self.rawRepresentation = raw
        }

        deinit { EVP_PKEY_free(pkey) }

        /// Whether `signature` (64 bytes) is a valid Ed25519 signature of `message` by this key.
        public func isValidSignature(_ signature: UnsafeRawBufferPointer, for message: UnsafeRawBufferPointer) -> Bool {
            guard signature.count == 64, let context = EVP_MD_CTX_new() else { return false }
            defer { EVP_MD_CTX_free(context) }
            guard EVP_DigestVerifyInit(context, nil, nil, nil, pkey) == 1 else { return false }
            return EVP_DigestVerify(
                context, signature.baseAddress?.assumingMemoryBound(to: UInt8.self), signature.count,
                message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
        }
    }

    private static func rawKey(_ pkey: OpaquePointer, private isPrivate: Bool) -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 32)
        var length = 32
        let status = key.withUnsafeMutableBufferPointer { buffer in
            isPrivate
                ? EVP_PKEY_get_raw_private_key(pkey, buffer.baseAddress, &length)
                : EVP_PKEY_get_raw_public_key(pkey, buffer.baseAddress, &length)
        }
        precondition(status == 1 && length == 32, "Ed25519 raw key export failed")
        return key
    }

    /// HMAC-SHA256 over bytes in place (a lease's signing input is a slice of the token).
    public static func hmacSHA256(key: [UInt8], message: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        key.withUnsafeBufferPointer { keyBuffer in
            digest.withUnsafeMutableBufferPointer { output in
                _ = HMAC(
                    EVP_sha256(), keyBuffer.baseAddress, Int32(keyBuffer.count),
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, output.baseAddress,
                    &length)
            }
        }
        return digest
    }

    /// Constant-time comparison of raw buffers (see `constantTimeEquals(_:_:)`).
    public static func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
    }
}
