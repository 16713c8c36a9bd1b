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

    /// A key resolved once per operation: packed into words when it can be (every real payment).
    /// A packed key's record may still sit in `other` when the record itself does not pack.
    private struct Slot {
        let key: NonceKey
        let packed: PackedNonceKey?
        init(_ key: NonceKey) {
            self.key = key
            packed = PackedNonceKey(key)
        }
    }

    /// The record's expiry, without turning a packed record back into strings.
    private func expiresAt(_ slot: Slot) -> Int64? {
        if let packedKey = slot.packed, let record = packed[packedKey] { return record.expiresAt }
        return other[slot.key]?.expiresAt
    }

    private func stored(_ slot: Slot) -> NonceRecord? {
        if let packedKey = slot.packed, let record = packed[packedKey] { return record.unpacked }
        return other[slot.key]
    }

    private mutating func store(_ slot: Slot, _ record: NonceRecord?) {
        guard let packedKey = slot.packed else {
            other[slot.key] = record
            return
        }
        if let record, let packedRecord = PackedNonceRecord(record) {
            packed[packedKey] = packedRecord
            other[slot.key] = nil
        } else {
            packed[packedKey] = nil
            other[slot.key] = record
        }
    }

    private func live(_ slot: Slot, now: Int64) -> NonceRecord? {
        guard let record = stored(slot), record.expiresAt > now else { return nil }
        return record
    }

    func live(_ key: NonceKey, now: Int64) -> NonceRecord? {
        live(Slot(key), now: now)
    }

    /// Whether `key` is reserved or settled and not expired (the hot path's question).
    func isLive(_ key: NonceKey, now: Int64) -> Bool {
        (expiresAt(Slot(key)) ?? Int64.min) > now
    }

    mutating func reserve(_ key: NonceKey, token: String, expiresAt: Int64, now: Int64) -> Bool {
        let slot = Slot(key)
        if (self.expiresAt(slot) ?? Int64.min) > now { return false }
        store(slot, NonceRecord(state: .reserved, token: token, expiresAt: expiresAt))
        insertsSinceSweep += 1
        if insertsSinceSweep >= sweepInterval { sweep(now: now) }
        return true
    }

    /// The live reservation (not settled) that `token` holds on `slot`, if it does.
    private func held(_ slot: Slot, token: String, now: Int64) -> NonceRecord? {
        guard let record = live(slot, now: now), record.state == .reserved, record.token == token else { return nil }
        return record
    }

    /// Whether `token` holds a live reservation (not settled) on `key`.
    func holds(_ key: NonceKey, token: String, now: Int64) -> Bool {
        held(Slot(key), token: token, now: now) != nil
    }

    mutating func settle(_ key: NonceKey, token: String, transaction: String, now: Int64) -> Bool {
        let slot = Slot(key)
        guard var record = held(slot, token: token, now: now) else { return false }
        record.state = .settled
        record.transaction = transaction
        store(slot, record)
        return true
    }

    mutating func release(_ key: NonceKey, token: String, now: Int64) -> Bool {
        let slot = Slot(key)
        guard held(slot, token: token, now: now) != nil else { return false }
        store(slot, nil)
        return true
    }

    /// Applies a journal event without the ownership checks (they held when it was written).
    mutating func restore(_ key: NonceKey, _ record: NonceRecord?) {
        store(Slot(key), record)
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
        guard let words = PackedHex.words(text, byteCount: 32) else { return nil }
        (w0, w1, w2, w3) = words
    }

    var text: String { PackedHex.text([w0, w1, w2, w3], byteCount: 32) }
}

/// 20 bytes (an address) as three words.
struct Word160: Hashable, Sendable {
    var w0: UInt64, w1: UInt64, w2: UInt32

    init?(_ text: String) {
        guard let words = PackedHex.words(text, byteCount: 20) else { return nil }
        (w0, w1, w2) = (words.0, words.1, UInt32(truncatingIfNeeded: words.2 >> 32))
    }

    var text: String { PackedHex.text([w0, w1, UInt64(w2) << 32], byteCount: 20) }
}

enum PackedHex {
    /// `0x` (when `prefixed`) and exactly `byteCount` (≤ 32) bytes of lowercase hex, as big-endian
    /// words, the last one left-aligned. Only a string that packs and unpacks to itself packs, so
    /// uppercase digits are refused. Reads the text in place: nothing is allocated.
    static func words(_ text: String, byteCount: Int, prefixed: Bool = true)
        -> (UInt64, UInt64, UInt64, UInt64)?
    {
        var text = text
        return text.withUTF8 { utf8 -> (UInt64, UInt64, UInt64, UInt64)? in
            let start = prefixed ? 2 : 0
            guard utf8.count == start + 2 * byteCount else { return nil }
            if prefixed, utf8[0] != UInt8(ascii: "0") || utf8[1] != UInt8(ascii: "x") { return nil }
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            for index in 0..<2 * byteCount {
                let digit: UInt64
                switch utf8[start + index] {
                case 0x30...0x39: digit = UInt64(utf8[start + index] - 0x30)
                case 0x61...0x66: digit = UInt64(utf8[start + index] - 0x61 + 10)
                default: return nil
                }
                let shift = UInt64(60 - 4 * (index % 16))
                switch index / 16 {
                case 0: words.0 |= digit << shift
                case 1: words.1 |= digit << shift
                case 2: words.2 |= digit << shift
                default: words.3 |= digit << shift
                }
            }
            return words
        }
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
        guard let token = PackedHex.words(record.token, byteCount: 16, prefixed: false) else { return nil }
        if let transaction = record.transaction {
            guard let packed = Word256(transaction) else { return nil }
            self.transaction = packed
        } else {
            self.transaction = nil
        }
        expiresAt = record.expiresAt
        (token0, token1) = (token.0, token.1)
        settled = record.state == .settled
    }

    var unpacked: NonceRecord {
        NonceRecord(state: settled ? .settled : .reserved,
                    token: String(PackedHex.text([token0, token1], byteCount: 16).dropFirst(2)),
                    expiresAt: expiresAt, transaction: transaction?.text)
    }
}
