import Logging
import NIOPosix
import X402
import X402Sidecar

/// The sidecar as `serve` builds it — YAML through `ConfigurationLoader`, then
/// `SidecarApplication.build` — listening on an ephemeral loopback port (Hummingbird's
/// `buildApplication` pattern: tests build exactly what `main` builds).
public final class SidecarHarness: Sendable {
    public let assembly: SidecarApplication.Assembly
    public let port: Int
    let group: MultiThreadedEventLoopGroup

    public struct BuildFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A configuration with one `weather` route priced 0.01 USDC on base-sepolia, paid to `payTo`,
    /// on the in-process ledger; `extra` is appended as more top-level YAML.
    public static func minimalYAML(payTo: String, ledger: String = "memory", extra: String = "") -> String {
        """
        server:
          listen: ["127.0.0.1:0"]
        log:
          decisions: false
        defaults:
          pay_to: "\(payTo)"
          network: base-sepolia
        routes:
          weather:
            description: "Weather"
            price: "0.01"
        stores:
          ledger: \(ledger)
        \(extra)
        """
    }

    public static func start(yaml: String, environment: [String: String] = [:],
                             logger: Logger = Logger(label: "harness")) async throws -> SidecarHarness {
        let configuration: SidecarConfiguration
        switch ConfigurationLoader.load(yaml: yaml, environment: environment,
                                        options: .init(allowMemoryLedger: true)) {
        case .success(let loaded): configuration = loaded
        case .failure(let problems): throw BuildFailure(description: "\(problems)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let assembly = try SidecarApplication.build(configuration: configuration, group: group, logger: logger,
                                                        decisionLog: DecisionLog(enabled: false))
            try await assembly.server.start()
            guard let address = configuration.server.listen.first, let port = assembly.server.port(of: address) else {
                throw BuildFailure(description: "no TCP listener")
            }
            return SidecarHarness(assembly: assembly, port: port, group: group)
        } catch {
            try await group.shutdownGracefully()
            throw error
        }
    }

    init(assembly: SidecarApplication.Assembly, port: Int, group: MultiThreadedEventLoopGroup) {
        self.assembly = assembly
        self.port = port
        self.group = group
    }

    public func stop() async throws {
        await assembly.server.stop()
        try await group.shutdownGracefully()
    }
}
