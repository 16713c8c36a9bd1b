import Logging
import NIOCore
import NIOPosix
import Synchronization
import X402

/// A small Redis client on NIO sockets: one pipelined connection per event loop, opened lazily,
/// reopened after failures with exponential backoff (fail fast while backing off, so callers fail
/// closed instead of queueing behind a dead server).
public final class RedisClient: Sendable {
    public struct Configuration: Sendable, Equatable {
        public enum Endpoint: Sendable, Equatable {
            case tcp(host: String, port: Int)
            case unix(path: String)
        }

        public var endpoint: Endpoint
        public var username: String?
        public var password: String?
        public var database: Int
        public var connectTimeout: TimeAmount = .seconds(2)
        public var commandTimeout: TimeAmount = .seconds(2)

        /// `redis://[[user]:password@]host[:port][/db]` or `unix:///path/to.sock[?db=N]`.
        public init(url: String) throws {
            func bad(_ why: String) -> RedisClientError { RedisClientError(code: .badURL, message: why) }
            if url.hasPrefix("unix://") {
                let rest = url.dropFirst("unix://".count)
                let parts = rest.split(separator: "?", maxSplits: 1)
                guard let path = parts.first, path.hasPrefix("/") else { throw bad("unix:// needs an absolute path") }
                endpoint = .unix(path: String(path))
                database = 0
                if parts.count == 2 {
                    guard parts[1].hasPrefix("db="), let db = Int(parts[1].dropFirst(3)), db >= 0 else {
                        throw bad("unix:// accepts only ?db=N")
                    }
                    database = db
                }
                return
            }
            if url.hasPrefix("rediss://") { throw bad("rediss:// (TLS) is not supported; use a local Redis or stunnel") }
            guard url.hasPrefix("redis://") else { throw bad("the URL must start with redis:// or unix://") }
            var rest = Substring(url.dropFirst("redis://".count))
            if let at = rest.lastIndex(of: "@") {
                let credentials = rest[..<at]
                rest = rest[rest.index(after: at)...]
                if let colon = credentials.firstIndex(of: ":") {
                    let user = credentials[..<colon]
                    username = user.isEmpty ? nil : String(user)
                    password = String(credentials[credentials.index(after: colon)...])
                } else {
                    password = String(credentials)
                }
            }
            var hostPort = rest
            database = 0
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                let db = rest[rest.index(after: slash)...]
                if !db.isEmpty {
                    guard let number = Int(db), number >= 0 else { throw bad("the database must be a number") }
                    database = number
                }
            }
            var host = String(hostPort)
            var port = 6379
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else { throw bad("unclosed [ in the host") }
                host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let number = Int(after.dropFirst()), (1...65535).contains(number) else { throw bad("bad port") }
                    port = number
                }
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                guard let number = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(number) else {
                    throw bad("bad port")
                }
                port = number
            }
            guard !host.isEmpty else { throw bad("the URL has no host") }
            endpoint = .tcp(host: host, port: port)
        }
    }

    private enum Slot {
        case idle
        case connecting(EventLoopFuture<any Channel>)
        case connected(any Channel)
    }

    private struct State {
        var slots: [ObjectIdentifier: Slot] = [:]
        var failures = 0
        var retryAt: NIODeadline = .uptimeNanoseconds(0)
        var closed = false
    }

    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())

    public init(configuration: Configuration, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    /// Sends one command on `eventLoop`'s connection; the future completes on that loop.
    public func send(_ arguments: [String], on eventLoop: any EventLoop) -> EventLoopFuture<RedisValue> {
        connection(on: eventLoop).flatMap { channel in
            let promise = eventLoop.makePromise(of: RedisValue.self)
            let timeout = eventLoop.scheduleTask(in: self.configuration.commandTimeout) {
                promise.fail(RedisClientError(code: .timeout, message: "no reply within the command timeout"))
                channel.close(promise: nil)  // replies would now be out of step
            }
            channel.writeAndFlush(RedisCommand(arguments: arguments, reply: promise)).cascadeFailure(to: promise)
            return promise.futureResult.always { _ in timeout.cancel() }
        }.flatMapThrowing { reply in
            if case .error(let message) = reply { throw RedisClientError(code: .serverError, message: message) }
            return reply
        }
    }

    public func send(_ arguments: [String]) async throws -> RedisValue {
        try await send(arguments, on: group.any()).get()
    }

    /// EVALSHA with a NOSCRIPT fallback to EVAL (which also loads the script).
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        let tail = [String(keys.count)] + keys + arguments
        do {
            return try await send(["EVALSHA", script.sha1] + tail)
        } catch let error as RedisClientError where error.code == .serverError && error.message.hasPrefix("NOSCRIPT") {
            return try await send(["EVAL", script.source] + tail)
        }
    }

    public func ping() async throws {
        guard try await send(["PING"]) == .simple("PONG") else {
            throw RedisClientError(code: .protocolError, message: "PING did not answer PONG")
        }
    }

    public func close() async {
        let channels = state.withLock { state -> [any Channel] in
            state.closed = true
            let open = state.slots.values.compactMap { slot -> (any Channel)? in
                if case .connected(let channel) = slot { return channel }
                return nil
            }
            state.slots = [:]
            return open
        }
        for channel in channels { try? await channel.close() }
    }

    private func connection(on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let id = ObjectIdentifier(eventLoop)
        enum Next { case use(EventLoopFuture<any Channel>), fail(RedisClientError), connect(EventLoopPromise<any Channel>) }
        let next: Next = state.withLock { state in
            if state.closed { return .fail(RedisClientError(code: .connectionClosed, message: "the client is closed")) }
            switch state.slots[id] ?? .idle {
            case .connected(let channel) where channel.isActive:
                return .use(eventLoop.makeSucceededFuture(channel))
            case .connecting(let future):
                return .use(future)
            default:
                if NIODeadline.now() < state.retryAt {
                    return .fail(RedisClientError(code: .backingOff, message: "Redis was unreachable; retrying shortly"))
                }
                let promise = eventLoop.makePromise(of: (any Channel).self)
                state.slots[id] = .connecting(promise.futureResult)
                return .connect(promise)
            }
        }
        switch next {
        case .use(let future): return future.hop(to: eventLoop)
        case .fail(let error): return eventLoop.makeFailedFuture(error)
        case .connect(let promise):
            open(on: eventLoop).whenComplete { result in
                self.state.withLock { state in
                    switch result {
                    case .success(let channel):
                        state.slots[id] = .connected(channel)
                        if state.failures > 0 { self.logger.notice("redis reconnected", metadata: ["after_failures": "\(state.failures)"]) }
                        state.failures = 0
                    case .failure(let error):
                        state.slots[id] = .idle
                        state.failures += 1
                        let backoff = min(5_000, 50 << min(state.failures, 7))
                        state.retryAt = .now() + .milliseconds(Int64(backoff))
                        self.logger.warning("redis unreachable", metadata: ["error": "\(error)", "retry_ms": "\(backoff)"])
                    }
                }
                promise.completeWith(result)
            }
            return promise.futureResult
        }
    }

    private func open(on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisConnectionHandler())
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch configuration.endpoint {
        case .tcp(let host, let port):
            connected = bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1).connect(host: host, port: port)
        case .unix(let path):
            connected = bootstrap.connect(unixDomainSocketPath: path)
        }
        return connected.flatMapError { error in
            eventLoop.makeFailedFuture(RedisClientError(code: .connectFailed, message: "\(error)"))
        }.flatMap { channel in
            self.handshake(channel).map { channel }
        }
    }

    /// AUTH and SELECT, before the connection is handed out.
    private func handshake(_ channel: any Channel) -> EventLoopFuture<Void> {
        var commands: [[String]] = []
        if let password = configuration.password {
            commands.append(configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if configuration.database != 0 { commands.append(["SELECT", String(configuration.database)]) }
        var future = channel.eventLoop.makeSucceededVoidFuture()
        for command in commands {
            future = future.flatMap {
                let promise = channel.eventLoop.makePromise(of: RedisValue.self)
                channel.writeAndFlush(RedisCommand(arguments: command, reply: promise)).cascadeFailure(to: promise)
                return promise.futureResult.flatMapThrowing { reply in
                    if case .error(let message) = reply {
                        throw RedisClientError(code: .serverError, message: "\(command[0]) failed: \(message)")
                    }
                }
            }
        }
        return future.flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
        }
    }
}

/// A Lua script with its SHA-1, computed once.
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Hex.encode(OpenSSL.sha1(Array(source.utf8)), prefix: false)
    }
}
