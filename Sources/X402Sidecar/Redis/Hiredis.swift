internal import CHiredis

#if canImport(Glibc)
import Glibc
#endif

/// A Redis reply.
public enum RedisValue: Sendable, Equatable {
    case simple(String)
    case error(String)
    case integer(Int64)
    /// `nil` is the null bulk string.
    case bulk([UInt8]?)
    /// `nil` is the null array; hiredis 0.14 reads `*-1` as its nil reply, so that arrives as `.bulk(nil)`.
    case array([RedisValue]?)

    public var string: String? {
        switch self {
        case .simple(let text): return text
        case .bulk(let bytes?): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }
}

/// RESP parsing by hiredis's reply reader. The only file that touches hiredis: sockets belong to
/// NIO, hiredis only turns bytes into replies and commands into bytes.
///
/// Not `Sendable`: one reader per connection, used on that connection's event loop.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    struct ProtocolError: Error, CustomStringConvertible {
        var description: String
    }

    init() {
        reader = redisReaderCreate()
    }

    deinit { redisReaderFree(reader) }

    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        let status = redisReaderFeed(reader, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        guard status == REDIS_OK else { throw ProtocolError(description: "hiredis refused input") }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    func next() throws -> RedisValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
            let message = withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw ProtocolError(description: "malformed Redis reply: \(message)")
        }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.convert(reply.assumingMemoryBound(to: redisReply.self))
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let value = reply.pointee
        func text() -> [UInt8] {
            guard let str = value.str else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: value.len))
        }
        switch value.type {
        case REDIS_REPLY_STATUS: return .simple(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(value.integer))
        case REDIS_REPLY_STRING: return .bulk(text())
        case REDIS_REPLY_NIL: return .bulk(nil)
        case REDIS_REPLY_ARRAY:
            // hiredis allocates no element vector for `*0` (an empty array, e.g. ZRANGEBYSCORE finding
            // nothing); the null array `*-1` arrives as REDIS_REPLY_NIL, not here.
            guard value.element != nil else { return .array([]) }
            return .array((0..<value.elements).map { convert(CHiredis_element(reply, $0)) })
        default: return .error("unknown reply type \(value.type)")
        }
    }
}

/// Command encoding by hiredis's formatter (binary-safe arguments).
enum RESPEncoder {
    static func encode(_ arguments: [String]) -> [UInt8] {
        let utf8 = arguments.map { Array($0.utf8) }
        var lengths = utf8.map { $0.count }
        var target: UnsafeMutablePointer<CChar>?
        // Keep every argument's bytes alive while hiredis reads them.
        let pointers = utf8.map { bytes -> UnsafeMutablePointer<CChar> in
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, bytes.count))
            bytes.withUnsafeBytes { raw in
                if raw.count > 0 { UnsafeMutableRawPointer(pointer).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            }
            return pointer
        }
        defer { pointers.forEach { $0.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = pointers.map { UnsafePointer($0) }
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &argv, &lengths)
        guard length > 0, let target else { return [] }
        defer { redisFreeCommand(target) }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }
}
