/// EIP-712 hashing for EIP-3009 `TransferWithAuthorization`.
public enum EIP712 {
    /// keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    public static let domainTypeHash = Keccak256.hash(
        Array("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)".utf8))

    /// keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,…)")
    public static let transferWithAuthorizationTypeHash = Keccak256.hash(
        Array(
            ("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
                + "uint256 validBefore,bytes32 nonce)").utf8))

    public static func domainSeparator(name: String, version: String, chainId: UInt64, verifyingContract: [UInt8])
        -> [UInt8]
    {
        var encoded = domainTypeHash
        encoded.reserveCapacity(160)
        encoded += Keccak256.hash(Array(name.utf8))
        encoded += Keccak256.hash(Array(version.utf8))
        encoded += Amount.uint256(chainId)
        encoded += leftPadAddress(verifyingContract)
        return Keccak256.hash(encoded)
    }

    /// hashStruct(TransferWithAuthorization). Addresses are 20 bytes, integers 32-byte big-endian.
    public static func transferWithAuthorizationHash(
        from: [UInt8], to: [UInt8], value: [UInt8], validAfter: [UInt8], validBefore: [UInt8], nonce: [UInt8]
    ) -> [UInt8] {
        var encoded = transferWithAuthorizationTypeHash
        encoded.reserveCapacity(224)
        encoded += leftPadAddress(from)
        encoded += leftPadAddress(to)
        encoded += value
        encoded += validAfter
        encoded += validBefore
        encoded += nonce
        return Keccak256.hash(encoded)
    }

    /// keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ structHash).
    public static func digest(domainSeparator: [UInt8], structHash: [UInt8]) -> [UInt8] {
        var encoded: [UInt8] = [0x19, 0x01]
        encoded.reserveCapacity(66)
        encoded += domainSeparator
        encoded += structHash
        return Keccak256.hash(encoded)
    }

    static func leftPadAddress(_ address: [UInt8]) -> [UInt8] {
        [UInt8](repeating: 0, count: 32 - address.count) + address
    }
}
