import Foundation
import Logging
import NIOPosix
import Testing
import X402
@testable import X402Sidecar

/// `check-config` accepts a file if and only if `serve` starts with it: every rule, one YAML that
/// breaks only that rule, refused by the loader (what `check-config` runs) with the rule's path
/// and by the build path (what `serve` runs before listening: the same load, then
/// `SidecarApplication.build`); valid files are accepted by both.
@Suite struct ConfigurationRuleTests {
    static let payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    static let goodKey = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    static let changemeSHA256 = Hex.encode(OpenSSL.sha256(Array("changeme".utf8)), prefix: false)
    static let goodSecret = "9f2c4e1a7b3d5f8e0a6c2b4d8f1e3a5c7b9d0f2e4a6c8b1d3f5e7a9c0b2d4f6e"
    /// A directory of its own for each file's journals (the tests run in parallel).
    static func directory() -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("x402-config-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// A valid file (base-sepolia unless `network` says otherwise) with `extra` sections appended.
    static func yaml(
        _ extra: String = "", network: String = "base-sepolia", payTo: String? = payTo,
        stores: String? = nil, route: String = "{description: \"Weather\", price: \"0.01\"}"
    ) -> String {
        """
        server: {listen: ["127.0.0.1:0"]}
        defaults: {\(payTo.map { "pay_to: \"\($0)\", " } ?? "")network: \(network)}
        routes:
          weather: \(route)
        \(stores ?? "stores: {ledger: embedded, embedded: {journal: \"\(directory())/nonces.journal\"}}")
        \(extra)
        """
    }

    struct Rule: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var environment: [String: String] = [:]
        var path: String
        var testDescription: String { name }
    }

    static let rules: [Rule] = [
        // Rules that only `serve` (or the build) applied before.
        Rule(name: "memory ledger without --allow-memory-ledger", yaml: yaml(stores: "stores: {ledger: memory}"),
             path: "stores.ledger"),
        Rule(name: "Redis URL with a bad port",
             yaml: yaml(stores: "stores: {ledger: redis, redis: {url: \"redis://127.0.0.1:notaport/0\"}}"),
             path: "stores.redis.url"),
        Rule(name: "Redis URL with TLS",
             yaml: yaml(stores: "stores: {ledger: redis, redis: {url: \"rediss://h:6379\"}}"),
             path: "stores.redis.url"),
        Rule(name: "X402_REDIS_URL that does not parse",
             yaml: yaml(stores: "stores: {ledger: redis, redis: {url: \"redis://127.0.0.1:6379/0\"}}"),
             environment: ["X402_REDIS_URL": "redis://[::1"], path: "stores.redis.url"),
        Rule(name: "CDP secret that cannot sign",
             yaml: yaml("facilitator: {url: \"https://f.example\", cdp_api_key_id: id, cdp_api_key_secret: nope}"),
             path: "facilitator.cdp_api_key_secret"),
        Rule(name: "CDP key id without its secret",
             yaml: yaml("facilitator: {url: \"https://f.example\"}"), environment: ["CDP_API_KEY_ID": "id"],
             path: "facilitator"),
        Rule(name: "relayer key that is not a key", yaml: yaml("relayer: {private_key: \"0x1234\"}"),
             path: "relayer.private_key"),
        // Stuck-transaction replacement: never without a fee ceiling, and only inside the wait.
        Rule(name: "replacement without a fee ceiling",
             yaml: yaml("relayer: {private_key: \"\(goodKey)\", replace_after_seconds: 10}"),
             path: "relayer.max_fee_per_gas_gwei"),
        Rule(name: "replacement after the receipt wait",
             yaml: yaml("relayer: {private_key: \"\(goodKey)\", replace_after_seconds: 30, max_fee_per_gas_gwei: \"0.5\"}"),
             path: "relayer.replace_after_seconds"),
        Rule(name: "fee ceiling that is not gwei",
             yaml: yaml("relayer: {private_key: \"\(goodKey)\", max_fee_per_gas_gwei: \"1e9\"}"),
             path: "relayer.max_fee_per_gas_gwei"),
        Rule(name: "fee bump nodes refuse", yaml: yaml("relayer: {private_key: \"\(goodKey)\", fee_bump_percent: 5}"),
             path: "relayer.fee_bump_percent"),
        // No dangerous defaults (issue 11).
        Rule(name: "unset variable", yaml: yaml("backend: {hmac_secret: \"${X402_TEST_UNSET_SECRET}\"}"),
             path: "backend.hmac_secret"),
        Rule(name: "public test key on mainnet",
             yaml: yaml("relayer: {private_key: \"\(PublicTestKeys.accounts[1].privateKey)\"}", network: "base"),
             path: "relayer.private_key"),
        Rule(name: "placeholder backend secret on mainnet",
             yaml: yaml("backend: {hmac_secret: change-me-to-32-random-bytes-of-hex}", network: "base"),
             path: "backend.hmac_secret"),
        Rule(name: "short backend secret", yaml: yaml("backend: {hmac_secret: 0123456789abcdef}"),
             path: "backend.hmac_secret"),
        // The backend context bound to its request (issue 11).
        Rule(name: "context version that does not exist",
             yaml: yaml("backend: {hmac_secret: \"\(goodSecret)\", context_version: 3}"),
             path: "backend.context_version"),
        Rule(name: "context version without a secret", yaml: yaml("backend: {context_version: 2}"),
             path: "backend.context_version"),
        Rule(name: "short admin token", yaml: yaml("admin: {listen: \"127.0.0.1:0\", token: \"k7Qw9zX2pL4m\"}"),
             path: "admin.token"),
        Rule(name: "placeholder admin token hash on mainnet",
             yaml: yaml("admin: {listen: \"127.0.0.1:0\", token_sha256: \"\(changemeSHA256)\"}", network: "base"),
             path: "admin.token_sha256"),
        Rule(name: "pay_to a public test account on mainnet",
             yaml: yaml(network: "base", payTo: PublicTestKeys.accounts[1].address), path: "routes.weather.pay_to"),
        Rule(name: "missing pay_to", yaml: yaml(payTo: nil), path: "routes.weather.pay_to"),
        // Rules across sections.
        Rule(name: "relayer route without rpc_urls",
             yaml: yaml("settlement: {mode: before, via: relayer}\nrelayer: {private_key: \"\(goodKey)\"}"),
             path: "routes.weather"),
        Rule(name: "relayer route without a relayer",
             yaml: yaml("settlement: {via: relayer}\nrpc_urls: {base-sepolia: \"https://sepolia.base.org\"}"),
             path: "routes.weather"),
        Rule(name: "facilitator route without a facilitator", yaml: yaml("settlement: {mode: before, via: facilitator}"),
             path: "routes.weather"),
        // Exposure control: serving before settling needs the payer's balance.
        Rule(name: "a deferred route without rpc_urls for its balance",
             yaml: yaml("settlement: {mode: deferred, via: facilitator}\nfacilitator: {url: \"http://127.0.0.1:9/\"}"),
             path: "routes.weather.exposure"),
        Rule(name: "max_pending_per_payer on a route that settles first",
             yaml: yaml("settlement: {mode: before, via: facilitator}\nfacilitator: {url: \"http://127.0.0.1:9/\"}",
                        route: "{description: W, price: \"0.01\", max_pending_per_payer: \"1\"}"),
             path: "routes.weather.max_pending_per_payer"),
        Rule(name: "route settlement without a settlement section",
             yaml: yaml(route: "{description: \"Weather\", price: \"0.01\", settlement: before}"),
             path: "routes.weather.settlement"),
        Rule(name: "admin token given twice",
             yaml: yaml("admin: {listen: \"127.0.0.1:0\", token: \"\(goodSecret)\", token_sha256: \"\(goodSecret)\"}"),
             path: "admin"),
        Rule(name: "unknown key", yaml: yaml("log: {levle: info}"), path: "log.levle"),
        // Leases and Sign-In-With-X.
        Rule(name: "a lease route without a leases section",
             yaml: yaml(route: "{description: W, price: \"0.01\", lease: {opens: [weather], seconds: 60}}"),
             path: "routes.weather.lease"),
        Rule(name: "a lease that opens an unknown route",
             yaml: yaml(leaseKeys, route: "{description: W, price: \"0.01\", lease: {opens: [nope], seconds: 60}}"),
             path: "routes.weather.lease.opens[0]"),
        Rule(name: "a lease without seconds",
             yaml: yaml(leaseKeys, route: "{description: W, price: \"0.01\", lease: {opens: [weather]}}"),
             path: "routes.weather.lease.seconds"),
        Rule(name: "lease keys that do not parse", yaml: yaml("leases: {keys: [\"k1 HS256 short\"]}"), path: "leases"),
        Rule(name: "a lease route settled after", yaml: yaml(leaseKeys + "\nsettlement: {via: relayer}\n"
                 + "relayer: {private_key: \"\(goodKey)\"}\nrpc_urls: {base-sepolia: \"http://127.0.0.1:8545\"}",
                 route: "{description: W, price: \"0.01\", settlement: after, lease: {opens: [weather], seconds: 60}}"),
             path: "routes.weather.settlement"),
        Rule(name: "a short sign-in nonce secret", yaml: yaml("sign_in_with_x: {nonce_secret: short}",
                 route: "{description: W, price: \"0.01\", sign_in_with_x: {access_seconds: 60}}"),
             path: "sign_in_with_x.nonce_secret"),
        Rule(name: "sign-in without access_seconds", yaml: yaml(route: "{description: W, price: \"0.01\", sign_in_with_x: {}}"),
             path: "routes.weather.sign_in_with_x.access_seconds"),
    ]

    static let leaseKeys = "leases: {keys: [\"k1 HS256 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}"

    /// What `serve` does with a file before it listens.
    static func buildLikeServe(
        _ yaml: String, _ environment: [String: String], _ options: ConfigurationLoader.Options = .init()
    ) -> Result<SidecarApplication.Assembly, ConfigurationProblems> {
        switch ConfigurationLoader.load(yaml: yaml, environment: environment, options: options) {
        case .failure(let problems):
            return .failure(problems)
        case .success(let configuration):
            do {
                return .success(try SidecarApplication.build(
                    configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                    logger: Logger(label: "test")))
            } catch {
                let problem = ConfigurationProblem(path: "(build)", message: "\(error)")
                return .failure(ConfigurationProblems(problems: [problem]))
            }
        }
    }

    @Test(arguments: rules)
    func eachRuleIsRefusedByCheckConfigAndByServe(rule: Rule) {
        #expect(throws: Never.self) { try ConfigurationLoader.load(yaml: Self.yaml(), environment: [:]).get() }
        let checked = ConfigurationLoader.load(yaml: rule.yaml, environment: rule.environment)
        guard case .failure(let problems) = checked else {
            Issue.record("check-config accepted a file breaking \(rule.name)")
            return
        }
        #expect(problems.problems.map(\.path) == [rule.path], "\(problems)")
        guard case .failure(let built) = Self.buildLikeServe(rule.yaml, rule.environment) else {
            Issue.record("serve would start with a file breaking \(rule.name)")
            return
        }
        #expect(built.problems.map(\.path) == [rule.path])
    }

    static let valid: [(String, String, ConfigurationLoader.Options, [String])] = [
        ("the smallest file", yaml(), .init(), []),
        ("a lease route and a sign-in route", yaml(leaseKeys + "\nsign_in_with_x: {nonce_secret: \"\(goodSecret)\"}",
            route: "{description: W, price: \"0.01\", lease: {opens: [weather], seconds: 60, max_concurrent: 2}, "
                + "sign_in_with_x: {access_seconds: 600}}"), .init(), []),
        ("memory ledger with --allow-memory-ledger", yaml(stores: "stores: {ledger: memory}"),
         .init(allowMemoryLedger: true), []),
        ("everything on mainnet", yaml("""
            settlement: {mode: after, via: relayer}
            relayer: {private_key: "\(goodKey)", replace_after_seconds: 15, fee_bump_percent: 25, max_fee_per_gas_gwei: "0.25"}
            rpc_urls: {base: "https://mainnet.base.org"}
            facilitator: {url: "https://x402.org/facilitator", bearer_token: t}
            backend: {hmac_secret: "\(goodSecret)"}
            admin: {listen: "127.0.0.1:0", token: "\(goodSecret)"}
            rate_limiting: {trusted_proxies: ["127.0.0.1"]}
            """, network: "base", stores: "stores: {ledger: redis, redis: {url: \"redis://127.0.0.1:1/0\"}}",
            route: "{description: \"W\", price: \"0.01\", rate_limits: [{limit: \"10/s\", key: ip}]}"), .init(), []),
        ("a devnet with a public test key and a demo secret", yaml("""
            networks:
              devnet:
                chain_id: 31337
                asset: {address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", name: USDC, version: "2"}
            settlement: {via: relayer}
            relayer: {private_key: "\(PublicTestKeys.accounts[0].privateKey)"}
            rpc_urls: {devnet: "http://127.0.0.1:8545"}
            backend: {hmac_secret: "e2e-backend-secret-0123456789abcdef"}
            """, network: "devnet"), .init(), ["relayer.private_key", "backend.hmac_secret"]),
        ("the legacy backend context, for one release",
         yaml("backend: {hmac_secret: \"\(goodSecret)\", context_version: 1}"), .init(), ["backend.context_version"]),
    ]

    @Test(arguments: 0..<valid.count)
    func validFilesAreAcceptedByBoth(index: Int) throws {
        let (name, yaml, options, warnings) = Self.valid[index]
        let configuration = try ConfigurationLoader.load(yaml: yaml, environment: [:], options: options).get()
        #expect(configuration.warnings.map(\.path) == warnings, "\(name)")
        #expect(configuration.warnings.allSatisfy { $0.severity == .warning })
        if case .failure(let problems) = Self.buildLikeServe(yaml, [:], options) {
            Issue.record("\(name): serve refuses what check-config accepts: \(problems)")
        }
    }
}
