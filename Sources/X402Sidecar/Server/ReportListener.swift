#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

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
    let group: any EventLoopGroup
    let logger: Logger

    public init(path: String, mode: UInt16, settlements: Settlements, group: any EventLoopGroup, logger: Logger) {
        self.path = path
        self.mode = mode
        self.settlements = settlements
        self.group = group
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
        let settlements = self.settlements
        let logger = self.logger
        let channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(settlements: settlements, logger: logger))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        if chmod(path, mode_t(mode)) != 0 {
            logger.warning("could not chmod the report socket", metadata: ["path": "\(path)"])
        }
        logger.info("listening for nginx reports", metadata: ["address": "unixgram:\(path)"])
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await channel.closeFuture.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let settlements: Settlements
        let logger: Logger

        init(settings settlements: Settlements, logger: Logger) {
            self.settlements = settlements
            self.logger = logger
        }

        convenience init(settlements: Settlements, logger: Logger) { self.init(settings: settlements, logger: logger) }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            let text = String(buffer: envelope.data)
            guard let (id, status) = ReportListener.parse(text) else {
                logger.warning("ignored a report datagram that does not parse", metadata: ["bytes": "\(text.utf8.count)"])
                return
            }
            let settlements = self.settlements
            let logger = self.logger
            Task {
                do {
                    let result = try await settlements.report(paymentId: id, upstreamStatus: status)
                    logger.debug("nginx report", metadata: ["payment_id": "\(id)", "status": "\(status)", "result": "\(result)"])
                } catch {
                    logger.error("cannot apply an nginx report", metadata: ["payment_id": "\(id)", "error": "\(error)"])
                }
            }
        }
    }
}
