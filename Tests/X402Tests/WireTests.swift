import Testing
@testable import X402

@Suite struct Base64Tests {
    @Test(arguments: ["", "f", "fo", "foo", "foob", "fooba", "foobar"])
    func roundTripsRFC4648Vectors(text: String) {
        let encoded = Base64.encode(Array(text.utf8))
        #expect(Base64.decode(encoded) == Array(text.utf8))
    }

    @Test func encodesRFC4648Vectors() {
        #expect(Base64.encode("foobar") == "Zm9vYmFy")
        #expect(Base64.encode("fooba") == "Zm9vYmE=")
        #expect(Base64.encode("foob") == "Zm9vYg==")
    }

    @Test(arguments: ["Zm9vYmE", "Zm9v YmFy", "Zm9vYg=", "Zm9=vYmFy", "Zm9vYh==", "Zm9vYmF=", "Zm9v-_Fy", "===="])
    func refusesNonCanonicalInput(text: String) {
        #expect(Base64.decode(text) == nil)
    }
}

@Suite struct JSONParserTests {
    @Test func parsesNestedDocuments() throws {
        let value = try JSONParser.parse(Array(#"{"a":[1,"x\u00e9\n",true,null,{"b":-2.5e3}]}"#.utf8))
        guard case .array(let items) = value["a"] else {
            Issue.record("expected an array")
            return
        }
        #expect(items[0] == .number("1"))
        #expect(items[1] == .string("xé\n"))
        #expect(items[2] == .bool(true))
        #expect(items[3] == .null)
        #expect(items[4]["b"] == .number("-2.5e3"))
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try JSONParser.parse(Array(#""\ud83d\ude00""#.utf8)) == .string("😀"))
        #expect(throws: JSONParseError.invalidUTF8) { try JSONParser.parse(Array(#""\ud83d""#.utf8)) }
    }

    @Test(arguments: [
        "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "\"\u{01}\"", "{\"a\" 1}", "tru", "[] []", "{'a':1}", "\"\\x\"",
    ])
    func refusesMalformedJSON(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func refusesDuplicateKeys() {
        #expect(throws: JSONParseError.duplicateKey("value")) {
            try JSONParser.parse(Array(#"{"value":"1","value":"2"}"#.utf8))
        }
    }

    @Test func enforcesTheDepthLimit() throws {
        let ok = String(repeating: "[", count: 16) + String(repeating: "]", count: 16)
        let deep = String(repeating: "[", count: 17) + String(repeating: "]", count: 17)
        _ = try JSONParser.parse(Array(ok.utf8), maxDepth: 16)
        #expect(throws: JSONParseError.tooDeep) { try JSONParser.parse(Array(deep.utf8), maxDepth: 16) }
    }

    @Test func writerEscapesToASCII() throws {
        var json = JSONWriter()
        json.beginObject()
        json.field("s", "a\"b\\c\né😀\u{1}")
        json.field("n", 42)
        json.key("arr")
        json.beginArray()
        json.string("x")
        json.null()
        json.endArray()
        json.endObject()
        #expect(json.bytes.allSatisfy { $0 < 0x80 })
        #expect(json.string == #"{"s":"a\"b\\c\n\u00e9\ud83d\ude00\u0001","n":42,"arr":["x",null]}"#)
        let parsed = try JSONParser.parse(json.bytes)
        #expect(parsed["s"] == .string("a\"b\\c\né😀\u{1}"))
    }
}

@Suite struct AmountTests {
    @Test(arguments: [
        ("0.01", 6, "10000"), ("1", 6, "1000000"), ("0.000001", 6, "1"), ("$0.05", 6, "50000"),
        ("12.50", 6, "12500000"), ("007", 6, "7000000"), ("1.0", 18, "1000000000000000000"),
    ])
    func convertsPricesExactly(price: String, decimals: Int, atomic: String) {
        #expect(Amount.atomicUnits(price: price, decimals: decimals) == .success(atomic))
    }

    @Test func refusesBadPrices() {
        #expect(Amount.atomicUnits(price: "0.0000001", decimals: 6) == .failure(.tooPrecise("0.0000001", decimals: 6)))
        #expect(Amount.atomicUnits(price: "0", decimals: 6) == .failure(.zero))
        for bad in ["-1", "1e-2", "", ".5", "1.", "1,5", " 1", "0x10", "1_000"] {
            #expect(Amount.atomicUnits(price: bad, decimals: 6) == .failure(.notADecimal(bad)))
        }
    }

    @Test func canonicalDecimalStrings() {
        for good in ["0", "1", "10000", String(repeating: "9", count: 78)] { #expect(Amount.isCanonical(good)) }
        for bad in ["", "01", "-1", "+1", "1.0", "1e3", " 1", "1 ", String(repeating: "9", count: 79)] {
            #expect(!Amount.isCanonical(bad))
        }
    }

    @Test func uint256Encoding() {
        #expect(Amount.uint256("0") == [UInt8](repeating: 0, count: 32))
        #expect(Amount.uint256("10000")?.suffix(2) == [0x27, 0x10])
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        #expect(Amount.uint256(max) == [UInt8](repeating: 0xFF, count: 32))
        #expect(Amount.uint256("115792089237316195423570985008687907853269984665640564039457584007913129639936") == nil)
        #expect(Amount.uint256(UInt64(10000)) == Amount.uint256("10000"))
    }

    @Test func displaysAtomicUnits() {
        #expect(Amount.display(atomic: "10000", decimals: 6) == "0.01")
        #expect(Amount.display(atomic: "1000000", decimals: 6) == "1")
        #expect(Amount.display(atomic: "1", decimals: 6) == "0.000001")
    }
}
