import X402

/// What the chain says about one EIP-3009 authorization. Asked when a request that may have moved
/// the money got no answer: only the chain knows whether the payer was charged.
public enum AuthorizationOnChain: Sendable, Equatable {
    /// Not used and not canceled: nothing was transferred (yet).
    case unused
    /// Transferred; `transaction` is the one that emitted `AuthorizationUsed`, nil when that log is
    /// older than the blocks we look through (the transfer still happened: `authorizationState`).
    case transferred(transaction: String?)
    /// The payer canceled it (`cancelAuthorization`): it can never transfer, and nothing was charged.
    case canceled
}

extension EthereumRPC {
    static let authorizationUsedTopic = Keccak256.hash(Array("AuthorizationUsed(address,bytes32)".utf8))
    static let authorizationCanceledTopic = Keccak256.hash(Array("AuthorizationCanceled(address,bytes32)".utf8))

    /// `authorizationState`, then the token's `AuthorizationUsed`/`AuthorizationCanceled` log over
    /// the last `lookback` blocks for the transaction that used it. Short on purpose: public nodes
    /// bound `eth_getLogs` ranges and some scan every block of it; the lookup runs right after the
    /// unanswered request, when the transfer is in the newest blocks (older: `transferred(nil)`).
    public func authorization(token: String, authorizer: [UInt8], nonce: [UInt8], lookback: UInt64 = 32)
        async throws -> AuthorizationOnChain
    {
        guard try await authorizationUsed(token: token, authorizer: authorizer, nonce: nonce) else { return .unused }
        let latest = try Self.quantity(try await call("eth_blockNumber", "[]"))
        let from = latest > lookback ? latest - lookback : 0
        let topics = "[[\"\(Hex.encode(Self.authorizationUsedTopic))\",\"\(Hex.encode(Self.authorizationCanceledTopic))\"],"
            + "\"\(Hex.encode(ABI.word(authorizer)))\",\"\(Hex.encode(ABI.word(nonce)))\"]"
        let logs = try await call(
            "eth_getLogs",
            "[{\"address\":\"\(token)\",\"fromBlock\":\"0x\(String(from, radix: 16))\",\"toBlock\":\"latest\","
                + "\"topics\":\(topics)}]")
        guard case .array(let entries) = logs else { return .transferred(transaction: nil) }
        for entry in entries {
            guard case .array(let topics)? = entry["topics"], let first = topics.first?.stringValue,
                entry["removed"] != .bool(true)
            else { continue }
            if Hex.decode(first, byteCount: 32) == Self.authorizationCanceledTopic { return .canceled }
            if let hash = entry["transactionHash"]?.stringValue { return .transferred(transaction: hash) }
        }
        return .transferred(transaction: nil)
    }
}
