import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import X402
import X402Sidecar

#if canImport(Glibc)
import Glibc
#endif

/// Version of this build; bumped with releases.
let sidecarVersion = "0.1.0"

@main
struct X402SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "x402-sidecar",
        abstract: "Answers Nginx auth_request subrequests with x402 payment decisions.",
        subcommands: [Serve.self, CheckConfig.self, Admin.self, LeaseCommand.self, CDPToken.self, Version.self],
        defaultSubcommand: Serve.self)
}

struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path to the YAML configuration.")
    var config: String = "/etc/x402/x402.yaml"

    /// Loads and validates; prints every problem and exits 1 when there are any.
    func load() throws -> SidecarConfiguration {
        switch ConfigurationLoader.load(path: config, environment: ProcessInfo.processInfo.environment) {
        case .success(let configuration):
            return configuration
        case .failure(let problems):
            FileHandle.standardError.write(Data("\(config): configuration is invalid\n\(problems)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the sidecar.")

    @OptionGroup var options: ConfigOption

    @Flag(help: "Allow `stores.ledger: memory` (forgets used authorizations on restart; tests only).")
    var allowMemoryLedger = false

    func run() async throws {
        let configuration = try options.load()
        let level = Logger.Level(rawValue: configuration.log.level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        let logger = Logger(label: "x402.sidecar")
        if case .memory = configuration.ledger, !allowMemoryLedger {
            logger.critical(
                "stores.ledger is memory: used authorizations would be forgotten on restart; use embedded or redis, or pass --allow-memory-ledger for tests"
            )
            throw ExitCode(1)
        }
        let threads = configuration.server.eventLoops ?? NIOSingletons.groupLoopCountSuggestion
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let assembly = try SidecarApplication.build(configuration: configuration, group: group, logger: logger)
        try await assembly.server.start()
        logger.info(
            "x402-sidecar started",
            metadata: ["version": "\(sidecarVersion)", "routes": "\(configuration.routes.count)",
                       "event_loops": "\(threads)", "ledger": "\(configuration.ledger)"])
        let services = ServiceGroup(
            configuration: .init(services: assembly.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await group.shutdownGracefully()
        logger.info("x402-sidecar stopped")
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration; print every problem, or a summary.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let configuration = try options.load()
        print("\(options.config): configuration is valid")
        print(ConfigurationSummary.summary(of: configuration))
    }
}

struct Admin: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running sidecar's admin listener, or hash an admin token for the config.",
        subcommands: [HashToken.self, RateLimitCommand.self])

    struct HashToken: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hash-token", abstract: "Read a token on stdin; print admin.token_sha256 for the config.")

        func run() throws {
            guard let token = readLine(strippingNewline: true), !token.isEmpty else {
                throw ValidationError("give the token on stdin")
            }
            print(Hex.encode(OpenSSL.sha256(Array(token.utf8)), prefix: false))
        }
    }

    struct RateLimitCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ratelimit", abstract: "Inspect or reset one rate-limit (or free-quota) key.")

        @Argument(help: "inspect or reset") var action: String
        @Option(help: "The admin listener.") var url = "http://127.0.0.1:8403"
        @Option(help: "Route name.") var route: String
        @Option(help: "Rule name (its name:, or ip / payer / the header name), or free.") var rule: String
        @Option(help: "The client key: an address, a payer, or the header's value.") var key: String

        func run() async throws {
            guard action == "inspect" || action == "reset" else { throw ValidationError("action is inspect or reset") }
            guard let token = ProcessInfo.processInfo.environment["X402_ADMIN_TOKEN"] else {
                throw ValidationError("set X402_ADMIN_TOKEN")
            }
            func encode(_ text: String) -> String {
                text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
            }
            let target = "\(url)/admin/ratelimit?route=\(encode(route))&rule=\(encode(rule))&key=\(encode(key))"
            let client = HTTPJSONClient(timeout: .seconds(5), headers: [("Authorization", "Bearer \(token)")])
            let response = action == "inspect" ? try await client.get(target) : try await client.delete(target)
            print(String(decoding: response.body, as: UTF8.self))
            if response.status != 200 { throw ExitCode(1) }
        }
    }
}

struct CDPToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cdp-token",
        abstract: "Print a Coinbase CDP API-key JWT (from CDP_API_KEY_ID and CDP_API_KEY_SECRET) for one request.",
        discussion: "For checking credentials by hand: curl -H \"Authorization: Bearer $(x402-sidecar cdp-token --url URL)\" URL")

    @Option(help: "HTTP method the token is bound to.") var method = "POST"
    @Option(help: "URL the token is bound to.") var url = "https://api.cdp.coinbase.com/platform/v2/x402/settle"

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let id = environment["CDP_API_KEY_ID"], let secret = environment["CDP_API_KEY_SECRET"] else {
            throw ValidationError("set CDP_API_KEY_ID and CDP_API_KEY_SECRET")
        }
        guard let credentials = CDPCredentials(keyId: id, secret: secret),
            let token = credentials.token(method: method, url: url)
        else {
            throw ValidationError("CDP_API_KEY_SECRET is neither an EC P-256 PEM key nor a base64 Ed25519 key")
        }
        print(token)
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")

    func run() {
        print("x402-sidecar \(sidecarVersion)")
    }
}
