import Yams

/// `stores.ledger` — where used authorizations are remembered.
public enum LedgerSettings: Sendable, Equatable {
    /// In-process only, forgotten on restart: for tests and benchmarks, refused unless the command
    /// line says `--allow-memory-ledger`.
    case memory
    /// In-process, persisted to an append-only journal file (one host, no servers).
    case embedded(journalPath: String, fsync: Bool)
    /// Shared by every sidecar instance through Redis.
    case redis(url: String, keyPrefix: String)
}

/// `stores.redis` (or `X402_REDIS_URL`), parsed: the one Redis that the ledger, the settlement
/// queue and the rate limiter share.
public struct RedisSettings: Sendable, Equatable {
    /// As written (for the summary and logs, which redact the password).
    public var url: String
    public var keyPrefix: String
    /// The parsed URL the client connects with.
    public var client: RedisClient.Configuration
}

/// `stores:` as validated.
struct StoreSettings {
    static let defaultJournal = "/var/lib/x402/nonces.journal"

    var ledger: LedgerSettings = .embedded(journalPath: defaultJournal, fsync: false)
    /// Present exactly when `ledger` is `.redis`.
    var redis: RedisSettings?

    static func parse(_ node: Node?, _ r: inout ConfigReader) -> StoreSettings {
        var settings = StoreSettings()
        guard let s = r.section(node, "stores", allowed: ["ledger", "embedded", "redis"]) else {
            if r.environment["X402_REDIS_URL"] != nil { settings.parseRedis(nil, &r) }
            return settings
        }
        switch r.string(s["ledger"], "stores.ledger") ?? "embedded" {
        case "memory":
            settings.ledger = .memory
        case "embedded":
            guard let e = r.section(s["embedded"], "stores.embedded", allowed: ["journal", "fsync"]) else { break }
            let journal = r.string(e["journal"], "stores.embedded.journal") ?? defaultJournal
            let fsync = r.bool(e["fsync"], "stores.embedded.fsync") ?? false
            settings.ledger = .embedded(journalPath: journal, fsync: fsync)
        case "redis":
            settings.parseRedis(s["redis"], &r)
        case let other:
            r.problem("stores.ledger", "must be memory, embedded or redis, not \"\(other)\"", s["ledger"])
        }
        return settings
    }

    /// `X402_REDIS_URL` wins over `stores.redis.url`; either is parsed here, never at startup.
    private mutating func parseRedis(_ node: Node?, _ r: inout ConfigReader) {
        let s = r.section(node, "stores.redis", allowed: ["url", "key_prefix"]) ?? [:]
        let fromEnvironment = r.environment["X402_REDIS_URL"]
        let url = fromEnvironment ?? r.string(s["url"], "stores.redis.url")
        let prefix = r.string(s["key_prefix"], "stores.redis.key_prefix") ?? "x402"
        ledger = .redis(url: url ?? "", keyPrefix: prefix)
        guard let url else {
            if s["url"] == nil {
                r.problem("stores.redis.url", "is required for the redis ledger (or set X402_REDIS_URL)", node)
            }
            return
        }
        do {
            redis = RedisSettings(url: url, keyPrefix: prefix, client: try RedisClient.Configuration(url: url))
        } catch {
            let source = fromEnvironment == nil ? "" : " (from X402_REDIS_URL)"
            let why = (error as? RedisClientError)?.message ?? "\(error)"
            r.problem("stores.redis.url", "is not a usable Redis URL\(source): \(why)", s["url"] ?? node)
        }
    }
}
