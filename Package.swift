// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "x402-nginx",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "X402", targets: ["X402"]),
        .library(name: "X402Sidecar", targets: ["X402Sidecar"]),
        .executable(name: "x402-sidecar", targets: ["x402-sidecar"]),
        .executable(name: "x402-micro", targets: ["X402Micro"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C libraries, one module each; every one is wrapped by exactly one Swift file.
        .systemLibrary(
            name: "CSecp256k1", path: "CModules/CSecp256k1", pkgConfig: "libsecp256k1",
            providers: [.apt(["libsecp256k1-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "CModules/COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),
        .systemLibrary(
            name: "CHiredis", path: "CModules/CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CLibpq", path: "CModules/CLibpq", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),

        // Pure protocol code: wire types, codecs, Keccak-256, EIP-712, verification. No I/O.
        .target(name: "X402", dependencies: ["CSecp256k1"]),

        // The sidecar: configuration, stores, HTTP server, decision mapping.
        .target(
            name: "X402Sidecar",
            dependencies: [
                "X402", "CHiredis", "CLibpq", "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .executableTarget(
            name: "x402-sidecar",
            dependencies: [
                "X402Sidecar",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "X402Micro", dependencies: ["X402"], path: "Benchmarks/X402Micro"),

        // What the test targets share: the devnet's info, temporary directories, and a harness that
        // builds the sidecar from YAML exactly as `serve` does.
        .target(
            name: "X402TestSupport",
            dependencies: [
                "X402Sidecar",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support"),
        .testTarget(name: "X402Tests", dependencies: ["X402"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "X402SidecarTests",
            dependencies: [
                "X402Sidecar", "X402TestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            resources: [.copy("Fixtures")]),
        // Talks to real servers (Redis, PostgreSQL) started by the test scripts; see Tests/README.md.
        .testTarget(
            name: "X402IntegrationTests",
            dependencies: [
                "X402Sidecar", "X402TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
