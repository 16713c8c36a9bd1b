/// Ethereum's Keccak-256: the original Keccak submission with `0x01` padding, **not** FIPS-202
/// SHA3-256 (which pads with `0x06`). Debian 12's OpenSSL 3.0 has no Keccak, hence our own.
///
/// Rate 136 bytes (1088 bits), capacity 512 bits, 24 rounds of Keccak-f[1600].
public enum Keccak256 {
    public static let rate = 136

    /// The 32-byte digest of `data`.
    public static func hash(_ data: some Collection<UInt8>) -> [UInt8] {
        if let digest = data.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) {
            return digest
        }
        return Array(data).withUnsafeBytes { hash($0) }
    }

    /// The 32-byte digest of the bytes in `input`.
    public static func hash(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 25) { state in
            state.initialize(repeating: 0)
            var offset = 0
            let count = input.count
            while count - offset >= rate {
                absorb(UnsafeRawBufferPointer(rebasing: input[offset..<(offset + rate)]), into: state)
                permute(state)
                offset += rate
            }
            // Final block: the remaining bytes, then Keccak's pad10*1 with domain byte 0x01,
            // XORed straight into the state lanes (little-endian).
            let remaining = count - offset
            for index in 0..<remaining {
                state[index >> 3] ^= UInt64(input[offset + index]) << (UInt64(index & 7) << 3)
            }
            state[remaining >> 3] ^= UInt64(0x01) << (UInt64(remaining & 7) << 3)
            state[(rate - 1) >> 3] ^= UInt64(0x80) << 56
            permute(state)

            return [UInt8](unsafeUninitializedCapacity: 32) { digest, initialized in
                for lane in 0..<4 {
                    let value = state[lane]
                    for byte in 0..<8 { digest[lane * 8 + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
                }
                initialized = 32
            }
        }
    }

    @inline(__always)
    private static func absorb(_ block: UnsafeRawBufferPointer, into state: UnsafeMutableBufferPointer<UInt64>) {
        for lane in 0..<(rate / 8) {
            state[lane] ^= UInt64(littleEndian: block.loadUnaligned(fromByteOffset: lane * 8, as: UInt64.self))
        }
    }

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]

    @inline(__always)
    private static func rotl(_ value: UInt64, _ shift: UInt64) -> UInt64 {
        (value << shift) | (value >> (64 &- shift))
    }

    /// Keccak-f[1600].
    private static func permute(_ a: UnsafeMutableBufferPointer<UInt64>) {
        roundConstants.withUnsafeBufferPointer { rc in
            for round in 0..<24 {
                // θ
                let c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20]
                let c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21]
                let c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22]
                let c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23]
                let c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24]
                let d0 = c4 ^ rotl(c1, 1)
                let d1 = c0 ^ rotl(c2, 1)
                let d2 = c1 ^ rotl(c3, 1)
                let d3 = c2 ^ rotl(c4, 1)
                let d4 = c3 ^ rotl(c0, 1)
                var row = 0
                while row < 25 {
                    a[row] ^= d0
                    a[row + 1] ^= d1
                    a[row + 2] ^= d2
                    a[row + 3] ^= d3
                    a[row + 4] ^= d4
                    row += 5
                }
                // ρ and π, unrolled: each lane moves to its π position rotated by its ρ offset.
                var carried = a[1]
                var next: UInt64 = 0
                next = a[10]; a[10] = rotl(carried, 1); carried = next
                next = a[7]; a[7] = rotl(carried, 3); carried = next
                next = a[11]; a[11] = rotl(carried, 6); carried = next
                next = a[17]; a[17] = rotl(carried, 10); carried = next
                next = a[18]; a[18] = rotl(carried, 15); carried = next
                next = a[3]; a[3] = rotl(carried, 21); carried = next
                next = a[5]; a[5] = rotl(carried, 28); carried = next
                next = a[16]; a[16] = rotl(carried, 36); carried = next
                next = a[8]; a[8] = rotl(carried, 45); carried = next
                next = a[21]; a[21] = rotl(carried, 55); carried = next
                next = a[24]; a[24] = rotl(carried, 2); carried = next
                next = a[4]; a[4] = rotl(carried, 14); carried = next
                next = a[15]; a[15] = rotl(carried, 27); carried = next
                next = a[23]; a[23] = rotl(carried, 41); carried = next
                next = a[19]; a[19] = rotl(carried, 56); carried = next
                next = a[13]; a[13] = rotl(carried, 8); carried = next
                next = a[12]; a[12] = rotl(carried, 25); carried = next
                next = a[2]; a[2] = rotl(carried, 43); carried = next
                next = a[20]; a[20] = rotl(carried, 62); carried = next
                next = a[14]; a[14] = rotl(carried, 18); carried = next
                next = a[22]; a[22] = rotl(carried, 39); carried = next
                next = a[9]; a[9] = rotl(carried, 61); carried = next
                next = a[6]; a[6] = rotl(carried, 20); carried = next
                next = a[1]; a[1] = rotl(carried, 44); carried = next
                _ = carried
                // χ
                row = 0
                while row < 25 {
                    let b0 = a[row], b1 = a[row + 1], b2 = a[row + 2], b3 = a[row + 3], b4 = a[row + 4]
                    a[row] = b0 ^ (~b1 & b2)
                    a[row + 1] = b1 ^ (~b2 & b3)
                    a[row + 2] = b2 ^ (~b3 & b4)
                    a[row + 3] = b3 ^ (~b4 & b0)
                    a[row + 4] = b4 ^ (~b0 & b1)
                    row += 5
                }
                // ι
                a[0] ^= rc[round]
            }
        }
    }
}
