import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Receives Nginx's after-response reports on a unix datagram socket, in syslog format:
/// `access_log syslog:server=unix:/run/x402/report.sock,nohostname,tag=x402 x402_report
/// if=$x402_payment_id;` with `log_format x402_report '$x402_payment_id $upstream_status';`.
///
/// Each datagram is `<PRI>TIMESTAMP x402: PAYMENT_ID STATUS`; the C module's log-phase report adds
/// `bytes=`, `duration_ms=` and `lease=` (see `parse`).
public final class ReportListener: Service, Sendable {
    let path: String
    let mode: UInt16
    let settlements: Settlements?
    let leases: (any LeaseStore)?
    let logger: Logger

    public init(path: String, mode: UInt16, settlements: Settlements?, leases: (any LeaseStore)? = nil, logger: Logger) {
        self.path = path
        self.mode = mode
        self.settlements = settlements
        self.leases = leases
        self.logger = logger
    }

    /// One report: the payment, the status the client got, and what the C module adds.
    public struct Report: Sendable, Equatable {
        public var paymentId: String
        public var status: Int
        public var bytes: Int?
        public var durationMilliseconds: Int?
        /// The lease's `jti`, for leased requests (their concurrency slot ends with the request).
        public var lease: String?
        /// The concurrency slot the request held (nginx's `$request_id`).
        public var slot: String?
    }

    /// The report in one datagram, or nil if it is not one:
    /// `<PRI>… x402: PAYMENT_ID STATUS[, STATUS…] [bytes=N] [duration_ms=N] [lease=JTI]`.
    /// With several upstream attempts nginx writes `502, 200`: the last status is the client's.
    public static func parse(_ message: String) -> Report? {
        guard let tag = message.range(of: "x402: ") else { return nil }
        let tokens = message[tag.upperBound...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" })
        guard let id = tokens.first.map(String.init), id.utf8.count <= 64,
            id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        var statuses: [Substring] = []
        var report = Report(paymentId: id, status: 0)
        for token in tokens.dropFirst() {
            if let equals = token.firstIndex(of: "=") {
                let value = token[token.index(after: equals)...]
                switch token[..<equals] {
                case "bytes": report.bytes = Int(value)
                case "duration_ms": report.durationMilliseconds = Int(value)
                case "lease": report.lease = value.isEmpty || value == "-" ? nil : String(value.prefix(64))
                case "slot": report.slot = value.isEmpty || value == "-" ? nil : String(value.prefix(64))
                default: break
                }
            } else if report.bytes == nil, report.durationMilliseconds == nil, report.lease == nil, report.slot == nil {
                statuses.append(contentsOf: token.split(whereSeparator: { $0 == "," || $0 == ":" }))
            }
        }
        guard let last = statuses.last, let status = Int(last), (100...599).contains(status) else { return nil }
        report.status = status
        return report
    }

    /// A paid request's status goes to settlement (`after`); a leased one gives its slot back.
    static func apply(_ report: Report, settlements: Settlements?, leases: (any LeaseStore)?, logger: Logger) async {
        if let jti = report.lease, let slot = report.slot, let leases {
            do {
                let released = try await leases.release(jti: jti, slot: slot)
                logger.debug("lease slot released", metadata: ["lease_id": "\(jti)", "held": "\(released)"])
            } catch {
                logger.error("cannot release a lease slot (it frees itself at the lease's exp)", metadata: [
                    "lease_id": "\(jti)", "error": "\(error)"])
            }
        }
        guard report.paymentId != "-", let settlements else { return }
        do {
            let result = try await settlements.report(paymentId: report.paymentId, upstreamStatus: report.status)
            logger.debug("nginx report", metadata: [
                "payment_id": "\(report.paymentId)", "status": "\(report.status)", "result": "\(result)"])
        } catch {
            logger.error("cannot apply an nginx report", metadata: ["payment_id": "\(report.paymentId)", "error": "\(error)"])
        }
    }

    public func run() async throws {
        let socket = try UnixDatagramSocket(path: path, mode: mode)
        if !socket.modeSet { logger.warning("could not chmod the report socket", metadata: ["path": "\(path)"]) }
        logger.info("listening for nginx reports", metadata: ["address": "unixgram:\(path)"])
        let stopped = Atomic<Bool>(false)
        let settlements = self.settlements
        let leases = self.leases
        let logger = self.logger
        // A plain thread with blocking reads: a datagram per paid request needs nothing more.
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 2048)
            while !stopped.load(ordering: .relaxed) {
                guard let count = socket.receive(into: &buffer, timeoutMilliseconds: 200) else { continue }
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                guard let report = ReportListener.parse(text) else {
                    logger.warning("ignored a report datagram that does not parse", metadata: ["bytes": "\(count)"])
                    continue
                }
                Task { await ReportListener.apply(report, settlements: settlements, leases: leases, logger: logger) }
            }
        }
        reader.start()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .milliseconds(200))
            }
        } onGracefulShutdown: {}
        stopped.store(true, ordering: .relaxed)
        socket.unlinkPath()
    }
}
