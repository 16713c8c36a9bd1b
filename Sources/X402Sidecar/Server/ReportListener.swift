#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Receives Nginx's after-response reports on a unix datagram socket, in syslog format:
/// `access_log syslog:server=unix:/run/x402/report.sock,nohostname,tag=x402 x402_report
/// if=$x402_payment_id;` with `log_format x402_report '$x402_payment_id $upstream_status';`.
///
/// Each datagram is `<PRI>TIMESTAMP x402: PAYMENT_ID STATUS`. With several upstream attempts
/// Nginx writes `502, 200`; the last status is the one the client got.
public final class ReportListener: Service, Sendable {
    let path: String
    let mode: UInt16
    let settlements: Settlements
    let logger: Logger

    public init(path: String, mode: UInt16, settlements: Settlements, logger: Logger) {
        self.path = path
        self.mode = mode
        self.settlements = settlements
        self.logger = logger
    }

    /// `(paymentId, status)` from one datagram, or nil if it is not a report.
    public static func parse(_ message: String) -> (String, Int)? {
        guard let tag = message.range(of: "x402: ") else { return nil }
        let body = message[tag.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
        guard let space = body.firstIndex(of: " ") else { return nil }
        let id = String(body[..<space])
        let statuses = body[body.index(after: space)...].split(whereSeparator: { $0 == "," || $0 == " " || $0 == ":" })
        guard !id.isEmpty, id.utf8.count <= 64, id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
            let last = statuses.last, let status = Int(last), (100...599).contains(status)
        else { return nil }
        return (id, status)
    }

    public func run() async throws {
        let fd = try Self.bind(path: path, mode: mode, logger: logger)
        logger.info("listening for nginx reports", metadata: ["address": "unixgram:\(path)"])
        let stopped = Atomic<Bool>(false)
        let settlements = self.settlements
        let logger = self.logger
        // A plain thread with blocking reads: a datagram per paid request needs nothing more, and
        // nginx's unbound sender sockets have no address NIO could report.
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 2048)
            while !stopped.load(ordering: .relaxed) {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 200) > 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { continue }
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                guard let (id, status) = ReportListener.parse(text) else {
                    logger.warning("ignored a report datagram that does not parse", metadata: ["bytes": "\(count)"])
                    continue
                }
                Task {
                    do {
                        let result = try await settlements.report(paymentId: id, upstreamStatus: status)
                        logger.debug("nginx report", metadata: [
                            "payment_id": "\(id)", "status": "\(status)", "result": "\(result)"])
                    } catch {
                        logger.error("cannot apply an nginx report", metadata: ["payment_id": "\(id)", "error": "\(error)"])
                    }
                }
            }
            close(fd)
        }
        reader.start()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .milliseconds(200))
            }
        } onGracefulShutdown: {}
        stopped.store(true, ordering: .relaxed)
        unlink(path)
    }

    static func bind(path: String, mode: UInt16, logger: Logger) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw JournalError(description: "cannot create the report socket") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw JournalError(description: "report socket path is too long: \(path)")
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
            throw JournalError(description: "cannot bind the report socket \(path): \(reason)")
        }
        if chmod(path, mode_t(mode)) != 0 {
            logger.warning("could not chmod the report socket", metadata: ["path": "\(path)"])
        }
        return fd
    }
}
