import FuzzSupport
@testable import X402Sidecar

/// The Redis reply reader (hiredis's parser and our conversion of its replies), fed what a server
/// could send. Besides not crashing: the replies do not depend on how the bytes are split across
/// reads (the mode byte picks the chunk size, 0 = all at once), and every reply, written back as
/// RESP, reads back to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = read(input.body, chunk: input.body.count)
    let chunked = read(input.body, chunk: max(1, Int(input.mode % 8)))
    require(whole == chunked, "replies depend on the read size: \(whole) vs \(chunked)")
    for reply in whole.replies {
        let again = read(encode(reply), chunk: 64)
        require(again.replies == [reply] && !again.failed, "\(reply) does not read back: \(again)")
    }
    return 0
}

/// Every complete reply in `bytes`, and whether the reader refused them.
struct Outcome: Equatable {
    var replies: [RedisValue] = []
    var failed = false
}

func read(_ bytes: [UInt8], chunk: Int) -> Outcome {
    let reader = RESPReader()
    var outcome = Outcome()
    var offset = 0
    repeat {
        let end = min(bytes.count, offset + max(chunk, 1))
        do {
            try bytes[offset..<end].withUnsafeBytes { try reader.feed($0) }
            while let reply = try reader.next() { outcome.replies.append(reply) }
        } catch {
            outcome.failed = true
            return outcome
        }
        offset = end
    } while offset < bytes.count
    return outcome
}

/// RESP2 as a server writes it.
func encode(_ value: RedisValue) -> [UInt8] {
    func line(_ prefix: String, _ text: String) -> [UInt8] { Array((prefix + text + "\r\n").utf8) }
    switch value {
    case .simple(let text): return line("+", text)
    case .error(let text): return line("-", text)
    case .integer(let number): return line(":", String(number))
    case .bulk(nil): return line("$", "-1")
    case .bulk(let bytes?): return line("$", String(bytes.count)) + bytes + Array("\r\n".utf8)
    case .array(nil): return line("*", "-1")
    case .array(let items?): return line("*", String(items.count)) + items.flatMap(encode)
    }
}

@main
enum FuzzRedisReply {
    static func main() { runFuzzer(testOneInput) }
}
