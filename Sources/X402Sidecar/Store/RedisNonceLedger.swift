import X402

/// The nonce ledger shared by every sidecar through Redis. Each decision is one atomic command or
/// script: on the nonce's key alone (its whole identity inside the key's hash tag, so it works the
/// same on a single Redis, Sentinel or Cluster), or with the payer's exposure keys
/// (`RedisNonceLedger+Exposure.swift`).
///
/// Values: `R|<token>|<expiresAt>` (reserved) and `S|<token>|<expiresAt>|<tx>` (settled); the key
/// expires at `expiresAt` (EXAT), when the chain itself refuses the authorization.
public final class RedisNonceLedger: NonceLedger {
    public let client: RedisClient
    public let keyPrefix: String

    /// How long a settled payment keeps counting against its payer's exposure.
    let settledHoldSeconds: Int64

    public init(client: RedisClient, keyPrefix: String = "x402", exposureSettledHoldSeconds: Int64 = 15) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.settledHoldSeconds = exposureSettledHoldSeconds
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
        try await client.run(
            Self.settleHeld, keys: [redisKey(key)] + exposureKeys(key),
            arguments: ["R|\(token)|", transaction, key.nonce, String(UnixClock.seconds() + settledHoldSeconds)])
            == .integer(1)
    }

    @discardableResult
    public func release(_ key: NonceKey, token: String) async throws -> Bool {
        try await client.run(
            Self.releaseHeld, keys: [redisKey(key)] + exposureKeys(key), arguments: ["R|\(token)|", key.nonce])
            == .integer(1)
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
