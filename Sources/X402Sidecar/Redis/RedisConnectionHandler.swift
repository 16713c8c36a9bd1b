import NIOCore

/// One Redis connection: commands go out in order, replies come back in order, each completing
/// the oldest waiting promise (pipelining). Not `Sendable`: lives on its channel's event loop.
final class RedisConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisCommand
    typealias OutboundOut = ByteBuffer

    private let reader = RESPReader()
    private var waiting = CircularBuffer<EventLoopPromise<RedisValue>>(initialCapacity: 16)

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        waiting.append(command.reply)
        let buffer = context.channel.allocator.buffer(bytes: RESPEncoder.encode(command.arguments))
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { try reader.feed($0) }
            while let reply = try reader.next() {
                guard let promise = waiting.popFirst() else {
                    throw RESPReader.ProtocolError(description: "a reply arrived that no command asked for")
                }
                promise.succeed(reply)
            }
        } catch {
            failAll(RedisClientError(code: .protocolError, message: "\(error)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisClientError(code: .connectionClosed, message: "the Redis connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RedisClientError(code: .connectionClosed, message: "Redis connection error: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisClientError) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}

/// A command and the promise its reply completes.
struct RedisCommand {
    var arguments: [String]
    var reply: EventLoopPromise<RedisValue>
}

/// Errors are values with a code, a message and nothing secret.
public struct RedisClientError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case badURL, connectFailed, connectionClosed, protocolError, timeout, serverError, backingOff
    }

    public var code: Code
    public var message: String

    public var description: String { "redis \(code.rawValue): \(message)" }
}
