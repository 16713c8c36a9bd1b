/// Recursive Length Prefix encoding (Ethereum yellow paper, appendix B), for signing transactions.
public enum RLP {
    public indirect enum Item: Sendable, Equatable {
        case bytes([UInt8])
        case list([Item])

        /// An unsigned integer as RLP wants it: big-endian, no leading zero bytes (0 is empty).
        public static func uint(_ value: UInt64) -> Item { .bytes(minimalBytes(value)) }

        /// A 256-bit big-endian quantity with its leading zeros stripped.
        public static func quantity(_ bigEndian: [UInt8]) -> Item { .bytes(Array(bigEndian.drop { $0 == 0 })) }
    }

    public static func encode(_ item: Item) -> [UInt8] {
        var out: [UInt8] = []
        append(item, to: &out)
        return out
    }

    static func append(_ item: Item, to out: inout [UInt8]) {
        switch item {
        case .bytes(let bytes):
            if bytes.count == 1 && bytes[0] < 0x80 {
                out.append(bytes[0])
            } else {
                appendLength(bytes.count, offset: 0x80, to: &out)
                out += bytes
            }
        case .list(let items):
            var payload: [UInt8] = []
            for element in items { append(element, to: &payload) }
            appendLength(payload.count, offset: 0xC0, to: &out)
            out += payload
        }
    }

    static func appendLength(_ length: Int, offset: UInt8, to out: inout [UInt8]) {
        if length < 56 {
            out.append(offset + UInt8(length))
        } else {
            let bytes = minimalBytes(UInt64(length))
            out.append(offset + 55 + UInt8(bytes.count))
            out += bytes
        }
    }

    public static func minimalBytes(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        var v = value
        while v > 0 {
            bytes.insert(UInt8(v & 0xFF), at: 0)
            v >>= 8
        }
        return bytes
    }
}
