import Foundation
import Testing
@testable import X402

/// The challenge comes from a template encoded once per route; it must equal, byte for byte, the
/// challenge written field by field, whatever the URL, the error and the route hold.
@Suite struct ChallengeTests {
    static func option(chainId: UInt64, v1Name: String?, amount: String, name: String = "USD Coin") -> PaymentOption {
        try! PaymentOption(
            network: Network(chainId: chainId, v1Name: v1Name),
            token: TokenInfo(address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", eip712Name: name,
                             eip712Version: "2", decimals: 6, symbol: "USDC"),
            payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", amount: amount, maxTimeoutSeconds: 60)
    }

    static let routes = [
        RouteRequirements(name: "one", description: "Current weather", mimeType: "application/json",
                          options: [option(chainId: 84532, v1Name: "base-sepolia", amount: "10000", name: "USDC")]),
        // Several networks, one of them with no v1 name (absent from the v1 body), and text
        // that needs escaping.
        RouteRequirements(name: "many", description: "Caf\u{e9} \"quoted\" \\ line\nbreak \u{1F600}",
                          mimeType: "text/event-stream",
                          options: [option(chainId: 8453, v1Name: "base", amount: "1"),
                                    option(chainId: 42161, v1Name: nil, amount: "250000"),
                                    option(chainId: 137, v1Name: "polygon", amount: "999999999999")]),
        RouteRequirements(name: "v2only", description: "", mimeType: "",
                          options: [option(chainId: 42161, v1Name: nil, amount: "5")]),
        RouteRequirements(name: "none", description: "nothing to pay with", mimeType: "application/json", options: []),
    ]

    static let urls = [
        "https://api.example.com/weather?city=Paris", "", "http://127.0.0.1:8402/a\"b\\c", "https://ex.com/\u{e9}t\u{e9}",
        "https://ex.com/emoji/\u{1F680}?q=a%20b&x=<y>", "https://ex.com/\u{7}control",
    ]

    @Test(arguments: routes.indices)
    func templateEqualsTheChallengeWrittenInFull(routeIndex: Int) {
        let route = Self.routes[routeIndex]
        for url in Self.urls {
            for error in ["payment required", "invalid_exact_evm_nonce_already_used", "", "a \"b\""] {
                let fast = route.challenge(resourceURL: url, error: error)
                let full = route.challengeWrittenInFull(resourceURL: url, error: error)
                #expect(fast == full, "route \(route.name), url \(url), error \(error)")
            }
        }
    }

    @Test func challengeIsValidJSONWithTheServersRequirements() throws {
        let challenge = Self.routes[1].challenge(resourceURL: "https://ex.com/x", error: "payment required")
        let v2 = try #require(Base64.decode(challenge.paymentRequiredHeader))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(v2)) as? [String: Any])
        #expect((header["accepts"] as? [Any])?.count == 3)
        #expect((header["resource"] as? [String: Any])?["url"] as? String == "https://ex.com/x")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(challenge.v1Body.utf8)) as? [String: Any])
        let accepts = try #require(body["accepts"] as? [[String: Any]])
        #expect(accepts.map { $0["network"] as? String } == ["base", "polygon"])
        #expect(accepts.allSatisfy { $0["resource"] as? String == "https://ex.com/x" })
        #expect(challenge.v1Body.utf8.allSatisfy { $0 < 0x80 }, "the v1 body rides in a header: ASCII only")
    }

    @Test func quotedMatchesTheWriter() {
        for text in Self.urls + ["plain", "tab\there", "\u{0}", "\u{7f}"] {
            var writer = JSONWriter()
            writer.string(text)
            #expect(JSONWriter.quoted(text) == writer.bytes)
        }
    }
}
