#if canImport(Glibc)
import Glibc
#endif
import X402

/// Why the journal refused to work. Every error fails closed: no reservation is granted without
/// its journal line on disk.
public struct NonceJournalError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// The append-only file behind `EmbeddedNonceLedger`, one event a line:
///
///     R <expiresAt> <token> <network|asset|payer|nonce>     reserved
///     S <token> <transaction> <network|asset|payer|nonce>   settled
///     X <token> <network|asset|payer|nonce>                 released
///
/// No field may contain a space or newline (all are hex, decimal or CAIP-2), and every line is
/// written with one `write(2)` on an `O_APPEND` descriptor, so a crash can only leave a torn last
/// line, which replay ignores and truncates. Not thread-safe: the ledger serialises access.
final class NonceJournal {
    let path: String
    private var fd: Int32
    private let lockFD: Int32
    private let fsyncEachWrite: Bool
    /// Lines appended since the last compaction.
    private(set) var appended = 0

    init(path: String, fsync: Bool) throws(NonceJournalError) {
        self.path = path
        self.fsyncEachWrite = fsync
        lockFD = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw Self.error("cannot open \(path).lock") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            close(lockFD)
            throw NonceJournalError(description: "journal \(path) is in use by another process")
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            close(lockFD)
            throw Self.error("cannot open \(path)")
        }
    }

    deinit {
        close(fd)
        close(lockFD)
    }

    private static func error(_ what: String) -> NonceJournalError {
        NonceJournalError(description: "\(what): \(String(cString: strerror(errno)))")
    }

    static func reserved(_ key: NonceKey, token: String, expiresAt: Int64) -> String {
        "R \(expiresAt) \(token) \(key)\n"
    }

    static func settled(_ key: NonceKey, token: String, transaction: String) -> String {
        "S \(token) \(transaction) \(key)\n"
    }

    static func released(_ key: NonceKey, token: String) -> String {
        "X \(token) \(key)\n"
    }

    /// `true` for values that cannot break the line format.
    static func isSafeField(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 256 && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    func append(_ line: String) throws(NonceJournalError) {
        var line = line
        let ok = line.withUTF8 { bytes -> Bool in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
        guard ok else { throw Self.error("write to \(path) failed") }
        if fsyncEachWrite, fsync(fd) != 0 { throw Self.error("fsync of \(path) failed") }
        appended += 1
    }

    /// Replays the journal into `table`, ignoring a torn last line and expired records.
    static func replay(path: String, into table: inout NonceTable, now: Int64) throws(NonceJournalError) -> Int {
        let readFD = open(path, O_RDONLY | O_CLOEXEC)
        if readFD < 0 {
            if errno == ENOENT { return 0 }
            throw error("cannot read \(path)")
        }
        defer { close(readFD) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw error("cannot read \(path)")
            }
            if count == 0 { break }
            data += chunk[0..<count]
        }
        var lines = 0
        var start = 0
        for index in data.indices where data[index] == 0x0A {
            apply(String(decoding: data[start..<index], as: UTF8.self), to: &table)
            lines += 1
            start = index + 1
        }
        // Anything after the last newline is a line torn by a crash: it never counted.
        table.sweep(now: now)
        return lines
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

    /// Rewrites the journal with only `records`, atomically: a temp file, fsync, rename, fsync of
    /// the directory. A crash at any point leaves either the old or the new journal, whole.
    func compact(records: [(NonceKey, NonceRecord)]) throws(NonceJournalError) {
        let temporary = path + ".compact"
        let out = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw Self.error("cannot create \(temporary)") }
        var text = ""
        for (key, record) in records {
            text += Self.reserved(key, token: record.token, expiresAt: record.expiresAt)
            if record.state == .settled {
                text += Self.settled(key, token: record.token, transaction: record.transaction ?? "-")
            }
        }
        let written = text.withCString { write(out, $0, strlen($0)) }
        guard written == text.utf8.count, fsync(out) == 0 else {
            close(out)
            unlink(temporary)
            throw Self.error("cannot write \(temporary)")
        }
        close(out)
        guard rename(temporary, path) == 0 else { throw Self.error("cannot replace \(path)") }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dirFD = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
        let reopened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard reopened >= 0 else { throw Self.error("cannot reopen \(path)") }
        close(fd)
        fd = reopened
        appended = records.count
    }
}
