import X402

/// Pending exposure in Redis, per payer, asset and network:
///
/// - `PREFIX:exposure:{network|asset|payer}:amounts`: hash nonce → amount, and `#total`;
/// - `PREFIX:exposure:{network|asset|payer}:until`: sorted set of nonces scored by the time each
///   stops counting (the reservation's expiry; a short hold once settled).
///
/// Amounts are decimal strings added and compared in the scripts (a uint256 does not fit Lua's
/// numbers). A reservation with a hold is one script over the nonce key and these two, so on a
/// single Redis or Sentinel it is atomic as a whole; on Cluster, nonce keys would have to move
/// under the payer's hash tag first (they are tagged by the whole nonce key today).
extension RedisNonceLedger {
    /// Decimal strings: add, subtract (a ≥ b) and compare, for the scripts below.
    static let decimals = """
        local function dadd(a, b)
          local out, carry, i, j = {}, 0, #a, #b
          while i > 0 or j > 0 or carry > 0 do
            local s = carry + (i > 0 and (string.byte(a, i) - 48) or 0) + (j > 0 and (string.byte(b, j) - 48) or 0)
            out[#out + 1] = s % 10
            carry = (s - s % 10) / 10
            i, j = i - 1, j - 1
          end
          local text = string.reverse(table.concat(out)):gsub('^0+', '')
          return text == '' and '0' or text
        end
        local function dsub(a, b)
          local out, borrow, i, j = {}, 0, #a, #b
          while i > 0 do
            local s = (string.byte(a, i) - 48) - borrow - (j > 0 and (string.byte(b, j) - 48) or 0)
            if s < 0 then s, borrow = s + 10, 1 else borrow = 0 end
            out[#out + 1] = s
            i, j = i - 1, j - 1
          end
          if borrow > 0 then return '0' end
          local text = string.reverse(table.concat(out)):gsub('^0+', '')
          return text == '' and '0' or text
        end
        local function dcmp(a, b)
          if #a ~= #b then return #a < #b and -1 or 1 end
          if a == b then return 0 end
          return a < b and -1 or 1
        end
        local function prune(amounts, expiries, now)
          local total = redis.call('HGET', amounts, '#total') or '0'
          for _, nonce in ipairs(redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, 256)) do
            local amount = redis.call('HGET', amounts, nonce)
            if amount then total = dsub(total, amount); redis.call('HDEL', amounts, nonce) end
            redis.call('ZREM', expiries, nonce)
          end
          return total
        end
        local function keep(key, at)
          redis.call('EXPIREAT', key, at, 'GT')
          if redis.call('TTL', key) < 0 then redis.call('EXPIREAT', key, at) end
        end

        """

    /// KEYS: nonce, amounts, until. ARGV: value, expiresAt, amount, limit ('' none), now, nonce.
    /// Returns {1, total} reserved, {0, ''} already used, {2, pending} over the limit.
    static let reserveHeld = RedisScript(decimals + """
        if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ''} end
        local total = prune(KEYS[2], KEYS[3], ARGV[5])
        local after = dadd(total, ARGV[3])
        if ARGV[4] ~= '' and dcmp(after, ARGV[4]) > 0 then
          if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], '#total', total) end
          return {2, total}
        end
        redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
        redis.call('HSET', KEYS[2], ARGV[6], ARGV[3], '#total', after)
        redis.call('ZADD', KEYS[3], ARGV[2], ARGV[6])
        keep(KEYS[2], ARGV[2])
        keep(KEYS[3], ARGV[2])
        return {1, after}
        """)

    /// KEYS: nonce, amounts, until. ARGV: owner prefix (`R|token|`), transaction, nonce, hold until.
    static let settleHeld = RedisScript(decimals + """
        local v = redis.call('GET', KEYS[1])
        if not (v and string.sub(v, 1, #ARGV[1]) == ARGV[1]) then return 0 end
        redis.call('SET', KEYS[1], 'S' .. string.sub(v, 2) .. '|' .. ARGV[2], 'KEEPTTL')
        redis.call('ZADD', KEYS[3], 'XX', 'LT', ARGV[4], ARGV[3])
        return 1
        """)

    /// KEYS: nonce, amounts, until. ARGV: owner prefix, nonce.
    static let releaseHeld = RedisScript(decimals + """
        local v = redis.call('GET', KEYS[1])
        if not (v and string.sub(v, 1, #ARGV[1]) == ARGV[1]) then return 0 end
        redis.call('DEL', KEYS[1])
        local amount = redis.call('HGET', KEYS[2], ARGV[2])
        if amount then
          local total = dsub(redis.call('HGET', KEYS[2], '#total') or '0', amount)
          redis.call('HDEL', KEYS[2], ARGV[2])
          redis.call('HSET', KEYS[2], '#total', total)
          redis.call('ZREM', KEYS[3], ARGV[2])
        end
        return 1
        """)

    /// KEYS: amounts, until. ARGV: now. Returns the pending total.
    static let pending = RedisScript(decimals + """
        local total = prune(KEYS[1], KEYS[2], ARGV[1])
        if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], '#total', total) end
        return total
        """)

    func exposureKeys(_ key: NonceKey) -> [String] {
        let tag = "\(keyPrefix):exposure:{\(ExposureHold.payerKey(key))}"
        return [tag + ":amounts", tag + ":until"]
    }

    public func reserve(_ key: NonceKey, token: String, expiresAt: Int64, holding hold: ExposureHold)
        -> StoreAnswer<Reservation>
    {
        .suspending {
            let reply = try await self.client.run(
                Self.reserveHeld, keys: [self.redisKey(key)] + self.exposureKeys(key),
                arguments: [
                    "R|\(token)|\(expiresAt)", String(expiresAt), String(hold.amount),
                    hold.limit.map { String($0) } ?? "", String(UnixClock.seconds()), key.nonce,
                ])
            guard case .array(let items?) = reply, items.count == 2, case .integer(let code) = items[0] else {
                throw RedisClientError(code: .protocolError, message: "unexpected exposure reserve reply")
            }
            switch code {
            case 1: return .reserved
            case 0: return .alreadyUsed
            default: return .overLimit(pending: items[1].string.flatMap { UInt128($0) } ?? 0)
            }
        }
    }

    public func pendingExposure(_ key: NonceKey) async throws -> UInt128 {
        let reply = try await client.run(Self.pending, keys: exposureKeys(key), arguments: [String(UnixClock.seconds())])
        guard let text = reply.string, let total = UInt128(text) else {
            throw RedisClientError(code: .protocolError, message: "unexpected exposure reply")
        }
        return total
    }
}
