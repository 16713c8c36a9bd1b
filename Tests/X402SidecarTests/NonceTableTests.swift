import Testing
import X402
@testable import X402Sidecar

/// The packed table behind the in-process ledgers gives back exactly what it was given, whether a
/// key and record pack into words (every real payment) or have to be kept as text.
@Suite struct NonceTableTests {
    static let payer = "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"
    static let asset = "0x036cbd53842c5426634e7929541ec2318f3dcf7e"

    static func key(_ n: Int, network: String = "eip155:84532") -> NonceKey {
        NonceKey(network: network, asset: asset, payer: payer, nonce: Hex.encode(Keccak256.hash(Array("n\(n)".utf8))))
    }

    static func paymentId(_ n: Int) -> String {
        String(Hex.encode(Keccak256.hash(Array("id\(n)".utf8)).prefix(16)).dropFirst(2))
    }

    @Test func packedKeysAndRecordsRoundTrip() {
        let key = Self.key(1)
        let packed = try! #require(PackedNonceKey(key))
        #expect(packed.unpacked == key)
        let transaction = Hex.encode(Keccak256.hash(Array("tx".utf8)))
        for record in [
            NonceRecord(state: .reserved, token: Self.paymentId(1), expiresAt: 1_900_000_000),
            NonceRecord(state: .settled, token: Self.paymentId(2), expiresAt: 42, transaction: transaction),
        ] {
            #expect(PackedNonceRecord(record)?.unpacked == record)
        }
        // Text that would not come back byte for byte is not packed.
        #expect(PackedNonceRecord(NonceRecord(state: .reserved, token: "owner", expiresAt: 1)) == nil)
        #expect(PackedNonceRecord(NonceRecord(state: .reserved, token: Self.paymentId(3).uppercased(), expiresAt: 1)) == nil)
        #expect(PackedNonceRecord(NonceRecord(state: .settled, token: Self.paymentId(3), expiresAt: 1,
                                              transaction: "-")) == nil)
        #expect(Word160("0x" + String(repeating: "AB", count: 20)) == nil)
        #expect(Word160(Self.payer)?.text == Self.payer)
        #expect(Word256(Self.payer) == nil)
    }

    @Test func rulesHoldForPackedAndTextRecordsAlike() {
        var table = NonceTable()
        let now: Int64 = 1000
        let transaction = Hex.encode(Keccak256.hash(Array("tx".utf8)))
        // Packed: a payment id as the token.
        let r1 = table.reserve(Self.key(1), token: Self.paymentId(1), expiresAt: 2000, now: now)
        #expect(r1)
        let r2 = table.reserve(Self.key(1), token: Self.paymentId(9), expiresAt: 2000, now: now)
        #expect(!r2)
        #expect(table.holds(Self.key(1), token: Self.paymentId(1), now: now))
        let r3 = table.settle(Self.key(1), token: Self.paymentId(1), transaction: transaction, now: now)
        #expect(r3)
        #expect(table.live(Self.key(1), now: now)
            == NonceRecord(state: .settled, token: Self.paymentId(1), expiresAt: 2000, transaction: transaction))
        let r4 = table.release(Self.key(1), token: Self.paymentId(1), now: now)
        #expect(!r4)
        // Text token, then a settlement whose transaction id is not a hash: still exact.
        let r5 = table.reserve(Self.key(2), token: "owner", expiresAt: 2000, now: now)
        #expect(r5)
        let r6 = table.settle(Self.key(2), token: "owner", transaction: "0xabc", now: now)
        #expect(r6)
        #expect(table.live(Self.key(2), now: now)?.transaction == "0xabc")
        // A packed record that settles with a text transaction moves to the text side, once.
        let r7 = table.reserve(Self.key(3), token: Self.paymentId(3), expiresAt: 2000, now: now)
        #expect(r7)
        let r8 = table.settle(Self.key(3), token: Self.paymentId(3), transaction: "pending-1", now: now)
        #expect(r8)
        #expect(table.count == 3)
        // The same nonce on another network is another authorization.
        let r9 = table.reserve(Self.key(1, network: "eip155:8453"), token: Self.paymentId(4), expiresAt: 1500, now: now)
        #expect(r9)
        #expect(Set(table.liveRecords(now: now).map(\.0)) == [Self.key(1), Self.key(2), Self.key(3),
                                                            Self.key(1, network: "eip155:8453")])
        table.sweep(now: 1600)
        #expect(table.count == 3 && table.live(Self.key(1, network: "eip155:8453"), now: 1600) == nil)
        let unknown = table.release(Self.key(9), token: "x", now: now)
        #expect(!unknown)
    }
}
