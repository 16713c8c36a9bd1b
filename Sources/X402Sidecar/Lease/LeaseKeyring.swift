import Synchronization
import X402

/// A lease key that cannot be used, with what is wrong (for `check-config` and the CLI).
public struct LeaseKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// The keys lease tokens are signed and verified with, by `kid`: new tokens are signed with the
/// signing key; a token signed with any listed key verifies. Rotation: add a key, make it the
/// signing key, and drop the old one once the longest lease signed with it has expired.
///
/// Key file format (also what `nginxKeyFile()` renders, with public material), one key a line,
/// `#` comments and blank lines ignored:
///
///     KID HS256 <base64url of the secret, at least 32 bytes>
///     KID EdDSA <base64url of the 32-byte Ed25519 seed>
public final class LeaseKeyring: LeaseVerificationKeys, Sendable {
    /// Key material of one key.
    public enum Key: Sendable {
        /// A shared HMAC-SHA256 secret (at least 32 bytes).
        case hs256(secret: [UInt8])
        /// An Ed25519 private key.
        case edDSA(OpenSSL.Ed25519PrivateKey)

        public var algorithm: LeaseAlgorithm {
            switch self {
            case .hs256: return .hs256
            case .edDSA: return .edDSA
            }
        }
    }

    /// Minimum HS256 secret length, as RFC 7518 §3.2 requires.
    public static let minimumSecretBytes = 32

    /// The key new tokens are signed with.
    public let signingKeyID: String
    /// Key ids in the order given.
    public let keyIDs: [String]
    private let keys: [String: Key]
    private let publicKeys: [String: OpenSSL.Ed25519PublicKey]
    /// Tokens whose signature verified, with their claims: a lease is presented on every request
    /// of a stream or dashboard, and its signature and claims need checking only once per keyring.
    private let verified = Mutex(VerifiedTokens())

    /// - Parameters:
    ///   - keys: every key that may verify a token, in order (ids unique, `LeaseToken.isValidKeyID`).
    ///   - signingKeyID: the one new tokens are signed with; the first key when nil.
    public init(keys: [(kid: String, key: Key)], signingKeyID: String? = nil) throws(LeaseKeyError) {
        guard let first = keys.first else { throw LeaseKeyError("a lease keyring needs at least one key") }
        var table: [String: Key] = [:]
        var publicKeys: [String: OpenSSL.Ed25519PublicKey] = [:]
        for (kid, key) in keys {
            guard LeaseToken.isValidKeyID(kid) else {
                throw LeaseKeyError("lease key id \"\(kid.prefix(64))\" must be 1-64 of A-Z a-z 0-9 . _ -")
            }
            guard table.updateValue(key, forKey: kid) == nil else {
                throw LeaseKeyError("lease key id \(kid) is listed twice")
            }
            switch key {
            case .hs256(let secret):
                guard secret.count >= Self.minimumSecretBytes else {
                    throw LeaseKeyError(
                        "HS256 lease key \(kid) is \(secret.count) bytes; \(Self.minimumSecretBytes) is the minimum"
                    )
                }
            case .edDSA(let privateKey):
                publicKeys[kid] = OpenSSL.Ed25519PublicKey(raw: privateKey.publicKey)
            }
        }
        let signing = signingKeyID ?? first.kid
        guard table[signing] != nil else {
            throw LeaseKeyError("the lease signing key \(signing) is not in the keyring")
        }
        self.signingKeyID = signing
        self.keyIDs = keys.map(\.kid)
        self.keys = table
        self.publicKeys = publicKeys
    }

    /// Reads a key file (format above). The signing key is `signingKeyID`, or the first line's.
    public convenience init(keyFile text: String, signingKeyID: String? = nil) throws(LeaseKeyError) {
        var keys: [(kid: String, key: Key)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 3 else { throw LeaseKeyError("line \(number + 1): expected KID ALG KEY") }
            let kid = String(fields[0])
            guard let material = Base64URL.decode(String(fields[2])) else {
                throw LeaseKeyError("line \(number + 1): the key of \(kid) is not unpadded base64url")
            }
            switch LeaseAlgorithm(rawValue: String(fields[1])) {
            case .hs256: keys.append((kid, .hs256(secret: material)))
            case .edDSA:
                guard let key = OpenSSL.Ed25519PrivateKey(seed: material) else {
                    throw LeaseKeyError("line \(number + 1): the EdDSA key of \(kid) is not a 32-byte seed")
                }
                keys.append((kid, .edDSA(key)))
            case nil: throw LeaseKeyError("line \(number + 1): algorithm must be HS256 or EdDSA")
            }
        }
        try self.init(keys: keys, signingKeyID: signingKeyID)
    }

    /// A new random key as one key-file line (`KID ALG KEY`, private material).
    public static func generateKeyLine(algorithm: LeaseAlgorithm, keyID: String) -> String {
        let material = algorithm == .hs256 ? OpenSSL.randomBytes(32) : OpenSSL.Ed25519PrivateKey().seed
        return "\(keyID) \(algorithm.rawValue) \(Base64URL.encode(material))"
    }

    /// A signed token for `claims`, with the signing key.
    public func issue(_ claims: LeaseClaims) -> String {
        let key = keys[signingKeyID]!
        return LeaseToken.make(claims: claims, algorithm: key.algorithm, keyID: signingKeyID) { input in
            switch key {
            case .hs256(let secret): return OpenSSL.hmacSHA256(key: secret, message: input)
            case .edDSA(let privateKey): return privateKey.sign(input)
            }
        }
    }

    /// `LeaseToken.verify` with this keyring. Authentic tokens are remembered (bounded; a new
    /// keyring, as on reload, starts empty), so a token seen before costs a table lookup and the
    /// request-dependent checks (time, host, route), which run every time.
    public func verify(_ token: String, expecting expectation: LeaseExpectation) -> Result<LeaseClaims, LeaseFailure> {
        let claims: LeaseClaims
        if let known = verified.withLock({ $0.claims(of: token) }) {
            claims = known
        } else {
            switch LeaseToken.authenticate(token, keys: self) {
            case .failure(let failure): return .failure(failure)
            case .success(let authentic): claims = authentic
            }
            verified.withLock { $0.remember(token, claims, now: expectation.now) }
        }
        if let failure = LeaseToken.check(claims, expecting: expectation) { return .failure(failure) }
        return .success(claims)
    }

    public func algorithm(ofKey kid: String) -> LeaseAlgorithm? { keys[kid]?.algorithm }

    public func isValidSignature(
        _ signature: [UInt8], over signingInput: UnsafeRawBufferPointer, key kid: String
    ) -> Bool {
        switch keys[kid] {
        case .hs256(let secret)?:
            let expected = OpenSSL.hmacSHA256(key: secret, message: signingInput)
            return expected.withUnsafeBytes { e in signature.withUnsafeBytes { OpenSSL.constantTimeEquals(e, $0) } }
        case .edDSA?:
            guard let publicKey = publicKeys[kid] else { return false }
            return signature.withUnsafeBytes { publicKey.isValidSignature($0, for: signingInput) }
        case nil:
            return false
        }
    }

    /// The key file the nginx module reads: `KID ALG KEY` per line, HS256 → base64url of the
    /// secret, EdDSA → base64url of the 32-byte raw public key. It holds HS256 secrets: write it
    /// readable by nginx's user only.
    public func nginxKeyFile() -> String {
        var out = "# x402-nginx lease keys: KID ALG KEY (HS256: secret, EdDSA: raw public key), base64url\n"
        for kid in keyIDs {
            switch keys[kid]! {
            case .hs256(let secret): out += "\(kid) HS256 \(Base64URL.encode(secret))\n"
            case .edDSA(let privateKey): out += "\(kid) EdDSA \(Base64URL.encode(privateKey.publicKey))\n"
            }
        }
        return out
    }
}

/// The authentic tokens a keyring has seen, at most `capacity`; when full, the expired ones go,
/// and all of them if that frees nothing (they verify again on their next use).
struct VerifiedTokens {
    static let capacity = 8192
    private var table: [String: LeaseClaims] = [:]

    func claims(of token: String) -> LeaseClaims? { table[token] }

    mutating func remember(_ token: String, _ claims: LeaseClaims, now: Int64) {
        if table.count >= Self.capacity {
            table = table.filter { $0.value.expiresAt > now }
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
        }
        table[token] = claims
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" || first == "\r" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" || last == "\r" { slice = slice.dropLast() }
        return slice
    }
}
