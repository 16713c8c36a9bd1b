import FuzzSupport
import X402Sidecar

/// The YAML configuration loader and its whole validation pass (what `check-config` runs). Besides
/// not crashing: a refused file has at least one error and every problem says what is wrong; an
/// accepted file has none; loading is deterministic (the same file gets the same verdict).
///
/// The environment is the one the tests give the shipped examples, so `${X402_…}` references in
/// the seeds resolve.
let environment = [
    "X402_PAY_TO": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    "X402_RELAYER_KEY": "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
    "X402_BACKEND_SECRET": "9f2c4e1a7b3d5f8e0a6c2b4d8f1e3a5c7b9d0f2e4a6c8b1d3f5e7a9c0b2d4f6e",
]

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let yaml = String(decoding: bytes, as: UTF8.self)
    let first = verdict(yaml)
    switch first {
    case .accepted(let warnings):
        require(warnings.allSatisfy { !$0.message.isEmpty && $0.severity == .warning }, "a bad warning: \(warnings)")
    case .refused(let problems):
        require(!problems.isEmpty, "a refused file without a single error")
        require(problems.allSatisfy { !$0.message.isEmpty && $0.severity == .error }, "a bad error: \(problems)")
    }
    require(verdict(yaml) == first, "the same file got another verdict")
    return 0
}

enum Verdict: Equatable {
    case accepted(warnings: [ConfigurationProblem])
    case refused(problems: [ConfigurationProblem])
}

func verdict(_ yaml: String) -> Verdict {
    switch ConfigurationLoader.load(yaml: yaml, environment: environment) {
    case .success(let configuration): return .accepted(warnings: configuration.warnings)
    case .failure(let problems): return .refused(problems: problems.problems)
    }
}

@main
enum FuzzConfig {
    static func main() { runFuzzer(testOneInput) }
}
