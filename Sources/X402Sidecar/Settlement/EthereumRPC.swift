import Synchronization
import X402

/// A JSON-RPC error from a node, e.g. a revert (`code 3`, reason in `data`) or "nonce too low".
public struct RPCError: Error, CustomStringConvertible, Sendable {
    public var code: Int
    public var message: String
    /// `Error(string)` decoded from the error data, when present.
    public var revertReason: String?
    public var description: String { revertReason.map { "\(message) (\($0))" } ?? message }
}

/// A mined transaction's receipt, as much as settlement needs.
public struct TransactionReceipt: Sendable, Equatable {
    public var transactionHash: String
    public var succeeded: Bool
    public var blockNumber: UInt64
    public var logs: [Log]

    public struct Log: Sendable, Equatable {
        public var address: String
        public var topics: [String]
        public var data: String
    }

    /// Whether the receipt carries the token's `Transfer(from, to, value)` for exactly this payment.
    public func hasTransfer(token: [UInt8], from: [UInt8], to: [UInt8], value: [UInt8]) -> Bool {
        logs.contains { log in
            Hex.decode(log.address, byteCount: 20) == token && log.topics.count == 3
                && Hex.decode(log.topics[0], byteCount: 32) == ABI.transferTopic
                && Hex.decode(log.topics[1], byteCount: 32) == ABI.word(from)
                && Hex.decode(log.topics[2], byteCount: 32) == ABI.word(to)
                && Hex.decode(log.data, byteCount: 32) == ABI.word(value)
        }
    }
}

/// The Ethereum JSON-RPC calls a relayer needs, over HTTP.
public final class EthereumRPC: Sendable {
    public let url: String
    let http: HTTPJSONClient
    private let nextId = Atomic<Int>(1)

    public init(url: String, http: HTTPJSONClient = HTTPJSONClient()) {
        self.url = url
        self.http = http
    }

    /// One call; `params` is a JSON array literal.
    public func call(_ method: String, _ params: String) async throws -> JSONValue {
        let id = nextId.add(1, ordering: .relaxed).newValue
        let body = "{\"jsonrpc\":\"2.0\",\"id\":\(id),\"method\":\"\(method)\",\"params\":\(params)}"
        let response = try await http.post(url, json: body)
        guard response.status == 200 else {
            throw OutboundError(kind: .badAnswer, description: "\(method): HTTP \(response.status)")
        }
        let json = try response.json()
        if let error = json["error"]?.objectValue {
            let data = error["data"]?.stringValue.flatMap { Hex.decode($0) } ?? []
            let message = error["message"]?.stringValue ?? "error"
            var reason = ABI.revertReason(data)
            if reason == nil, let range = message.range(of: "execution reverted: ") {
                reason = String(message[range.upperBound...])
            }
            throw RPCError(code: error["code"].flatMap(Self.int) ?? 0, message: message, revertReason: reason)
        }
        guard let result = json["result"] else {
            throw OutboundError(kind: .badAnswer, description: "\(method): no result")
        }
        return result
    }

    static func int(_ value: JSONValue) -> Int? {
        if case .number(let text) = value { return Int(text) }
        return nil
    }

    /// A `0x` quantity as UInt64.
    static func quantity(_ value: JSONValue?) throws -> UInt64 {
        guard let text = value?.stringValue, text.hasPrefix("0x"), let number = UInt64(text.dropFirst(2), radix: 16)
        else { throw OutboundError(kind: .badAnswer, description: "not a quantity: \(String(describing: value))") }
        return number
    }

    static func hexQuantity(_ value: UInt64) -> String { "\"0x" + String(value, radix: 16) + "\"" }

    public func chainId() async throws -> UInt64 { try Self.quantity(try await call("eth_chainId", "[]")) }

    public func pendingNonce(_ address: String) async throws -> UInt64 {
        try Self.quantity(try await call("eth_getTransactionCount", "[\"\(address)\",\"pending\"]"))
    }

    public func gasPrice() async throws -> UInt64 { try Self.quantity(try await call("eth_gasPrice", "[]")) }

    /// The next block's base fee and a median priority fee, or nil when the chain has no fee market.
    public func feeSuggestion() async throws -> (baseFee: UInt64, priorityFee: UInt64)? {
        let history = try await call("eth_feeHistory", "[\"0x1\",\"latest\",[50]]")
        guard case .array(let baseFees)? = history["baseFeePerGas"], let last = baseFees.last,
            let baseFee = try? Self.quantity(last)
        else { return nil }
        var priority: UInt64 = 0
        if case .array(let rewards)? = history["reward"], case .array(let row)? = rewards.last, let first = row.first {
            priority = (try? Self.quantity(first)) ?? 0
        }
        if priority == 0, let suggested = try? Self.quantity(try await call("eth_maxPriorityFeePerGas", "[]")) {
            priority = suggested
        }
        return (baseFee, priority)
    }

    /// `eth_call` at the latest block; throws `RPCError` with the revert reason on revert.
    public func ethCall(from: String? = nil, to: String, data: [UInt8]) async throws -> [UInt8] {
        let fromField = from.map { "\"from\":\"\($0)\"," } ?? ""
        let result = try await call("eth_call", "[{\(fromField)\"to\":\"\(to)\",\"data\":\"\(Hex.encode(data))\"},\"latest\"]")
        guard let text = result.stringValue, let bytes = Hex.decode(text) else {
            throw OutboundError(kind: .badAnswer, description: "eth_call: not hex")
        }
        return bytes
    }

    public func estimateGas(from: String, to: String, data: [UInt8]) async throws -> UInt64 {
        try Self.quantity(
            try await call("eth_estimateGas", "[{\"from\":\"\(from)\",\"to\":\"\(to)\",\"data\":\"\(Hex.encode(data))\"}]"))
    }

    /// Returns the transaction hash the node reports.
    public func sendRawTransaction(_ raw: [UInt8]) async throws -> String {
        guard let hash = try await call("eth_sendRawTransaction", "[\"\(Hex.encode(raw))\"]").stringValue else {
            throw OutboundError(kind: .badAnswer, description: "eth_sendRawTransaction: no hash")
        }
        return hash
    }

    public func receipt(_ hash: String) async throws -> TransactionReceipt? {
        let result = try await call("eth_getTransactionReceipt", "[\"\(hash)\"]")
        guard case .object = result else { return nil }
        var logs: [TransactionReceipt.Log] = []
        if case .array(let items)? = result["logs"] {
            for item in items {
                var topics: [String] = []
                if case .array(let t)? = item["topics"] { topics = t.compactMap(\.stringValue) }
                logs.append(.init(
                    address: item["address"]?.stringValue ?? "", topics: topics, data: item["data"]?.stringValue ?? "0x"))
            }
        }
        return TransactionReceipt(
            transactionHash: result["transactionHash"]?.stringValue ?? hash,
            succeeded: (try? Self.quantity(result["status"])) == 1,
            blockNumber: (try? Self.quantity(result["blockNumber"])) ?? 0, logs: logs)
    }

    /// Whether the node knows the transaction at all (mined, or waiting in its pool). A transaction
    /// that has no receipt but is known is still on its way: sending another one for the same
    /// authorization could only revert.
    public func transactionKnown(_ hash: String) async throws -> Bool {
        if case .object = try await call("eth_getTransactionByHash", "[\"\(hash)\"]") { return true }
        return false
    }

    /// A transaction the node holds but has not mined: what a replacement at its nonce needs.
    public struct WaitingTransaction: Sendable, Equatable {
        public var nonce: UInt64
        public var gasLimit: UInt64
        public var fees: EVMTransaction.Fees
    }

    /// nil when the transaction is mined or unknown (nothing to replace).
    public func waitingTransaction(_ hash: String) async throws -> WaitingTransaction? {
        let result = try await call("eth_getTransactionByHash", "[\"\(hash)\"]")
        guard case .object = result, result["blockNumber"]?.stringValue == nil else { return nil }
        let fees: EVMTransaction.Fees
        let legacyType = ["0x0", "0x1"].contains(result["type"]?.stringValue ?? "")
        if !legacyType, let maxFee = try? Self.quantity(result["maxFeePerGas"]) {
            fees = .eip1559(maxFeePerGas: maxFee, maxPriorityFeePerGas: try Self.quantity(result["maxPriorityFeePerGas"]))
        } else {
            fees = .legacy(gasPrice: try Self.quantity(result["gasPrice"]))
        }
        return WaitingTransaction(nonce: try Self.quantity(result["nonce"]), gasLimit: try Self.quantity(result["gas"]),
                                  fees: fees)
    }

    /// The token balance of `owner` (atomic units, big-endian 32 bytes).
    public func balanceOf(token: String, owner: [UInt8]) async throws -> [UInt8] {
        let result = try await ethCall(to: token, data: ABI.balanceOf(owner))
        guard result.count == 32 else { throw OutboundError(kind: .badAnswer, description: "balanceOf: bad length") }
        return result
    }

    /// EIP-3009 `authorizationState`: true once the nonce was used or canceled.
    public func authorizationUsed(token: String, authorizer: [UInt8], nonce: [UInt8]) async throws -> Bool {
        let result = try await ethCall(to: token, data: ABI.authorizationState(authorizer, nonce: nonce))
        guard result.count == 32 else {
            throw OutboundError(kind: .badAnswer, description: "authorizationState: bad length")
        }
        return result[31] != 0
    }
}
