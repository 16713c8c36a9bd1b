// swift-tools-version:6.1
// The decision path under ordo-one's `benchmark` (`make bench-swift`): a package of its own, so the
// benchmark library and its plugin are built only when benchmarks are run, not by `make test`.
import PackageDescription

let package = Package(
    name: "x402-decision-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "x402-nginx", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "DecisionPath",
            dependencies: [
                .product(name: "X402Sidecar", package: "x402-nginx"),
                .product(name: "X402", package: "x402-nginx"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/DecisionPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ],
    swiftLanguageModes: [.v6]
)
