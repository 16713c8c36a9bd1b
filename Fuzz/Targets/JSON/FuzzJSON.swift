import FuzzSupport
import X402

/// The strict JSON parser (RFC 8259, depth limit, duplicate keys refused). Besides not crashing:
/// what it accepts is UTF-8, writes back (JSONWriter) to text it parses to the same value, and
/// that text is a fixed point; `tooDeep` means only depth, never a syntax problem in disguise.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    func parse(_ bytes: [UInt8], maxDepth: Int) -> Result<JSONValue, JSONParseError> {
        Result { () throws(JSONParseError) in try JSONParser.parse(bytes, maxDepth: maxDepth) }
    }
    let value: JSONValue
    switch parse(bytes, maxDepth: JSONParser.defaultMaxDepth) {
    case .success(let parsed): value = parsed
    case .failure(.tooDeep):
        // Inputs are at most a few KB, so this depth is never the limit.
        if case .failure(.tooDeep) = parse(bytes, maxDepth: 100_000) { require(false, "tooDeep without a depth limit") }
        return 0
    case .failure: return 0
    }
    require(String(validating: bytes, as: UTF8.self) != nil, "accepted a document that is not UTF-8")
    var writer = JSONWriter(capacity: bytes.count)
    writer.value(value)
    let written = writer.bytes
    guard case .success(let reparsed) = parse(written, maxDepth: 100_000) else {
        require(false, "our own output does not parse: \(String(decoding: written, as: UTF8.self))")
        return 0
    }
    require(reparsed == value, "the written form parses to another value")
    var again = JSONWriter(capacity: written.count)
    again.value(reparsed)
    require(again.bytes == written, "writing is not deterministic")
    return 0
}

@main
enum FuzzJSON {
    static func main() { runFuzzer(testOneInput) }
}
