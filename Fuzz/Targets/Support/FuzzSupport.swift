@_exported import FuzzDriver
import Glibc

/// A broken invariant: the message goes to stderr and the process traps, so libFuzzer reports a
/// crash and saves the input (`crash-<sha1>`) for a regression test. Unlike `precondition`, this
/// also holds in release builds.
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    guard !condition() else { return }
    let text = Array("invariant broken at \(file):\(line): \(message())\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }  // unbuffered: abort() flushes nothing
    abort()
}

/// Starts libFuzzer with `testOneInput` (also exported as `LLVMFuzzerTestOneInput` by each
/// target, which libFuzzer's archive needs to link).
public func runFuzzer(_ testOneInput: x402_fuzz_one_input) -> Never {
    exit(x402_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv, testOneInput))
}

/// The bytes of one input, with a leading mode byte. Structure-aware targets read the mode to
/// choose what the rest is (raw header text, or a JSON document the target encodes first), so
/// mutations land in the JSON rather than in its base64 spelling.
public struct FuzzInput {
    public let mode: UInt8
    public let body: [UInt8]

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
        mode = bytes.first ?? 0
        body = Array(bytes.dropFirst())
    }

    /// The body as text; invalid UTF-8 is repaired, as the HTTP layer repairs header values.
    public var text: String { String(decoding: body, as: UTF8.self) }
}
