#if canImport(Glibc)
import Glibc
#endif

/// A bound unix datagram socket: every syscall of the report listener, in one place. A plain
/// socket rather than NIO's datagram channel, because nginx sends from unbound sockets whose
/// empty source address NIO cannot report.
///
/// `@unchecked Sendable`: the descriptor is only read by one thread at a time (the listener's),
/// and closed once, by `deinit`.
final class UnixDatagramSocket: @unchecked Sendable {
    let path: String
    /// `false` when `chmod` failed (the socket works, but perhaps not for nginx's user).
    let modeSet: Bool
    private let fd: Int32

    struct SocketError: Error, CustomStringConvertible {
        var description: String
    }

    /// Binds `path` (an old socket file there is replaced) and sets its mode.
    init(path: String, mode: UInt16) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "cannot create the report socket") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw SocketError(description: "report socket path is too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SocketError(description: "cannot bind the report socket \(path): \(reason)")
        }
        modeSet = chmod(path, mode_t(mode)) == 0
        self.fd = fd
    }

    /// One datagram, waiting at most `timeoutMilliseconds`; nil when none arrived.
    func receive(into buffer: inout [UInt8], timeoutMilliseconds: Int32) -> Int? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) > 0 else { return nil }
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? count : nil
    }

    /// Removes the socket file (nginx's next report then fails fast instead of queueing).
    func unlinkPath() { unlink(path) }

    deinit { close(fd) }
}
