import FuzzSupport
import X402

/// The strict JSON parser (RFC 8259, depth limit, duplicate keys refused). Besides not crashing:
/// what it accepts is UTF-8 and nests no deeper than the limit, writes back (JSONWriter) to text
/// that parses to the same value, and that text is a fixed point; `tooDeep` means only depth,
/// never a syntax problem in disguise.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let limit = JSONParser.defaultMaxDepth
    let value: JSONValue
    switch parse(bytes, maxDepth: limit) {
    case .success(let parsed): value = parsed
    case .failure(.tooDeep):
        // 64 is the deepest limit the code uses (HTTPJSONClient); far deeper recursion would only
        // test this process's stack (crash-654a907b in Tests/X402Tests/Fixtures/fuzz).
        if case .success(let deeper) = parse(bytes, maxDepth: 64) {
            require(nesting(deeper) > limit, "tooDeep for a document nested \(nesting(deeper)) deep")
        }
        return 0
    case .failure: return 0
    }
    require(nesting(value) <= limit, "accepted a document nested \(nesting(value)) deep")
    require(String(validating: bytes, as: UTF8.self) != nil, "accepted a document that is not UTF-8")
    var writer = JSONWriter(capacity: bytes.count)
    writer.value(value)
    let written = writer.bytes
    guard case .success(let reparsed) = parse(written, maxDepth: limit) else {
        require(false, "our own output does not parse: \(String(decoding: written, as: UTF8.self))")
        return 0
    }
    require(reparsed == value, "the written form parses to another value")
    var again = JSONWriter(capacity: written.count)
    again.value(reparsed)
    require(again.bytes == written, "writing is not deterministic")
    return 0
}

func parse(_ bytes: [UInt8], maxDepth: Int) -> Result<JSONValue, JSONParseError> {
    Result { () throws(JSONParseError) in try JSONParser.parse(bytes, maxDepth: maxDepth) }
}

/// Containers inside containers, counted as the parser counts them (`[1]` is 1).
func nesting(_ value: JSONValue) -> Int {
    switch value {
    case .object(let members): 1 + (members.values.map(nesting).max() ?? 0)
    case .array(let items): 1 + (items.map(nesting).max() ?? 0)
    default: 0
    }
}

@main
enum FuzzJSON {
    static func main() { runFuzzer(testOneInput) }
}
