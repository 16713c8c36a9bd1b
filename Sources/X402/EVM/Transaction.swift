/// An Ethereum transaction calling a contract, signed either as EIP-1559 (type 2) or as a legacy
/// EIP-155 transaction, for chains without a fee market.
public struct EVMTransaction: Sendable, Equatable {
    public enum Fees: Sendable, Equatable {
        case legacy(gasPrice: UInt64)
        case eip1559(maxFeePerGas: UInt64, maxPriorityFeePerGas: UInt64)
    }

    public var chainId: UInt64
    public var nonce: UInt64
    public var gasLimit: UInt64
    public var fees: Fees
    public var to: [UInt8]
    public var value: UInt64
    public var data: [UInt8]

    public init(chainId: UInt64, nonce: UInt64, gasLimit: UInt64, fees: Fees, to: [UInt8], value: UInt64 = 0, data: [UInt8]) {
        self.chainId = chainId
        self.nonce = nonce
        self.gasLimit = gasLimit
        self.fees = fees
        self.to = to
        self.value = value
        self.data = data
    }

    public struct Signed: Sendable, Equatable {
        /// What `eth_sendRawTransaction` takes.
        public var raw: [UInt8]
        /// Keccak-256 of `raw`: the transaction hash.
        public var hash: [UInt8]
    }

    /// Signs with `privateKey` (32 bytes); nil for an invalid key.
    public func signed(privateKey: [UInt8]) -> Signed? {
        switch fees {
        case .eip1559(let maxFee, let maxPriority):
            let fields: [RLP.Item] = [
                .uint(chainId), .uint(nonce), .uint(maxPriority), .uint(maxFee), .uint(gasLimit),
                .bytes(to), .uint(value), .bytes(data), .list([]),
            ]
            let digest = Keccak256.hash([0x02] + RLP.encode(.list(fields)))
            guard let signature = Secp256k1.sign(digest: digest, privateKey: privateKey) else { return nil }
            let yParity = UInt64(signature[64] - 27)
            let raw = [0x02] + RLP.encode(.list(fields + [
                .uint(yParity), .quantity(Array(signature[0..<32])), .quantity(Array(signature[32..<64])),
            ]))
            return Signed(raw: raw, hash: Keccak256.hash(raw))
        case .legacy(let gasPrice):
            let base: [RLP.Item] = [
                .uint(nonce), .uint(gasPrice), .uint(gasLimit), .bytes(to), .uint(value), .bytes(data),
            ]
            let digest = Keccak256.hash(RLP.encode(.list(base + [.uint(chainId), .uint(0), .uint(0)])))
            guard let signature = Secp256k1.sign(digest: digest, privateKey: privateKey) else { return nil }
            let v = UInt64(signature[64] - 27) + chainId * 2 + 35
            let raw = RLP.encode(.list(base + [
                .uint(v), .quantity(Array(signature[0..<32])), .quantity(Array(signature[32..<64])),
            ]))
            return Signed(raw: raw, hash: Keccak256.hash(raw))
        }
    }
}
