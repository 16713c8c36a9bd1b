import Testing
import X402
@testable import X402Sidecar

@Suite struct ReplayedPayloadsTests {
    static let option = try! PaymentOption(
        network: KnownNetwork.find("base-sepolia")!.network, token: KnownNetwork.find("base-sepolia")!.usdc,
        payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", amount: "10000", maxTimeoutSeconds: 60)
    static let signer = PaymentSigner(privateKeyHex: "0x" + String(repeating: "11", count: 32))!

    static func header(_ number: Int) -> String {
        signer.header(paying: option, resource: ResourceInfo(url: "https://a/w", description: "", mimeType: ""),
                      now: 1_767_225_600, nonce: Keccak256.hash(Array("replay-\(number)".utf8)))
    }

    @Test func answersAsDecodingDoesAndKeepsOnlyWhatItIsGiven() throws {
        let replays = ReplayedPayloads(capacity: 2)
        let first = PresentedPayment(v2Header: Self.header(1))
        let decoded = try PaymentVerifier.decode(first).get()
        #expect(try replays.decode(first).get() == decoded)
        #expect(replays.count == 0)
        replays.remember(first, decoded)
        #expect(try replays.decode(first).get() == decoded)
        // The same text as a v1 header is another presentation: decoded afresh (and refused).
        let asV1 = PresentedPayment(v1Header: Self.header(1))
        #expect(replays.decode(asV1) == PaymentVerifier.decode(asV1))
        // Malformed presentations are never looked up.
        let both = PresentedPayment(v2Header: Self.header(1), v1Header: Self.header(1))
        #expect(replays.decode(both) == PaymentVerifier.decode(both))
    }

    @Test func forgetsTheOldestBeyondItsCapacity() throws {
        let replays = ReplayedPayloads(capacity: 2)
        let presented = (0..<3).map { PresentedPayment(v2Header: Self.header($0)) }
        for payment in presented { replays.remember(payment, try PaymentVerifier.decode(payment).get()) }
        #expect(replays.count == 2)
        for payment in presented { #expect(try replays.decode(payment).get() == PaymentVerifier.decode(payment).get()) }
    }
}
