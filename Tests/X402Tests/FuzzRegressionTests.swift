import Foundation
import Testing

@testable import X402

/// Inputs the fuzz targets (Fuzz/) saved as crashes, kept in Fixtures/fuzz/ byte for byte and fed
/// to the code under test with the exact refusal each must get. `make fuzz-seeds` also puts them
/// in their target's seed corpus, so every run starts from them.
@Suite struct FuzzRegressionTests {
    static func input(_ name: String) throws -> [UInt8] {
        let url = try #require(
            Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures/fuzz"))
        return Array(try Data(contentsOf: url))
    }

    /// fuzz-json, crash-654a907b…: 6,385 nested `[` between whitespace. The stack overflowed in
    /// the target's own check at a depth no caller uses; what callers do get must be `tooDeep`,
    /// found at the limit, before the recursion goes any deeper, at every limit the code uses
    /// (16 for payment headers, 64 for facilitator and RPC answers).
    @Test func sixThousandNestedArraysAreTooDeepAtEveryLimitInUse() throws {
        let bytes = try Self.input("json-deep-654a907b")
        #expect(bytes.count(where: { $0 == UInt8(ascii: "[") }) == 6385)
        for limit in [2, 3, 4, 16, 32, 64] {
            #expect(throws: JSONParseError.tooDeep) { try JSONParser.parse(bytes, maxDepth: limit) }
        }
    }
}
