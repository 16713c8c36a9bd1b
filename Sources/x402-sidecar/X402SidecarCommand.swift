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

/// The configuration and the flags that change what it may say: `serve` and `check-config` take
/// the same ones, so that `check-config` accepts exactly the files `serve` starts with.
struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path to the YAML configuration.")
    var config: String = "/etc/x402/x402.yaml"

    @Flag(help: "Allow `stores.ledger: memory` (forgets used authorizations on restart; tests only).")
    var allowMemoryLedger = false

    /// Loads and validates; prints every problem (and warning) and exits 1 when there are errors.
    func load() throws -> SidecarConfiguration {
        let options = ConfigurationLoader.Options(allowMemoryLedger: allowMemoryLedger)
        let environment = ProcessInfo.processInfo.environment
        switch ConfigurationLoader.load(path: config, environment: environment, options: options) {
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

    func run() async throws {
        // Every rule about the file is in the loader; what follows can only fail at run time
        // (a port in use, a journal that cannot be opened).
        let configuration = try options.load()
        let level = Logger.Level(rawValue: configuration.log.level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        let logger = Logger(label: "x402.sidecar")
        for warning in configuration.warnings {
            logger.warning("configuration: \(warning)")
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
        for warning in configuration.warnings { print("  - \(warning)") }
        print(ConfigurationSummary.summary(of: configuration))
    }
}

struct Admin: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running sidecar's admin listener, or hash an admin token for the config.",
        subcommands: [HashToken.self, RateLimitCommand.self, LeaseAdmin.self])

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

extension Admin {
    struct LeaseAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lease", abstract: "Revoke a lease (by jti) or every lease of a payer.")

        @Argument(help: "revoke") var action: String
        @Option(help: "The admin listener.") var url = "http://127.0.0.1:8403"
        @Option(help: "The lease's jti.") var jti: String?
        @Option(help: "The lease's exp (unix seconds), to keep the revocation no longer than needed.") var exp: Int64?
        @Option(help: "Revoke every lease of this payer instead.") var payer: String?

        func run() async throws {
            guard action == "revoke" else { throw ValidationError("the action is revoke") }
            guard let token = ProcessInfo.processInfo.environment["X402_ADMIN_TOKEN"] else {
                throw ValidationError("set X402_ADMIN_TOKEN")
            }
            var query: String
            if let payer {
                query = "payer=\(payer)"
            } else if let jti {
                query = "jti=\(jti)"
                if let exp { query += "&exp=\(exp)" }
            } else {
                throw ValidationError("give --jti or --payer")
            }
            let client = HTTPJSONClient(timeout: .seconds(5), headers: [("Authorization", "Bearer \(token)")])
            let response = try await client.delete("\(url)/admin/lease?\(query)")
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
