import Foundation
import Testing
import X402
@testable import X402Sidecar

@Suite struct ConfigurationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func load(_ yaml: String, _ environment: [String: String] = [:]) -> Result<SidecarConfiguration, ConfigurationProblems> {
        ConfigurationLoader.load(yaml: yaml, environment: environment)
    }

    static func problems(_ yaml: String, _ environment: [String: String] = [:]) -> [ConfigurationProblem] {
        guard case .failure(let problems) = load(yaml, environment) else { return [] }
        return problems.problems
    }

    static let minimal = """
        defaults: {pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"}
        routes:
          weather: {description: "Weather", price: "0.01"}
        """

    /// What an operator sets for the shipped files: they carry no payout address, key or secret.
    static let shippedEnvironment = [
        "X402_PAY_TO": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "X402_RELAYER_KEY": "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        "X402_BACKEND_SECRET": "9f2c4e1a7b3d5f8e0a6c2b4d8f1e3a5c7b9d0f2e4a6c8b1d3f5e7a9c0b2d4f6e",
    ]

    @Test(arguments: ["config/x402.example.yaml", "config/x402.devnet.yaml"])
    func shippedConfigsLoad(path: String) throws {
        let configuration = try ConfigurationLoader.load(
            path: Self.root.appendingPathComponent(path).path, environment: Self.shippedEnvironment
        ).get()
        #expect(configuration.routes["weather"]?.options.first?.amount == "10000")
        #expect(configuration.routes["premium"]?.options.count == 2)
    }

    @Test func defaultsAndPriceConversion() throws {
        let configuration = try Self.load(Self.minimal).get()
        let option = try #require(configuration.routes["weather"]?.options.first)
        #expect(option.network.caip2 == "eip155:84532")
        #expect(option.token.eip712Name == "USDC")
        #expect(option.maxTimeoutSeconds == 60)
        #expect(configuration.server.listen == [.tcp(host: "127.0.0.1", port: 8402)])
        #expect(configuration.ledger == .embedded(journalPath: "/var/lib/x402/nonces.journal", fsync: false))
    }

    @Test(arguments: [
        ("0.01", "10000"), ("1", "1000000"), ("$0.01", "10000"), ("0.000001", "1"), ("12.5", "12500000"),
    ])
    func pricesBecomeExactAtomicUnits(price: String, atomic: String) throws {
        let yaml = Self.minimal.replacingOccurrences(of: "\"0.01\"", with: price)  // unquoted: still the literal text
        #expect(try Self.load(yaml).get().routes["weather"]?.options.first?.amount == atomic)
    }

    @Test(arguments: ["0.0000001", "-1", "1e-2", "0", "0x10", "1,5"])
    func badPricesAreRefused(price: String) {
        let problems = Self.problems(Self.minimal.replacingOccurrences(of: "\"0.01\"", with: "\"\(price)\""))
        #expect(problems.map(\.path) == ["routes.weather.price"])
    }

    @Test func everyProblemIsListedWithItsPath() {
        let yaml = """
            server:
              listen: ["127.0.0.1:99999", "unix:", "127.0.0.1:8402", "127.0.0.1:8402"]
              event_loop: 2
              max_header_bytes: 12
            log: {level: loud}
            defaults:
              pay_to: "0x123"
              network: basee
            networks:
              devnet: {chain_id: 84532, asset: {address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"}}
            routes:
              weather:
                price: 0.0000001
              premium:
                description: p
                price: "1"
                accepts: []
              "bad name!":
                description: x
                price: "-1"
                pay_to: "${MISSING_PAY_TO}"
              multi:
                description: m
                accepts:
                  - {network: base, price: "0.05", pay_to: "0x0000000000000000000000000000000000000000"}
                  - {network: base-sepolia, price: "0.05", pay_too: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"}
            stores:
              ledger: redis
            """
        let paths = Set(Self.problems(yaml).map(\.path))
        let expected: Set<String> = [
            "server.listen[0]", "server.listen[1]", "server.listen[3]", "server.event_loop", "server.max_header_bytes",
            "log.level", "defaults.pay_to", "networks.devnet.asset", "routes.weather.description",
            "routes.weather.network", "routes.weather.price", "routes.premium",
            "routes.bad name!", "routes.bad name!.network", "routes.bad name!.price", "routes.bad name!.pay_to",
            "routes.multi.accepts[0].pay_to", "routes.multi.accepts[1].pay_too",
            "stores.redis.url",
        ]
        #expect(paths == expected, "missing \(expected.subtracting(paths)), unexpected \(paths.subtracting(expected))")
        let typo = Self.problems(yaml).first { $0.path == "server.event_loop" }
        #expect(typo?.message.contains("did you mean \"event_loops\"") == true)
        #expect(typo?.line == 3)
    }

    @Test func environmentInterpolation() throws {
        let yaml = """
            defaults: {pay_to: "${PAY_TO}"}
            routes:
              weather: {description: "costs $${NOT_A_VAR}", price: "${PRICE:-0.02}"}
            stores: {ledger: redis, redis: {url: "redis://127.0.0.1:1/0"}}
            """
        let configuration = try Self.load(yaml, ["PAY_TO": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "X402_REDIS_URL": "redis://10.0.0.1:6379"]).get()
        #expect(configuration.routes["weather"]?.options.first?.amount == "20000")
        #expect(configuration.routes["weather"]?.description == "costs ${NOT_A_VAR}")
        #expect(configuration.ledger == .redis(url: "redis://10.0.0.1:6379", keyPrefix: "x402"))
        let missing = Self.problems(yaml)
        #expect(missing.map(\.path) == ["defaults.pay_to"])
        #expect(missing.first?.message.contains("${PAY_TO}") == true)
    }

    @Test func customNetworksAndSocketModes() throws {
        let yaml = """
            server: {listen: ["unix:/tmp/x.sock", "[::1]:9000"], unix_socket_mode: "0600"}
            defaults: {pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", network: devnet}
            networks:
              devnet:
                chain_id: 31337
                asset: {address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", name: "Test USD", version: "1", decimals: 2}
            routes:
              weather: {description: "Weather", price: "0.25"}
            """
        let configuration = try Self.load(yaml).get()
        #expect(configuration.server.listen == [.unix(path: "/tmp/x.sock", mode: 0o600), .tcp(host: "::1", port: 9000)])
        let option = try #require(configuration.routes["weather"]?.options.first)
        #expect(option.network.caip2 == "eip155:31337")
        #expect(option.network.v1Name == nil)
        #expect(option.amount == "25")
        #expect(option.token.eip712Name == "Test USD")
        #expect(ConfigurationSummary.summary(of: configuration).contains("0.25 USDC"))
    }

    @Test func emptyAndBrokenFilesSayWhy() {
        #expect(Self.problems("").first?.message == "the file is empty")
        #expect(Self.problems("routes: [").first?.message.hasPrefix("not valid YAML") == true)
        #expect(Self.problems("server: {}").map(\.path) == ["routes"])
    }
}
