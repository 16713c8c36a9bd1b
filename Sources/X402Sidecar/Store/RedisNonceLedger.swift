import X402

/// The nonce ledger shared by every sidecar through Redis. Each decision is one atomic command or
/// script on one key, and the whole identity sits inside the key's hash tag, so it works the same
/// on a single Redis, Sentinel or Cluster.
///
/// Values: `R|<token>|<expiresAt>` (reserved) and `S|<token>|<expiresAt>|<tx>` (settled); the key
/// expires at `expiresAt` (EXAT), when the chain itself refuses the authorization.
public final class RedisNonceLedger: NonceLedger {
    public let client: RedisClient
    public let keyPrefix: String

    static let settle = RedisScript(
        """
        local v = redis.call('GET', KEYS[1])
        if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
          redis.call('SET', KEYS[1], 'S' .. string.sub(v, 2) .. '|' .. ARGV[2], 'KEEPTTL')
          return 1
        end
        return 0
        """)

    static let release = RedisScript(
        """
        local v = redis.call('GET', KEYS[1])
        if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          return 1
        end
        return 0
        """)

    public init(client: RedisClient, keyPrefix: String = "x402") {
        self.client = client
        self.keyPrefix = keyPrefix
    }

    func redisKey(_ key: NonceKey) -> String { "\(keyPrefix):nonce:{\(key)}" }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64) -> StoreAnswer<Bool> {
        .suspending { try await self.reserveRemotely(key, token: token, expiresAt: expiresAt) }
    }

    private func reserveRemotely(_ key: NonceKey, token: String, expiresAt: Int64) async throws -> Bool {
        let reply = try await client.send(
            ["SET", redisKey(key), "R|\(token)|\(expiresAt)", "NX", "EXAT", String(expiresAt)])
        switch reply {
        case .simple("OK"): return true
        case .bulk(nil): return false
        default: throw RedisClientError(code: .protocolError, message: "unexpected SET reply")
        }
    }

    @discardableResult
    public func markSettled(_ key: NonceKey, token: String, transaction: String) async throws -> Bool {
        try await client.run(Self.settle, keys: [redisKey(key)], arguments: ["R|\(token)|", transaction]) == .integer(1)
    }

    @discardableResult
    public func release(_ key: NonceKey, token: String) async throws -> Bool {
        try await client.run(Self.release, keys: [redisKey(key)], arguments: ["R|\(token)|"]) == .integer(1)
    }

    public func record(_ key: NonceKey) async throws -> NonceRecord? {
        guard let value = try await client.send(["GET", redisKey(key)]).string else { return nil }
        let fields = value.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 3, let expiresAt = Int64(fields[2]) else { return nil }
        switch fields[0] {
        case "R": return NonceRecord(state: .reserved, token: fields[1], expiresAt: expiresAt)
        case "S" where fields.count == 4:
            return NonceRecord(state: .settled, token: fields[1], expiresAt: expiresAt, transaction: fields[3])
        default: return nil
        }
    }

    public func checkReady() async throws {
        try await client.ping()
    }
}
