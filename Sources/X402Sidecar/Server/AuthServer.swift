#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The HTTP/1.1 server Nginx talks to: keep-alive, unix sockets and/or loopback TCP. A `Service`:
/// on graceful shutdown it stops accepting, lets in-flight requests finish, then returns.
public final class AuthServer: Service, Sendable {
    let core: SidecarCore
    let addresses: [ListenAddress]
    let group: any EventLoopGroup
    let logger: Logger
    let graceSeconds: Int
    /// `true`: the admin listener (token-protected `/admin/*`), not the auth endpoint.
    let admin: Bool
    private let channels = Mutex<[any Channel]>([])
    private let bound = Mutex<[ListenAddress: Int]>([:])

    public init(core: SidecarCore, addresses: [ListenAddress], group: any EventLoopGroup, logger: Logger,
                graceSeconds: Int = 10, admin: Bool = false) {
        self.core = core
        self.admin = admin
        self.addresses = addresses
        self.group = group
        self.logger = logger
        self.graceSeconds = graceSeconds
    }

    /// Binds every address. Port 0 binds an ephemeral port; `port(of:)` tells which.
    public func start() async throws {
        var opened: [any Channel] = []
        do {
            for address in addresses {
                let channel = try await bind(address)
                opened.append(channel)
                if let port = channel.localAddress?.port { bound.withLock { $0[address] = port } }
                logger.info(admin ? "admin listening" : "listening", metadata: ["address": "\(address)"])
            }
        } catch {
            for channel in opened { try? await channel.close() }
            throw error
        }
        channels.withLock { $0 = opened }
    }

    /// The TCP port actually bound for `address`.
    public func port(of address: ListenAddress) -> Int? { bound.withLock { $0[address] } }

    public func run() async throws {
        if channels.withLock({ $0.isEmpty }) { try await start() }
        let listening = channels.withLock { $0 }
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                for channel in listening { try? await channel.closeFuture.get() }
            } onCancel: {
                for channel in listening { channel.close(promise: nil) }
            }
        } onGracefulShutdown: {
            for channel in listening { channel.close(promise: nil) }
        }
        logger.info("stopped accepting connections")
        await drain()
    }

    /// Lets requests already received get their answer (a decision may be waiting on Redis), up to
    /// the grace period; Nginx retries nothing, so a dropped answer would be a client-visible error.
    func drain() async {
        let deadline = UnixClock.monotonicNanoseconds() + UInt64(max(0, graceSeconds)) * 1_000_000_000
        while core.inFlight.load(ordering: .relaxed) > 0, UnixClock.monotonicNanoseconds() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = core.inFlight.load(ordering: .relaxed)
        if left > 0 { logger.warning("shutdown grace period over with requests unanswered", metadata: ["requests": "\(left)"]) }
    }

    /// Closes the listeners (used by tests and on shutdown).
    public func stop() async {
        let listening = channels.withLock { $0 }
        for channel in listening { try? await channel.close() }
    }

    private func bind(_ address: ListenAddress) async throws -> any Channel {
        let core = self.core
        let admin = self.admin
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    // No outbound header validation: every response header is written by
                    // `DecisionResponse` and the endpoint handlers from ASCII-only values (fixed
                    // words, numbers, hex, base64, ASCII-escaped JSON, a host checked by
                    // `isPlausibleHost`), so the per-byte scan of ~2 KB of headers per answer that
                    // guards against response splitting has nothing to find.
                    try pipeline.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: false,
                        withEncoderConfiguration: HTTPResponseEncoder.Configuration())
                    try pipeline.addHandler(AuthHandler(core: core, admin: admin))
                }
            }
        switch address {
        case .tcp(let host, let port):
            return try await bootstrap
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: port).get()
        case .unix(let path, let mode):
            let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            // Let Nginx's worker user connect; the directory's permissions still apply.
            if chmod(path, mode_t(mode)) != 0 {
                logger.warning("could not chmod unix socket", metadata: ["path": "\(path)", "errno": "\(errno)"])
            }
            return channel
        }
    }
}
