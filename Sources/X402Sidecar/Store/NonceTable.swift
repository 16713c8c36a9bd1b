import X402

/// The ledger's rules over an in-process table. Used directly for tests and benchmarks (it forgets
/// everything on restart) and as the state behind `EmbeddedNonceLedger`.
///
/// A ledger holds one record per authorization still valid on chain, which under load is hundreds
/// of thousands: keys and records are kept packed (the hex fields as fixed-size words, no string
/// allocations) and turned back into `NonceKey`/`NonceRecord` only when asked for.
struct NonceTable: Sendable {
    private var packed: [PackedNonceKey: PackedNonceRecord] = [:]
    /// Keys or records whose fields are not canonical hex (only ever seen in tests): kept as given.
    private var other: [NonceKey: NonceRecord] = [:]
    /// Inserts since the last sweep; expired records are dropped every `sweepInterval` inserts so
    /// memory stays bounded by the authorizations still valid on chain.
    private var insertsSinceSweep = 0
    private let sweepInterval = 4096

    var count: Int { packed.count + other.count }

    private func stored(_ key: NonceKey) -> NonceRecord? {
        if let packedKey = PackedNonceKey(key) {
            if let record = packed[packedKey] { return record.unpacked }
        }
        return other[key]
    }

    private mutating func store(_ key: NonceKey, _ record: NonceRecord?) {
        guard let packedKey = PackedNonceKey(key) else {
            other[key] = record
            return
        }
        guard let record else {
            packed[packedKey] = nil
            other[key] = nil
            return
        }
        if let packedRecord = PackedNonceRecord(record) {
            packed[packedKey] = packedRecord
            other[key] = nil
        } else {
            packed[packedKey] = nil
            other[key] = record
        }
    }

    func live(_ key: NonceKey, now: Int64) -> NonceRecord? {
        guard let record = stored(key), record.expiresAt > now else { return nil }
        return record
    }

    mutating func reserve(_ key: NonceKey, token: String, expiresAt: Int64, now: Int64) -> Bool {
        if live(key, now: now) != nil { return false }
        store(key, NonceRecord(state: .reserved, token: token, expiresAt: expiresAt))
        insertsSinceSweep += 1
        if insertsSinceSweep >= sweepInterval { sweep(now: now) }
        return true
    }

    /// Whether `token` holds a live reservation (not settled) on `key`.
    func holds(_ key: NonceKey, token: String, now: Int64) -> Bool {
        guard let record = live(key, now: now) else { return false }
        return record.state == .reserved && record.token == token
    }

    mutating func settle(_ key: NonceKey, token: String, transaction: String, now: Int64) -> Bool {
        guard var record = live(key, now: now), record.state == .reserved, record.token == token else { return false }
        record.state = .settled
        record.transaction = transaction
        store(key, record)
        return true
    }

    mutating func release(_ key: NonceKey, token: String, now: Int64) -> Bool {
        guard holds(key, token: token, now: now) else { return false }
        store(key, nil)
        return true
    }

    /// Applies a journal event without the ownership checks (they held when it was written).
    mutating func restore(_ key: NonceKey, _ record: NonceRecord?) {
        store(key, record)
    }

    mutating func sweep(now: Int64) {
        packed = packed.filter { $0.value.expiresAt > now }
        other = other.filter { $0.value.expiresAt > now }
        insertsSinceSweep = 0
    }

    func liveRecords(now: Int64) -> [(NonceKey, NonceRecord)] {
        var out: [(NonceKey, NonceRecord)] = []
        out.reserveCapacity(count)
        for (key, record) in packed where record.expiresAt > now { out.append((key.unpacked, record.unpacked)) }
        for (key, record) in other where record.expiresAt > now { out.append((key, record)) }
        return out
    }
}

/// 32 bytes as four words (a nonce, a transaction hash).
struct Word256: Hashable, Sendable {
    var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    init?(_ text: String) {
        guard let bytes = PackedHex.canonical(text, byteCount: 32) else { return nil }
        w0 = PackedHex.word(bytes, 0)
        w1 = PackedHex.word(bytes, 8)
        w2 = PackedHex.word(bytes, 16)
        w3 = PackedHex.word(bytes, 24)
    }

    var text: String { PackedHex.text([w0, w1, w2, w3], byteCount: 32) }
}

/// 20 bytes (an address) as three words.
struct Word160: Hashable, Sendable {
    var w0: UInt64, w1: UInt64, w2: UInt32

    init?(_ text: String) {
        guard let bytes = PackedHex.canonical(text, byteCount: 20) else { return nil }
        w0 = PackedHex.word(bytes, 0)
        w1 = PackedHex.word(bytes, 8)
        w2 = UInt32(truncatingIfNeeded: PackedHex.word(bytes + [0, 0, 0, 0], 16) >> 32)
    }

    var text: String { PackedHex.text([w0, w1, UInt64(w2) << 32], byteCount: 20) }
}

enum PackedHex {
    /// The bytes of `0x` + lowercase hex of exactly `byteCount` bytes: only a string that packs
    /// and unpacks to itself is packed.
    static func canonical(_ text: String, byteCount: Int) -> [UInt8]? {
        guard text.utf8.count == 2 + 2 * byteCount, text.utf8.allSatisfy({ !(0x41...0x46).contains($0) }),
            text.utf8.dropFirst().first == 0x78
        else { return nil }
        return Hex.decode(text, byteCount: byteCount)
    }

    static func word(_ bytes: [UInt8], _ start: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in start..<start + 8 { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    static func text(_ words: [UInt64], byteCount: Int) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(words.count * 8)
        for word in words {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return Hex.encode(bytes.prefix(byteCount))
    }
}

/// A `NonceKey` whose asset, payer and nonce are canonical (lowercase) hex, which is every key a
/// verified payment makes. The network is a short CAIP-2 id (stored inline by `String`).
struct PackedNonceKey: Hashable, Sendable {
    var network: String
    var asset: Word160
    var payer: Word160
    var nonce: Word256

    init?(_ key: NonceKey) {
        guard let asset = Word160(key.asset), let payer = Word160(key.payer), let nonce = Word256(key.nonce) else {
            return nil
        }
        network = key.network
        self.asset = asset
        self.payer = payer
        self.nonce = nonce
    }

    var unpacked: NonceKey { NonceKey(network: network, asset: asset.text, payer: payer.text, nonce: nonce.text) }
}

/// A `NonceRecord` whose token is a payment id (32 lowercase hex digits) and whose transaction,
/// if any, is a 32-byte hash.
struct PackedNonceRecord: Sendable {
    var expiresAt: Int64
    var token0: UInt64, token1: UInt64
    var transaction: Word256?
    var settled: Bool

    init?(_ record: NonceRecord) {
        guard let token = PackedHex.canonical("0x" + record.token, byteCount: 16) else { return nil }
        if let transaction = record.transaction {
            guard let packed = Word256(transaction) else { return nil }
            self.transaction = packed
        } else {
            self.transaction = nil
        }
        expiresAt = record.expiresAt
        token0 = PackedHex.word(token, 0)
        token1 = PackedHex.word(token, 8)
        settled = record.state == .settled
    }

    var unpacked: NonceRecord {
        NonceRecord(state: settled ? .settled : .reserved,
                    token: String(PackedHex.text([token0, token1], byteCount: 16).dropFirst(2)),
                    expiresAt: expiresAt, transaction: transaction?.text)
    }
}
