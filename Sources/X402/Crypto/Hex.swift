/// Hex helpers for `0x`-prefixed Ethereum strings. Parsing is strict: only `0x`, then exactly the
/// expected number of hex digits (either case).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Lowercase hex with a `0x` prefix.
    public static func encode(_ bytes: some Sequence<UInt8>, prefix: Bool = true) -> String {
        var out = [UInt8]()
        out.reserveCapacity(66)
        if prefix { out.append(contentsOf: [0x30, 0x78]) }
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }

    /// Decodes `0x` followed by exactly `byteCount * 2` hex digits; `nil` for anything else.
    public static func decode(_ string: String, byteCount: Int) -> [UInt8]? {
        var string = string
        return string.withUTF8 { utf8 -> [UInt8]? in
            guard utf8.count == 2 + byteCount * 2, utf8[0] == 0x30, utf8[1] == 0x78 || utf8[1] == 0x58 else {
                return nil
            }
            var out = [UInt8](repeating: 0, count: byteCount)
            for index in 0..<byteCount {
                guard let high = nibble(utf8[2 + index * 2]), let low = nibble(utf8[3 + index * 2]) else { return nil }
                out[index] = high << 4 | low
            }
            return out
        }
    }

    /// Decodes `0x` followed by any even number of hex digits.
    public static func decode(_ string: String) -> [UInt8]? {
        let count = string.utf8.count
        guard count >= 2, count % 2 == 0 else { return nil }
        return decode(string, byteCount: (count - 2) / 2)
    }

    /// `true` for `0x` + 40 hex digits (any case; EIP-55 checksums are not required of clients).
    public static func isAddress(_ string: String) -> Bool {
        decode(string, byteCount: 20) != nil
    }

    /// EIP-55 mixed-case form of a 20-byte address, as wallets and the official clients write it.
    public static func checksumAddress(_ address: [UInt8]) -> String {
        let lower = Array(encode(address, prefix: false).utf8)
        let hash = Keccak256.hash(lower)
        var out = "0x"
        for (index, char) in lower.enumerated() {
            let nibble = index % 2 == 0 ? hash[index / 2] >> 4 : hash[index / 2] & 0x0F
            let upper = char >= UInt8(ascii: "a") && nibble >= 8
            out.unicodeScalars.append(Unicode.Scalar(upper ? char - 32 : char))
        }
        return out
    }
}
