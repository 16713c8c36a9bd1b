#if canImport(Glibc)
import Glibc
#endif

/// Why a journal file refused to work. Every error fails closed.
public struct JournalError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// An append-only file of newline-terminated records with an exclusive lock, shared by the
/// embedded stores' journals.
///
/// Every record is written with one `write(2)` on an `O_APPEND` descriptor, so a crash can only
/// leave a torn last line, which `readLines` drops. `replace` rewrites the file atomically (temp
/// file, fsync, rename, fsync of the directory). Not thread-safe: the owner serialises access.
final class AppendLog {
    let path: String
    private var fd: Int32
    /// For `read(at:length:)`: reopened with the file on `replace`.
    private var readFD: Int32 = -1
    private let lockFD: Int32
    private let fsyncEachWrite: Bool
    /// Lines appended since the file was opened or last replaced.
    private(set) var appended = 0
    /// The file's length: the offset the next appended line starts at (one writer, under the lock).
    private(set) var size: Int64 = 0

    init(path: String, fsync: Bool) throws(JournalError) {
        self.path = path
        self.fsyncEachWrite = fsync
        lockFD = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw Self.error("cannot open \(path).lock") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            close(lockFD)
            throw JournalError(description: "journal \(path) is in use by another process")
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            close(lockFD)
            throw Self.error("cannot open \(path)")
        }
        size = Self.length(of: fd)
        readFD = open(path, O_RDONLY | O_CLOEXEC)
    }

    deinit {
        close(fd)
        if readFD >= 0 { close(readFD) }
        close(lockFD)
    }

    private static func length(of fd: Int32) -> Int64 {
        var info = stat()
        return fstat(fd, &info) == 0 ? Int64(info.st_size) : 0
    }

    static func error(_ what: String) -> JournalError {
        JournalError(description: "\(what): \(String(cString: strerror(errno)))")
    }

    /// Appends `line` (which must end in a newline) with one write, then fsyncs if configured.
    /// - Returns: the offset the line starts at, for `read(at:length:)`.
    @discardableResult
    func append(_ line: String) throws(JournalError) -> Int64 {
        var line = line
        let offset = size
        let count = line.utf8.count
        guard line.withUTF8({ Self.writeAll(fd, $0) }) else { throw Self.error("write to \(path) failed") }
        if fsyncEachWrite, fsync(fd) != 0 { throw Self.error("fsync of \(path) failed") }
        appended += 1
        size += Int64(count)
        return offset
    }

    /// `length` bytes at `offset` of the current file, as text (a record without its newline).
    func read(at offset: Int64, length: Int) throws(JournalError) -> String {
        guard readFD >= 0 else { throw JournalError(description: "journal \(path) is not open for reading") }
        var bytes = [UInt8](repeating: 0, count: length)
        var done = 0
        while done < length {
            let count = bytes.withUnsafeMutableBytes { pread(readFD, $0.baseAddress! + done, length - done, off_t(offset) + off_t(done)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw Self.error("cannot read \(path) at \(offset)") }
            done += count
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
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

    /// Every complete line of the file at `path` (none if it does not exist). Anything after the
    /// last newline is a line torn by a crash: it never counted.
    static func readLines(path: String) throws(JournalError) -> [String] {
        try readRecords(path: path).map(\.line)
    }

    /// `readLines`, each line with the offset it starts at.
    static func readRecords(path: String) throws(JournalError) -> [(offset: Int64, line: String)] {
        let readFD = open(path, O_RDONLY | O_CLOEXEC)
        if readFD < 0 {
            if errno == ENOENT { return [] }
            throw error("cannot read \(path)")
        }
        defer { close(readFD) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(readFD, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw error("cannot read \(path)")
            }
            if count == 0 { break }
            data += chunk[0..<count]
        }
        var lines: [(offset: Int64, line: String)] = []
        var start = 0
        for index in data.indices where data[index] == 0x0A {
            lines.append((Int64(start), String(decoding: data[start..<index], as: UTF8.self)))
            start = index + 1
        }
        return lines
    }

    /// Rewrites the file atomically with what `body` emits, streamed through a buffer so a large
    /// rewrite never holds the whole file in memory. `emit` takes complete lines and answers the
    /// offset they start at in the new file; `body` returns how many records it wrote.
    func replace(_ body: (_ emit: (String) throws(JournalError) -> Int64) throws(JournalError) -> Int)
        throws(JournalError)
    {
        let temporary = path + ".compact"
        let out = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw Self.error("cannot create \(temporary)") }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        var written: Int64 = 0
        func flush() -> Bool {
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer.withUnsafeBufferPointer { Self.writeAll(out, $0) }
        }
        let lines: Int
        do {
            lines = try body { (line) throws(JournalError) -> Int64 in
                let offset = written
                buffer.append(contentsOf: line.utf8)
                written += Int64(line.utf8.count)
                if buffer.count >= 1 << 16, !flush() { throw Self.error("cannot write \(temporary)") }
                return offset
            }
        } catch {
            close(out)
            unlink(temporary)
            throw error
        }
        guard flush(), fsync(out) == 0 else {
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
        if readFD >= 0 { close(readFD) }
        readFD = open(path, O_RDONLY | O_CLOEXEC)
        appended = lines
        size = written
    }
}
