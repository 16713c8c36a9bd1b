import Testing
@testable import X402

/// The SDK's `validate_extensions` rule, case by case; the SDK's own `_object_contains_subset`
/// (server_base.py, x402 2.25.0) gives the same answer for each siwxEcho case.
@Suite struct ExtensionEchoTests {
    static func json(_ text: String) -> JSONValue { try! JSONParser.parse(Array(text.utf8)) }

    static let declared = json(
        #"{"info":{"domain":"api.example.com","uri":"https://api.example.com/x","version":"1","nonce":"aa","#
            + #""issuedAt":"2026-01-01T00:00:00.000Z","resources":["https://api.example.com/x"],"statement":null},"#
            + #""supportedChains":[{"chainId":"eip155:84532","type":"eip191"}]}"#)

    @Test(arguments: [
        // (echoed info, matches)
        (#"{"domain":"api.example.com","uri":"https://api.example.com/x","version":"1","nonce":"bb","#
            + #""issuedAt":"2026-01-01T00:01:00.000Z","resources":["https://api.example.com/x"]}"#, true),
        (#"{"domain":"api.example.com","uri":"https://api.example.com/x","version":"1","#
            + #""resources":["https://api.example.com/x"],"address":"0xadded"}"#, true),
        (#"{"domain":"evil.example.com","uri":"https://api.example.com/x","version":"1","#
            + #""resources":["https://api.example.com/x"]}"#, false),
        (#"{"domain":"api.example.com","uri":"https://api.example.com/x","version":"1"}"#, false),
        (#"{"domain":"api.example.com","uri":"https://api.example.com/x","version":"1","#
            + #""resources":["https://api.example.com/x","https://api.example.com/y"]}"#, false),
        (#"{"domain":"api.example.com","uri":"https://api.example.com/x","version":1,"#
            + #""resources":["https://api.example.com/x"]}"#, false),
        (#"["api.example.com"]"#, false),
    ])
    func siwxEcho(echoed: String, matches: Bool) {
        let echo = Self.json(#"{"info":"# + echoed + "}")
        #expect(
            ExtensionEcho.matches(
                advertised: Self.declared, echoed: echo, dynamicFields: ExtensionEcho.signInWithXDynamicFields)
                == matches)
    }

    @Test func dynamicFieldsAreOnlySkippedWhenNamed() {
        let echo = Self.json(
            #"{"info":{"domain":"api.example.com","uri":"https://api.example.com/x","version":"1","nonce":"bb","#
                + #""issuedAt":"2026-01-01T00:00:00.000Z","resources":["https://api.example.com/x"]}}"#)
        #expect(!ExtensionEcho.matches(advertised: Self.declared, echoed: echo))
        #expect(ExtensionEcho.matches(advertised: Self.declared, echoed: echo, dynamicFields: ["nonce"]))
    }

    @Test func firstMismatchJudgesOnlyDeclaredKeys() {
        let declared = ["sign-in-with-x": Self.declared, "payment-identifier": Self.json(#"{"info":{"required":true}}"#)]
        let good = Self.json(#"{"info":{"required":true,"id":"pay_0123456789abcdef"}}"#)
        let bad = Self.json(#"{"info":{"required":false,"id":"pay_0123456789abcdef"}}"#)
        let unknown = Self.json(#"{"info":{"anything":1}}"#)
        #expect(ExtensionEcho.firstMismatch(declared: declared, echoed: nil) == nil)
        #expect(ExtensionEcho.firstMismatch(declared: declared, echoed: ["payment-identifier": good, "x": unknown]) == nil)
        #expect(ExtensionEcho.firstMismatch(declared: declared, echoed: ["payment-identifier": bad]) == "payment-identifier")
    }
}
