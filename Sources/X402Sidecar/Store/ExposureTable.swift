import HeapModule
import X402

/// A payment held against its payer's balance while it is not settled: what exposure control
/// adds to a nonce reservation.
public struct ExposureHold: Sendable, Equatable {
    /// Atomic units of the asset (the authorization's `value`).
    public var amount: UInt128
    /// The most the payer's pending exposure may reach with this payment included (its balance,
    /// or less with `max_pending_per_payer`); nil holds without a check (`before` routes, whose
    /// settlement comes first, still count against the others).
    public var limit: UInt128?

    public init(amount: UInt128, limit: UInt128?) {
        self.amount = amount
        self.limit = limit
    }

    /// The payer, asset and network the exposure of `key` is summed over.
    public static func payerKey(_ key: NonceKey) -> String { "\(key.network)|\(key.asset)|\(key.payer)" }

    /// A canonical decimal string of atomic units as a number; nil when it is not one or does not
    /// fit 128 bits (no token amount a payer can hold comes near).
    public static func amount(_ decimal: String) -> UInt128? {
        guard !decimal.isEmpty, decimal.utf8.count <= 39 else { return nil }
        var value: UInt128 = 0
        for byte in decimal.utf8 {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt128(byte - 0x30))
            guard !overflow, !carry else { return nil }
            value = sum
        }
        return value
    }

    /// A big-endian 32-byte word (an ABI `uint256`) as a number, capped at `UInt128.max`.
    public static func amount(word: [UInt8]) -> UInt128 {
        guard word.count == 32 else { return 0 }
        if word[..<16].contains(where: { $0 != 0 }) { return .max }
        return word[16...].reduce(0) { $0 << 8 | UInt128($1) }
    }
}

/// What `hold` decided.
public enum ExposureOutcome: Sendable, Equatable {
    case held
    /// Not held: `pending` plus the amount is over the limit.
    case overLimit(pending: UInt128)
}

/// The embedded store's pending exposure per payer: each held payment by nonce with its amount and
/// the time it stops counting (the authorization's expiry while unsettled — after it the chain
/// refuses it —, a short hold once settled, see `settle`). Pure: the ledger runs it under its lock.
struct ExposureTable {
    private struct Entry {
        var amount: UInt128
        var until: Int64
    }

    private struct Payer {
        var total: UInt128 = 0
        var entries: [String: Entry] = [:]
        var expiries = Heap<Expiry>()
    }

    private struct Expiry: Comparable {
        var until: Int64
        var nonce: String
        static func < (a: Expiry, b: Expiry) -> Bool { a.until < b.until }
    }

    private var payers: [String: Payer] = [:]

    /// The payer's exposure now (expired entries dropped first).
    mutating func pending(_ payer: String, now: Int64) -> UInt128 {
        guard payers[payer] != nil else { return 0 }
        return update(payer) { record in
            Self.prune(&record, now: now)
            return record.total
        }
    }

    /// The amount held for `nonce` and still counting, if any.
    func amount(_ payer: String, nonce: String, now: Int64) -> UInt128? {
        guard let entry = payers[payer]?.entries[nonce], entry.until > now else { return nil }
        return entry.amount
    }

    /// Holds `amount` for `nonce` until `until` unless that would take the payer past `limit`.
    /// Holding a nonce already held changes nothing (and succeeds).
    mutating func hold(_ payer: String, nonce: String, _ hold: ExposureHold, until: Int64, now: Int64)
        -> ExposureOutcome
    {
        update(payer) { record in
            Self.prune(&record, now: now)
            if record.entries[nonce] != nil { return .held }
            let (total, overflow) = record.total.addingReportingOverflow(hold.amount)
            if let limit = hold.limit, overflow || total > limit { return .overLimit(pending: record.total) }
            record.total = overflow ? .max : total
            record.entries[nonce] = Entry(amount: hold.amount, until: until)
            record.expiries.insert(Expiry(until: until, nonce: nonce))
            return .held
        }
    }

    /// A settled payment keeps counting until `until` (now plus the balance cache's lifetime): a
    /// balance read before the transfer still includes it.
    mutating func settle(_ payer: String, nonce: String, until: Int64) {
        guard payers[payer]?.entries[nonce] != nil else { return }
        update(payer) { record in
            guard var entry = record.entries[nonce] else { return }
            entry.until = min(entry.until, until)
            record.entries[nonce] = entry
            record.expiries.insert(Expiry(until: entry.until, nonce: nonce))
        }
    }

    /// The payment will not be settled (its request was refused): it stops counting now.
    mutating func release(_ payer: String, nonce: String) {
        guard payers[payer]?.entries[nonce] != nil else { return }
        update(payer) { record in
            guard let entry = record.entries.removeValue(forKey: nonce) else { return }
            record.total -= entry.amount
        }
    }

    /// Runs `body` on the payer's record in place, and drops a record left empty. In place: a copy
    /// taken out of `payers` and written back would copy all of the payer's entries on the first
    /// change (copy on write), once per payment — quadratic in the payer's unsettled payments.
    private mutating func update<Result>(_ payer: String, _ body: (inout Payer) -> Result) -> Result {
        let result = body(&payers[payer, default: Payer()])
        if payers[payer]?.entries.isEmpty ?? false { payers.removeValue(forKey: payer) }
        return result
    }

    private static func prune(_ record: inout Payer, now: Int64) {
        while let first = record.expiries.min, first.until <= now {
            record.expiries.removeMin()
            if let entry = record.entries[first.nonce], entry.until == first.until {
                record.entries.removeValue(forKey: first.nonce)
                record.total -= entry.amount
            }
        }
        if record.entries.isEmpty { record.expiries = Heap() }
    }
}
