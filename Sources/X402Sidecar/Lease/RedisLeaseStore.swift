import X402

/// Lease state shared by every sidecar through Redis. Each per-request decision is one script on
/// the keys of one lease, all under the hash tag `{jti}` (one Cluster slot):
///
/// - `PREFIX:lease:{jti}`: hash `revoked` (`1` or `renewed`), `successor`, `requests`;
/// - `PREFIX:lease:{jti}:slots`: sorted set of concurrency slots scored by their expiry;
/// - `PREFIX:payer:{0xpayer}:leases`: sorted set of the payer's jtis scored by `exp`;
/// - `PREFIX:siwx:{nonce}`: a consumed SIWX nonce; `PREFIX:paid:{payer|host|route}`: paid access.
///
/// Every key expires at the lease's `exp` plus `retentionSeconds` (EXPIREAT), or at its record's own
/// expiry, so nothing outlives what it is about. Revocations are also appended to a log that each
/// sidecar's `RevocationMirror` follows, so leases without counters are admitted without a round trip.
public final class RedisLeaseStore: LeaseStore {
    public let client: RedisClient
    public let keyPrefix: String
    public let retentionSeconds: Int64
    /// When set (and running), admits of leases without counters are answered from it.
    public let mirror: RevocationMirror?

    /// ARGV: now, expireAt (exp + retention), maxRequests (0: none), maxConcurrent (0: none), slot,
    /// slotExpiresAt. Returns {code, requests}: 0 admitted, 1 revoked, 2 request limit, 3 concurrency.
    static let admit = RedisScript(
        """
        if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return {1, 0} end
        local now, expireAt = tonumber(ARGV[1]), tonumber(ARGV[2])
        local maxRequests, maxConcurrent = tonumber(ARGV[3]), tonumber(ARGV[4])
        if maxConcurrent > 0 then
          redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
          if not redis.call('ZSCORE', KEYS[2], ARGV[5]) and redis.call('ZCARD', KEYS[2]) >= maxConcurrent then
            return {3, 0}
          end
        end
        local count = 0
        if maxRequests > 0 then
          count = tonumber(redis.call('HGET', KEYS[1], 'requests') or '0')
          if count >= maxRequests then return {2, count} end
          count = redis.call('HINCRBY', KEYS[1], 'requests', 1)
          redis.call('EXPIREAT', KEYS[1], expireAt)
        end
        if maxConcurrent > 0 then
          redis.call('ZADD', KEYS[2], tonumber(ARGV[6]), ARGV[5])
          redis.call('EXPIREAT', KEYS[2], expireAt)
        end
        return {0, count}
        """)

    /// ARGV: expireAt, value (`1` or `renewed`), successor (empty: none). Returns {code, successor}:
    /// 0 done, 1 already renewed (successor), 2 already revoked (renewals only).
    static let revoke = RedisScript(
        """
        if ARGV[3] ~= '' then
          local successor = redis.call('HGET', KEYS[1], 'successor')
          if successor then return {1, successor} end
          if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return {2, ''} end
          redis.call('HSET', KEYS[1], 'successor', ARGV[3])
        end
        redis.call('HSET', KEYS[1], 'revoked', ARGV[2])
        redis.call('EXPIREAT', KEYS[1], ARGV[1], 'GT')
        if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
        return {0, ''}
        """)

    /// ARGV: now, exp, jti, expireAt. Adds the lease, drops the payer's expired ones.
    static let register = RedisScript(
        """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
        redis.call('EXPIREAT', KEYS[1], ARGV[4], 'GT')
        if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIREAT', KEYS[1], ARGV[4]) end
        return 1
        """)

    /// ARGV: value, expiresAt. Keeps a record that expires later.
    static let recordPaid = RedisScript(
        """
        local current = redis.call('GET', KEYS[1])
        if current then
          local expires = tonumber(string.match(current, '([0-9]+)$'))
          if expires and expires >= tonumber(ARGV[2]) then return 0 end
        end
        redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
        return 1
        """)

    /// KEYS: the log's header, the log. ARGV: jti, until (exp + retention), now, a random epoch for
    /// a new log. Appends one revocation under the next sequence number and drops up to 16 of the
    /// oldest entries that have expired.
    static let logRevocation = RedisScript(
        """
        redis.call('HSETNX', KEYS[1], 'epoch', ARGV[4])
        local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
        redis.call('ZADD', KEYS[2], seq, ARGV[1] .. ' ' .. ARGV[2])
        for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, 15)) do
          local untilTime = tonumber(string.match(member, ' ([0-9]+)$'))
          if untilTime and untilTime <= tonumber(ARGV[3]) then redis.call('ZREM', KEYS[2], member) end
        end
        return seq
        """)

    public init(
        client: RedisClient, keyPrefix: String = "x402", retentionSeconds: Int64 = 300,
        mirror: RevocationMirror? = nil
    ) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.retentionSeconds = retentionSeconds
        self.mirror = mirror
    }

    /// Appends a revocation to the log the mirrors follow. Written before the lease's own record, so
    /// a failure between the two leaves the lease refused by more sidecars, never by fewer.
    private func logRevocation(jti: String, expiresAt: Int64) async throws {
        let (sequence, log) = RevocationMirror.keys(prefix: keyPrefix)
        _ = try await client.run(
            Self.logRevocation, keys: [sequence, log],
            arguments: [
                jti, String(expiresAt + retentionSeconds), String(UnixClock.seconds()),
                Hex.encode(OpenSSL.randomBytes(8), prefix: false),
            ])
    }

    /// Waits until every mirror that is still trusted has polled after the write.
    private func waitForMirrors() async {
        guard let mirror else { return }
        try? await Task.sleep(for: mirror.staleness + .milliseconds(10))
    }

    func leaseKey(_ jti: String) -> String { "\(keyPrefix):lease:{\(jti)}" }
    func slotsKey(_ jti: String) -> String { "\(keyPrefix):lease:{\(jti)}:slots" }
    func payerKey(_ payer: String) -> String { "\(keyPrefix):payer:{\(payer)}:leases" }
    func nonceKey(_ nonce: String) -> String { "\(keyPrefix):siwx:{\(nonce)}" }
    func paidKey(_ payer: String, _ route: String, _ host: String) -> String {
        "\(keyPrefix):paid:{\(EmbeddedLeaseStore.paidKey(payer, route, host))}"
    }

    public func register(_ claims: LeaseClaims) async throws {
        _ = try await client.run(
            Self.register, keys: [payerKey(claims.payer)],
            arguments: [
                String(UnixClock.seconds()), String(claims.expiresAt), claims.jti,
                String(claims.expiresAt + retentionSeconds),
            ])
    }

    public func admit(_ use: LeaseUse, now: Int64) -> StoreAnswer<LeaseAdmission> {
        if use.maxRequests == nil, use.maxConcurrent == nil, let admission = mirror?.admission(jti: use.jti, now: now) {
            return .ready(.success(admission))
        }
        return .suspending { try await self.admitRemotely(use, now: now) }
    }

    private func admitRemotely(_ use: LeaseUse, now: Int64) async throws -> LeaseAdmission {
        if use.maxConcurrent != nil && use.slot == nil { return .refused(.concurrencyLimit) }
        let reply = try await client.run(
            Self.admit, keys: [leaseKey(use.jti), slotsKey(use.jti)],
            arguments: [
                String(now), String(use.expiresAt + retentionSeconds), String(use.maxRequests ?? 0),
                String(use.maxConcurrent ?? 0), use.slot ?? "", String(use.slotExpiresAt),
            ])
        guard case .array(let items?) = reply, items.count == 2, case .integer(let code) = items[0],
            case .integer(let count) = items[1]
        else { throw RedisClientError(code: .protocolError, message: "unexpected lease admit reply") }
        switch code {
        case 0: return .admitted(requests: Int(count))
        case 1: return .refused(.revoked)
        case 2: return .refused(.requestLimit)
        default: return .refused(.concurrencyLimit)
        }
    }

    @discardableResult
    public func release(jti: String, slot: String) async throws -> Bool {
        try await client.send(["ZREM", slotsKey(jti), slot]) == .integer(1)
    }

    public func revoke(jti: String, expiresAt: Int64) async throws {
        try await revokeRecord(jti: jti, expiresAt: expiresAt)
        await waitForMirrors()
    }

    private func revokeRecord(jti: String, expiresAt: Int64) async throws {
        try await logRevocation(jti: jti, expiresAt: expiresAt)
        _ = try await client.run(
            Self.revoke, keys: [leaseKey(jti)], arguments: [String(expiresAt + retentionSeconds), "1", ""])
    }

    @discardableResult
    public func revoke(payer: String, now: Int64) async throws -> Int {
        let reply = try await client.send(
            ["ZRANGEBYSCORE", payerKey(payer), String(now - retentionSeconds), "+inf", "WITHSCORES"])
        guard case .array(let items?) = reply, items.count % 2 == 0 else {
            throw RedisClientError(code: .protocolError, message: "unexpected ZRANGEBYSCORE reply")
        }
        var count = 0
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let jti = items[index].string, let score = items[index + 1].string, let exp = Int64(score) else {
                continue
            }
            try await revokeRecord(jti: jti, expiresAt: exp)
            count += 1
        }
        if count > 0 { await waitForMirrors() }
        return count
    }

    public func renew(jti: String, successor: String, expiresAt: Int64) async throws -> LeaseRenewal {
        // Logged first: when the renewal loses, the old lease was revoked already.
        try await logRevocation(jti: jti, expiresAt: expiresAt)
        let reply = try await client.run(
            Self.revoke, keys: [leaseKey(jti)], arguments: [String(expiresAt + retentionSeconds), "renewed", successor])
        guard case .array(let items?) = reply, items.count == 2, case .integer(let code) = items[0] else {
            throw RedisClientError(code: .protocolError, message: "unexpected lease renew reply")
        }
        switch code {
        case 0: return .renewed
        case 1: return .alreadyRenewed(successor: items[1].string ?? "")
        default: return .revoked
        }
    }

    public func consumeSIWXNonce(_ nonce: String, expiresAt: Int64) -> StoreAnswer<Bool> {
        .suspending { try await self.consumeRemotely(nonce, expiresAt: expiresAt) }
    }

    private func consumeRemotely(_ nonce: String, expiresAt: Int64) async throws -> Bool {
        let reply = try await client.send(["SET", nonceKey(nonce), "1", "NX", "EXAT", String(expiresAt)])
        switch reply {
        case .simple("OK"): return true
        case .bulk(nil): return false
        default: throw RedisClientError(code: .protocolError, message: "unexpected SET reply")
        }
    }

    public func recordPaidAccess(_ access: PaidAccess) -> StoreAnswer<Void> {
        .suspending { try await self.recordRemotely(access) }
    }

    private func recordRemotely(_ access: PaidAccess) async throws {
        let value = [access.amount, access.asset, access.network, access.paymentID, String(access.expiresAt)]
            .joined(separator: "|")
        _ = try await client.run(
            Self.recordPaid, keys: [paidKey(access.payer, access.route, access.host)],
            arguments: [value, String(access.expiresAt)])
    }

    public func paidAccess(payer: String, route: String, host: String, now: Int64) -> StoreAnswer<PaidAccess?> {
        .suspending { try await self.paidAccessRemotely(payer: payer, route: route, host: host, now: now) }
    }

    private func paidAccessRemotely(payer: String, route: String, host: String, now: Int64) async throws -> PaidAccess? {
        guard let value = try await client.send(["GET", paidKey(payer, route, host)]).string else { return nil }
        let fields = value.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5, let expiresAt = Int64(fields[4]), expiresAt > now else { return nil }
        return PaidAccess(
            payer: payer, route: route, host: host, amount: fields[0], asset: fields[1], network: fields[2],
            paymentID: fields[3], expiresAt: expiresAt)
    }

    public func checkReady() async throws {
        try await client.ping()
    }
}
