// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for the parsers that read what others send (see README, "Fuzzing"). Its own
// package so that `swift build`/`swift test` of the sidecar never see it; built only by
// `Fuzz/run.sh`, with `-sanitize=fuzzer` on every module (coverage for the code under test).
let x402 = Target.Dependency.product(name: "X402", package: "x402-nginx")
let sidecar = Target.Dependency.product(name: "X402Sidecar", package: "x402-nginx")

func fuzzer(_ name: String, _ directory: String, _ dependency: Target.Dependency) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport", dependency], path: "Targets/\(directory)")
}

let package = Package(
    name: "x402-fuzz",
    dependencies: [.package(name: "x402-nginx", path: "..")],
    targets: [
        .target(name: "FuzzDriver", path: "Targets/Driver"),
        .target(name: "FuzzSupport", dependencies: ["FuzzDriver"], path: "Targets/Support"),
        fuzzer("fuzz-json", "JSON", x402),
        fuzzer("fuzz-payment-header", "PaymentHeader", x402),
        fuzzer("fuzz-lease", "Lease", x402),
        fuzzer("fuzz-siwx", "SIWX", x402),
        fuzzer("fuzz-redis-reply", "RedisReply", sidecar),
        fuzzer("fuzz-report", "Report", sidecar),
        fuzzer("fuzz-config", "Config", sidecar),
    ],
    swiftLanguageModes: [.v6]
)
