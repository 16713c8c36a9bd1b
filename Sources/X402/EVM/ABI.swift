/// The few Solidity ABI encodings settlement needs: EIP-3009 calls, `balanceOf`,
/// `authorizationState`, and decoding `Error(string)` revert data.
public enum ABI {
    /// First four bytes of Keccak-256 of a function signature.
    public static func selector(_ signature: String) -> [UInt8] {
        Array(Keccak256.hash(Array(signature.utf8)).prefix(4))
    }

    /// A 32-byte word holding `bytes` right-aligned (addresses, uint256 values).
    public static func word(_ bytes: [UInt8]) -> [UInt8] {
        precondition(bytes.count <= 32)
        return [UInt8](repeating: 0, count: 32 - bytes.count) + bytes
    }

    public static func word(_ value: UInt64) -> [UInt8] { word(RLP.minimalBytes(value)) }

    /// `transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)`.
    public static let transferWithAuthorizationSelector: [UInt8] = [0xE3, 0xEE, 0x16, 0x0E]
    /// `balanceOf(address)`.
    public static let balanceOfSelector: [UInt8] = [0x70, 0xA0, 0x82, 0x31]
    /// `authorizationState(address,bytes32)`.
    public static let authorizationStateSelector: [UInt8] = [0xE9, 0x4A, 0x01, 0x02]
    /// `Error(string)`, the revert-with-reason envelope.
    public static let errorSelector: [UInt8] = [0x08, 0xC3, 0x79, 0xA0]
    /// `Transfer(address,address,uint256)` event topic.
    public static let transferTopic: [UInt8] = Keccak256.hash(Array("Transfer(address,address,uint256)".utf8))

    public static func balanceOf(_ owner: [UInt8]) -> [UInt8] { balanceOfSelector + word(owner) }

    public static func authorizationState(_ authorizer: [UInt8], nonce: [UInt8]) -> [UInt8] {
        authorizationStateSelector + word(authorizer) + word(nonce)
    }

    /// The reason inside `Error(string)` revert data, or nil if `data` is not one.
    public static func revertReason(_ data: [UInt8]) -> String? {
        guard data.count >= 68, Array(data[0..<4]) == errorSelector else { return nil }
        let body = Array(data[4...])
        guard let offset = smallInt(body[0..<32]), offset + 32 <= body.count,
            let length = smallInt(body[offset..<(offset + 32)]), offset + 32 + length <= body.count
        else { return nil }
        return String(decoding: body[(offset + 32)..<(offset + 32 + length)], as: UTF8.self)
    }

    /// A word that fits in an Int (the upper 24 bytes zero), else nil.
    public static func smallInt(_ word: ArraySlice<UInt8>) -> Int? {
        guard word.count == 32, word.prefix(24).allSatisfy({ $0 == 0 }) else { return nil }
        var value = 0
        for byte in word.suffix(8) { value = value << 8 | Int(byte) }
        return value >= 0 ? value : nil
    }
}

/// One EIP-3009 `transferWithAuthorization` call, with every field already checked by the verifier.
public struct TransferAuthorizationCall: Sendable, Equatable {
    public var token: [UInt8]
    public var from: [UInt8]
    public var to: [UInt8]
    public var value: [UInt8]
    public var validAfter: [UInt8]
    public var validBefore: [UInt8]
    public var nonce: [UInt8]
    /// `r ‖ s ‖ v`, v = 27|28.
    public var signature: [UInt8]

    public init?(token: String, authorization: Authorization, signature: String) {
        guard let token = Hex.decode(token, byteCount: 20),
            let from = Hex.decode(authorization.from, byteCount: 20),
            let to = Hex.decode(authorization.to, byteCount: 20),
            let value = Amount.uint256(authorization.value),
            let validAfter = Amount.uint256(authorization.validAfter),
            let validBefore = Amount.uint256(authorization.validBefore),
            let nonce = Hex.decode(authorization.nonce, byteCount: 32),
            let signature = Hex.decode(signature, byteCount: 65)
        else { return nil }
        self.token = token
        self.from = from
        self.to = to
        self.value = value
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.nonce = nonce
        self.signature = signature
    }

    /// The calldata: selector `0xe3ee160e` and nine words.
    public var calldata: [UInt8] {
        var data = ABI.transferWithAuthorizationSelector
        data.reserveCapacity(4 + 9 * 32)
        data += ABI.word(from) + ABI.word(to) + ABI.word(value) + ABI.word(validAfter) + ABI.word(validBefore)
        data += nonce
        data += ABI.word([signature[64]])
        data += signature[0..<32] + signature[32..<64]
        return data
    }
}
