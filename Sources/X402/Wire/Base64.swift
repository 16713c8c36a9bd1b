/// Standard base64 (RFC 4648 §4, `+/`, `=` padding), as x402 headers use it.
///
/// Decoding is strict: length a multiple of four, padding only at the end, no whitespace, and
/// unused trailing bits zero, so every header value has exactly one accepted spelling.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, char) in alphabet.enumerated() { table[Int(char)] = UInt8(index) }
        return table
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        if let encoded = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0) }) { return encoded }
        return Array(bytes).withUnsafeBufferPointer { encode(buffer: $0) }
    }

    /// The encoding written straight into the string's storage (a challenge header is ~1 KB).
    static func encode(buffer input: UnsafeBufferPointer<UInt8>) -> String {
        let outputCount = (input.count + 2) / 3 * 4
        if outputCount == 0 { return "" }
        return alphabet.withUnsafeBufferPointer { table in
            String(unsafeUninitializedCapacity: outputCount) { out in
                var index = 0
                var written = 0
                while index + 3 <= input.count {
                    let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                    out[written] = table[Int(chunk >> 18 & 63)]
                    out[written + 1] = table[Int(chunk >> 12 & 63)]
                    out[written + 2] = table[Int(chunk >> 6 & 63)]
                    out[written + 3] = table[Int(chunk & 63)]
                    index += 3
                    written += 4
                }
                let remaining = input.count - index
                if remaining > 0 {
                    let second = remaining == 2 ? UInt32(input[index + 1]) << 8 : 0
                    let chunk = UInt32(input[index]) << 16 | second
                    out[written] = table[Int(chunk >> 18 & 63)]
                    out[written + 1] = table[Int(chunk >> 12 & 63)]
                    out[written + 2] = remaining == 2 ? table[Int(chunk >> 6 & 63)] : 0x3D
                    out[written + 3] = 0x3D
                }
                return outputCount
            }
        }
    }

    public static func encode(_ string: String) -> String { encode(Array(string.utf8)) }

    /// Decodes strict base64; `nil` for anything else.
    public static func decode(_ string: String) -> [UInt8]? {
        var string = string
        return string.withUTF8 { decode($0) }
    }

    public static func decode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = input.count
        guard count % 4 == 0 else { return nil }
        if count == 0 { return [] }
        var padding = 0
        if input[count - 1] == 0x3D { padding += 1 }
        if input[count - 2] == 0x3D { padding += 1 }
        if padding == 1 && input[count - 2] == 0x3D { return nil }
        let outputCount = count / 4 * 3 - padding
        var valid = true
        let out = reverse.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: outputCount) { output, initialized in
                var index = 0
                var written = 0
                while index < count {
                    let last = index + 4 == count
                    let a = table[Int(input[index])], b = table[Int(input[index + 1])]
                    var c = table[Int(input[index + 2])], d = table[Int(input[index + 3])]
                    if last && padding >= 1 { d = 0 }
                    if last && padding == 2 { c = 0 }
                    guard (a | b | c | d) < 64 else {
                        valid = false
                        break
                    }
                    let chunk = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    output[written] = UInt8(truncatingIfNeeded: chunk >> 16)
                    written += 1
                    if !(last && padding == 2) {
                        output[written] = UInt8(truncatingIfNeeded: chunk >> 8)
                        written += 1
                    }
                    if !(last && padding >= 1) {
                        output[written] = UInt8(truncatingIfNeeded: chunk)
                        written += 1
                    }
                    if last {
                        // Non-zero bits under the padding would give a second spelling of the same bytes.
                        if padding == 2 && (b & 0x0F) != 0 { valid = false }
                        if padding == 1 && (c & 0x03) != 0 { valid = false }
                    }
                    index += 4
                }
                initialized = written
            }
        }
        guard valid, out.count == outputCount else { return nil }
        return out
    }
}
