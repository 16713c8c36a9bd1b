import Synchronization
import X402

/// Whose balance of which token on which chain.
public struct BalanceQuery: Sendable, Equatable {
    public var chainId: UInt64
    /// Token contract and payer, lowercase `0x` + 40 hex.
    public var asset: String
    public var payer: String

    public init(chainId: UInt64, asset: String, payer: String) {
        self.chainId = chainId
        self.asset = asset.lowercased()
        self.payer = payer.lowercased()
    }
}

public struct BalanceError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Payers' token balances for exposure control: `balanceOf` through the network's RPC, cached
/// per payer for `cacheSeconds`. A cached balance may be higher than the chain's by what settled
/// since it was read; the ledgers keep a settled payment counted for longer than this cache lives
/// (`exposureSettledHoldSeconds`), so that difference is always counted as still pending.
public final class PayerBalances: Sendable {
    private struct Entry {
        var balance: UInt128
        var readAt: ContinuousClock.Instant
    }

    let chains: [UInt64: EthereumRPC]
    public let cacheSeconds: Int64
    private let cache = Mutex([String: Entry]())
    private let capacity = 100_000

    public init(chains: [UInt64: EthereumRPC], cacheSeconds: Int64) {
        self.chains = chains
        self.cacheSeconds = cacheSeconds
    }

    /// The settled hold the ledgers need for this cache: its lifetime plus a margin for the RPC's
    /// own lag behind the chain's head.
    public static func settledHoldSeconds(cacheSeconds: Int64) -> Int64 { cacheSeconds + 10 }

    /// In place when cached, else one `eth_call`.
    public func balance(_ query: BalanceQuery) -> StoreAnswer<UInt128> {
        let key = "\(query.chainId)|\(query.asset)|\(query.payer)"
        let lifetime = Duration.seconds(cacheSeconds)
        if let entry = cache.withLock({ $0[key] }), entry.readAt.duration(to: .now) < lifetime {
            return .ready(.success(entry.balance))
        }
        guard let rpc = chains[query.chainId] else {
            let why = "no rpc_urls entry for chain \(query.chainId): balances cannot be read"
            return .ready(.failure(BalanceError(description: why)))
        }
        return .suspending { [self] in
            guard let owner = Hex.decode(query.payer, byteCount: 20) else {
                throw BalanceError(description: "payer \(query.payer) is not an address")
            }
            let readAt = ContinuousClock.now
            let balance = ExposureHold.amount(word: try await rpc.balanceOf(token: query.asset, owner: owner))
            cache.withLock { table in
                if table.count >= capacity { table.removeAll(keepingCapacity: true) }
                table[key] = Entry(balance: balance, readAt: readAt)
            }
            return balance
        }
    }
}
