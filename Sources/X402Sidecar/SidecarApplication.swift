import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import X402

/// Builds the whole sidecar from a validated configuration: the one function `main` and the
/// tests call (Hummingbird's `buildApplication` pattern).
public enum SidecarApplication {
    /// What `serve` runs.
    public struct Assembly: Sendable {
        public var server: AuthServer
        public var ledger: any NonceLedger
        public var services: [any Service]
    }

    public static func makeLedger(
        _ settings: LedgerSettings, group: any EventLoopGroup, logger: Logger
    ) throws -> any NonceLedger {
        switch settings {
        case .memory:
            return MemoryNonceLedger()
        case .embedded(let path, let fsync):
            return try EmbeddedNonceLedger(path: path, fsync: fsync)
        case .redis(let url, let prefix):
            let client = RedisClient(configuration: try RedisClient.Configuration(url: url), group: group, logger: logger)
            return RedisNonceLedger(client: client, keyPrefix: prefix)
        }
    }

    public static func build(
        configuration: SidecarConfiguration, group: any EventLoopGroup, logger: Logger,
        decisionLog: DecisionLog? = nil
    ) throws -> Assembly {
        let ledger = try makeLedger(configuration.ledger, group: group, logger: logger)
        let authorizer = Authorizer(routes: configuration.routes, verifier: configuration.verifier, ledger: ledger)
        let core = SidecarCore(
            authorizer: authorizer, decisionLog: decisionLog ?? DecisionLog(enabled: configuration.log.decisions),
            maxHeaderBytes: configuration.server.maxHeaderBytes)
        let server = AuthServer(
            core: core, addresses: configuration.server.listen, group: group, logger: logger,
            graceSeconds: configuration.server.shutdownGraceSeconds)
        return Assembly(server: server, ledger: ledger, services: [server])
    }
}
