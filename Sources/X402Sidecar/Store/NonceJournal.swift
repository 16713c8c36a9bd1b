import X402

/// Why the nonce journal refused to work. Every error fails closed: no reservation is granted
/// without its journal line on disk.
public typealias NonceJournalError = JournalError

/// The append-only file behind `EmbeddedNonceLedger`, one event a line:
///
///     R <expiresAt> <token> <network|asset|payer|nonce>     reserved
///     S <token> <transaction> <network|asset|payer|nonce>   settled
///     X <token> <network|asset|payer|nonce>                 released
///
/// No field may contain a space or newline (all are hex, decimal or CAIP-2). The file mechanics
/// (locking, single-write appends, torn last lines, atomic compaction) are `AppendLog`'s.
final class NonceJournal {
    private let log: AppendLog
    var path: String { log.path }
    /// Lines appended since the last compaction.
    var appended: Int { log.appended }

    init(path: String, fsync: Bool) throws(NonceJournalError) {
        log = try AppendLog(path: path, fsync: fsync)
    }

    static func reserved(_ key: NonceKey, token: String, expiresAt: Int64) -> String {
        "R \(expiresAt) \(token) \(key)\n"
    }

    static func settled(_ key: NonceKey, token: String, transaction: String) -> String {
        "S \(token) \(transaction) \(key)\n"
    }

    /// An exposure hold of a reservation (written with its `R` line): `H until amount key`.
    static func held(_ key: NonceKey, amount: UInt128, until: Int64) -> String {
        "H \(until) \(amount) \(key)\n"
    }

    static func released(_ key: NonceKey, token: String) -> String {
        "X \(token) \(key)\n"
    }

    /// `true` for values that cannot break the line format.
    static func isSafeField(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 256 && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    func append(_ line: String) throws(NonceJournalError) {
        try log.append(line)
    }

    /// Replays the journal into `table`, ignoring a torn last line and expired records.
    static func replay(path: String, into table: inout NonceTable, now: Int64) throws(NonceJournalError) -> Int {
        var holds: [NonceKey: (amount: UInt128, until: Int64)] = [:]
        return try replay(path: path, into: &table, holds: &holds, now: now)
    }

    /// Also collects the exposure holds (`H` lines) of reservations still held at the end.
    static func replay(
        path: String, into table: inout NonceTable, holds: inout [NonceKey: (amount: UInt128, until: Int64)], now: Int64
    ) throws(NonceJournalError) -> Int {
        let lines = try AppendLog.readLines(path: path)
        for line in lines {
            if line.hasPrefix("H ") {
                let fields = line.split(separator: " ").map(String.init)
                guard fields.count == 4, let until = Int64(fields[1]), let amount = UInt128(fields[2]),
                    let key = parseKey(fields[3])
                else { continue }
                holds[key] = (amount, until)
            } else {
                apply(line, to: &table)
            }
        }
        table.sweep(now: now)
        holds = holds.filter { table.live($0.key, now: now)?.state == .reserved && $0.value.until > now }
        return lines.count
    }

    private static func apply(_ line: String, to table: inout NonceTable) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard let kind = fields.first, let keyText = fields.last, let key = parseKey(keyText) else { return }
        switch (kind, fields.count) {
        case ("R", 4):
            guard let expiresAt = Int64(fields[1]) else { return }
            table.restore(key, NonceRecord(state: .reserved, token: fields[2], expiresAt: expiresAt))
        case ("S", 4):
            guard var record = table.live(key, now: Int64.min), record.token == fields[1] else { return }
            record.state = .settled
            record.transaction = fields[2]
            table.restore(key, record)
        case ("X", 3):
            guard let record = table.live(key, now: Int64.min), record.token == fields[1], record.state == .reserved
            else { return }
            table.restore(key, nil)
        default:
            return
        }
    }

    private static func parseKey(_ text: String) -> NonceKey? {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else { return nil }
        return NonceKey(network: parts[0], asset: parts[1], payer: parts[2], nonce: parts[3])
    }

    /// Rewrites the journal with only `records`, atomically.
    func compact(records: [(NonceKey, NonceRecord)], holds: [NonceKey: UInt128] = [:]) throws(NonceJournalError) {
        try log.replace { (emit) throws(NonceJournalError) -> Int in
            for (key, record) in records {
                _ = try emit(Self.reserved(key, token: record.token, expiresAt: record.expiresAt))
                if record.state == .reserved, let amount = holds[key] {
                    _ = try emit(Self.held(key, amount: amount, until: record.expiresAt))
                }
                if record.state == .settled {
                    _ = try emit(Self.settled(key, token: record.token, transaction: record.transaction ?? "-"))
                }
            }
            return records.count
        }
    }
}
