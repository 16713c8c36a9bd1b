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
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= input.count {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(alphabet[Int(chunk >> 6 & 63)])
            out.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let remaining = input.count - index
        if remaining == 1 {
            let chunk = UInt32(input[index]) << 16
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(0x3D)
            out.append(0x3D)
        } else if remaining == 2 {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(alphabet[Int(chunk >> 6 & 63)])
            out.append(0x3D)
        }
        return String(decoding: out, as: UTF8.self)
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
