import Synchronization
import X402

/// The decoded payloads of payment headers that were refused as already used, for the next time
/// the same header comes: a replay flood presents one captured header again and again, and
/// decoding it (base64, JSON) is most of what refusing it costs.
///
/// Decoding is a pure function of the header (`PaymentVerifier.decode`), so an entry is exactly
/// what decoding would give; every check after it — expiry, price, the ledger — still runs on each
/// request. Only refused headers are kept (a fresh payment is never seen twice when all is well),
/// at most `capacity` of them, the oldest forgotten first.
public final class ReplayedPayloads: Sendable {
    private struct Entry {
        var header: String
        var version: Int
        var payload: PaymentPayload
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var order: [Int] = []
        var next = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 256) {
        self.capacity = max(0, capacity)
    }

    public var count: Int { state.withLock { $0.entries.count } }

    /// `PaymentVerifier.decode(presented)`, from the entry for this header when there is one.
    public func decode(_ presented: PresentedPayment) -> Result<PaymentPayload, PaymentFailure> {
        if capacity > 0, let (header, version) = Self.single(presented) {
            let key = Self.key(header, version)
            let hit = state.withLock { state -> PaymentPayload? in
                guard let entry = state.entries[key], entry.version == version, entry.header == header else {
                    return nil
                }
                return entry.payload
            }
            if let hit { return .success(hit) }
        }
        return PaymentVerifier.decode(presented)
    }

    /// Keeps the payload of a header that was refused as already used.
    public func remember(_ presented: PresentedPayment, _ payload: PaymentPayload) {
        guard capacity > 0, let (header, version) = Self.single(presented) else { return }
        let key = Self.key(header, version)
        let capacity = self.capacity
        state.withLock { state in
            let entry = Entry(header: header, version: version, payload: payload)
            if state.entries.updateValue(entry, forKey: key) != nil { return }
            if state.order.count < capacity {
                state.order.append(key)
            } else {
                state.entries[state.order[state.next]] = nil
                state.order[state.next] = key
                state.next = (state.next + 1) % capacity
            }
        }
    }

    /// The one header of a well-formed presentation (others are refused before decoding anyway).
    private static func single(_ presented: PresentedPayment) -> (String, Int)? {
        if presented.duplicated { return nil }
        switch (presented.v2Header, presented.v1Header) {
        case (let v2?, nil): return (v2, 2)
        case (nil, let v1?): return (v1, 1)
        default: return nil
        }
    }

    /// The length and one 8-byte word every 64 bytes: the signature and the nonce each span over
    /// a hundred base64 characters, so two headers for different authorizations differ in some
    /// sampled word, and hashing all ~1.4 KB cost more than the lookup saves on a fresh payment.
    /// Entries compare the whole header, so two headers sharing a key only ever miss.
    private static func key(_ header: String, _ version: Int) -> Int {
        var hasher = Hasher()
        var header = header
        header.withUTF8 { bytes in
            hasher.combine(bytes.count)
            let raw = UnsafeRawBufferPointer(bytes)
            var offset = 0
            while offset + 8 <= raw.count {
                hasher.combine(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 64
            }
            if raw.count >= 8 { hasher.combine(raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self)) }
        }
        hasher.combine(version)
        return hasher.finalize()
    }
}
