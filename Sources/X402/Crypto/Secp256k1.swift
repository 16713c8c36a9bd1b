internal import CSecp256k1

/// secp256k1 public-key recovery and signing for Ethereum signatures (`r ‖ s ‖ v`, v = 27|28).
///
/// The only file that touches libsecp256k1.
public enum Secp256k1 {
    /// n / 2 for the curve order n: signatures with a larger `s` are malleable copies and are refused.
    static let halfOrder: [UInt8] = [
        0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
    ]

    public enum RecoveryError: Error, Equatable {
        case badLength, badV, highS, unrecoverable
    }

    /// Recovers the Ethereum address (20 bytes) that signed `digest` (32 bytes) with the 65-byte
    /// signature `r ‖ s ‖ v`. Refuses v ∉ {27, 28} and high-s signatures.
    public static func recoverAddress(digest: [UInt8], signature: [UInt8]) -> Result<[UInt8], RecoveryError> {
        guard digest.count == 32, signature.count == 65 else { return .failure(.badLength) }
        let v = signature[64]
        guard v == 27 || v == 28 else { return .failure(.badV) }
        if isHighS(signature[32..<64]) { return .failure(.highS) }
        let context = Context.shared.pointer
        var recoverable = secp256k1_ecdsa_recoverable_signature()
        let parsed = signature.withUnsafeBufferPointer { sig in
            secp256k1_ecdsa_recoverable_signature_parse_compact(context, &recoverable, sig.baseAddress!, Int32(v - 27))
        }
        guard parsed == 1 else { return .failure(.unrecoverable) }
        var publicKey = secp256k1_pubkey()
        let recovered = digest.withUnsafeBufferPointer {
            secp256k1_ecdsa_recover(context, &publicKey, &recoverable, $0.baseAddress!)
        }
        guard recovered == 1 else { return .failure(.unrecoverable) }
        return .success(address(of: publicKey, context: context))
    }

    /// Signs `digest` with `privateKey` (32 bytes), returning `r ‖ s ‖ v` with v = 27|28 and low s
    /// (libsecp256k1 always produces low-s signatures). `nil` for an invalid key.
    public static func sign(digest: [UInt8], privateKey: [UInt8]) -> [UInt8]? {
        guard digest.count == 32, privateKey.count == 32 else { return nil }
        let context = Context.shared.pointer
        var recoverable = secp256k1_ecdsa_recoverable_signature()
        let signed = digest.withUnsafeBufferPointer { msg in
            privateKey.withUnsafeBufferPointer { key in
                secp256k1_ecdsa_sign_recoverable(context, &recoverable, msg.baseAddress!, key.baseAddress!, nil, nil)
            }
        }
        guard signed == 1 else { return nil }
        var output = [UInt8](repeating: 0, count: 64)
        var recoveryId: Int32 = 0
        _ = output.withUnsafeMutableBufferPointer {
            secp256k1_ecdsa_recoverable_signature_serialize_compact(context, $0.baseAddress!, &recoveryId, &recoverable)
        }
        output.append(UInt8(27 + recoveryId))
        return output
    }

    /// The Ethereum address (20 bytes) of `privateKey`, or `nil` for an invalid key.
    public static func address(privateKey: [UInt8]) -> [UInt8]? {
        guard privateKey.count == 32 else { return nil }
        let context = Context.shared.pointer
        var publicKey = secp256k1_pubkey()
        let created = privateKey.withUnsafeBufferPointer {
            secp256k1_ec_pubkey_create(context, &publicKey, $0.baseAddress!)
        }
        guard created == 1 else { return nil }
        return address(of: publicKey, context: context)
    }

    private static func address(of publicKey: secp256k1_pubkey, context: OpaquePointer) -> [UInt8] {
        var publicKey = publicKey
        var serialized = [UInt8](repeating: 0, count: 65)
        var length = 65
        _ = serialized.withUnsafeMutableBufferPointer {
            secp256k1_ec_pubkey_serialize(context, $0.baseAddress!, &length, &publicKey, CSecp256k1_uncompressed())
        }
        // Address = last 20 bytes of Keccak-256 over the 64-byte X ‖ Y (without the 0x04 prefix).
        let hash = serialized.withUnsafeBytes { Keccak256.hash(UnsafeRawBufferPointer(rebasing: $0[1..<65])) }
        return Array(hash[12..<32])
    }

    static func isHighS(_ s: ArraySlice<UInt8>) -> Bool {
        for (byte, limit) in zip(s, halfOrder) where byte != limit {
            return byte > limit
        }
        return false
    }

    /// One context for the process. libsecp256k1 contexts are read-only after creation (we never
    /// randomize it afterwards), so sharing one across threads is safe; hence `@unchecked Sendable`.
    private final class Context: @unchecked Sendable {
        static let shared = Context()
        let pointer: OpaquePointer

        private init() {
            pointer = secp256k1_context_create(CSecp256k1_contextFlags())!
        }

        deinit { secp256k1_context_destroy(pointer) }
    }
}
