import Testing

@testable import X402Sidecar

/// Replies as hiredis reads them, including inputs the fuzzer (Fuzz/Targets/RedisReply) found read
/// wrongly: each case here was once a crash input, or guards the same conversion.
@Suite struct RESPReaderTests {
    static func replies(_ text: String, chunk: Int = .max) throws -> [RedisValue] {
        let reader = RESPReader()
        var out: [RedisValue] = []
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + min(chunk, bytes.count))
            try bytes[offset..<end].withUnsafeBytes { try reader.feed($0) }
            while let reply = try reader.next() { out.append(reply) }
            offset = end
        }
        return out
    }

    /// Found by fuzz-redis-reply (crash-7d251f4d…, the seed `*0`): an empty array, which is what
    /// ZRANGEBYSCORE answers for a payer without leases, was read as the null array, so
    /// `revoke(payer:)` failed with "unexpected ZRANGEBYSCORE reply".
    @Test func emptyArrayIsEmptyNotNull() throws {
        #expect(try Self.replies("*0\r\n") == [.array([])])
        #expect(try Self.replies("*2\r\n*0\r\n:1\r\n") == [.array([.array([]), .integer(1)])])
    }

    /// RESP2's null array and null bulk string both arrive as hiredis's nil reply.
    @Test func nullArrayAndNullBulkAreBothNil() throws {
        #expect(try Self.replies("*-1\r\n$-1\r\n") == [.bulk(nil), .bulk(nil)])
    }

    @Test func repliesDoNotDependOnHowTheBytesArrive() throws {
        let text = "+OK\r\n:1\r\n$3\r\nabc\r\n*2\r\n*0\r\n$-1\r\n-NOSCRIPT x\r\n"
        let expected: [RedisValue] = [
            .simple("OK"), .integer(1), .bulk(Array("abc".utf8)), .array([.array([]), .bulk(nil)]),
            .error("NOSCRIPT x"),
        ]
        for chunk in [1, 2, 3, 7, Int.max] { #expect(try Self.replies(text, chunk: chunk) == expected) }
    }

    @Test func malformedInputIsAnErrorNotAReply() {
        #expect(throws: RESPReader.ProtocolError.self) { try Self.replies("?what\r\n") }
    }
}
