import Foundation
import Testing
import X402
@testable import X402Sidecar

/// Issue 11, part 5: no example or default carries a payout address, a key or a secret.
@Suite struct ConfigurationSafetyTests {
    static let example = ConfigurationTests.root.appendingPathComponent("config/x402.example.yaml").path

    static func problems(_ environment: [String: String]) -> [ConfigurationProblem] {
        guard case .failure(let problems) = ConfigurationLoader.load(path: example, environment: environment) else {
            return []
        }
        return problems.problems
    }

    @Test func theExampleWithoutItsVariablesNamesEachMissingSecret() {
        let problems = Self.problems([:])
        #expect(Set(problems.map(\.path)) == ["defaults.pay_to", "relayer.private_key", "backend.hmac_secret"],
                "\(problems)")
        for variable in ["X402_PAY_TO", "X402_RELAYER_KEY", "X402_BACKEND_SECRET"] {
            #expect(problems.contains { $0.message.contains("${\(variable)}") && $0.message.contains("not set") },
                    "\(variable) is not named")
        }
    }

    @Test(arguments: PublicTestKeys.accounts.indices)
    func aPublicTestKeyOnMainnetIsRefused(index: Int) {
        var environment = ConfigurationTests.shippedEnvironment
        environment["X402_RELAYER_KEY"] = PublicTestKeys.accounts[index].privateKey
        let problems = Self.problems(environment)
        #expect(problems.map(\.path) == ["relayer.private_key"])
        #expect(problems.first?.message.contains("public test key") == true)
    }

    @Test(arguments: ["change-me-to-32-random-bytes-of-hex", "my-backend-secret-my-backend-secret",
                      "placeholder-placeholder-placeholder", "0000000000000000000000000000000000000000"])
    func placeholderSecretsAreRefusedOnMainnet(secret: String) {
        var environment = ConfigurationTests.shippedEnvironment
        environment["X402_BACKEND_SECRET"] = secret
        #expect(Self.problems(environment).map(\.path) == ["backend.hmac_secret"])
    }

    @Test func theOldFallbacksAreGone() throws {
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
        for account in PublicTestKeys.accounts {
            #expect(!text.lowercased().contains(account.privateKey.dropFirst(2).lowercased()))
        }
        #expect(!text.contains("0x209693Bc6afc0C5328bA36FaF03C514EF312287C"))
        #expect(!text.contains("change-me"))
    }

    @Test func theTableOfPublicKeysIsConsistent() throws {
        for account in PublicTestKeys.accounts {
            let key = try #require(Hex.decode(account.privateKey, byteCount: 32))
            let address = try #require(Secp256k1.address(privateKey: key))
            #expect(Hex.checksumAddress(address) == account.address)
        }
    }

    @Test func onATestnetTheSameFindingsAreWarnings() throws {
        let yaml = """
            defaults: {pay_to: "\(PublicTestKeys.accounts[2].address)", network: base-sepolia}
            routes:
              weather: {description: "Weather", price: "0.01"}
            relayer: {private_key: "\(PublicTestKeys.accounts[1].privateKey)"}
            backend: {hmac_secret: "change-me-to-32-random-bytes-of-hex"}
            """
        let configuration = try ConfigurationLoader.load(yaml: yaml, environment: [:]).get()
        let findings = ["routes.weather.pay_to", "relayer.private_key", "backend.hmac_secret"]
        #expect(configuration.warnings.map(\.path) == findings)
        #expect(configuration.warnings.allSatisfy { $0.description.hasPrefix("warning: ") })
        // The same file offering base mainnet too: every finding refuses it.
        let mainnet = yaml.replacingOccurrences(of: "network: base-sepolia", with: "network: base")
        guard case .failure(let problems) = ConfigurationLoader.load(yaml: mainnet, environment: [:]) else {
            Issue.record("accepted on mainnet")
            return
        }
        #expect(problems.problems.map(\.path) == findings)
        // A custom chain counts as a testnet only when it says so (or is a local devnet's id).
        let custom = yaml.replacingOccurrences(of: "network: base-sepolia", with: "network: mine") + """

            networks:
              mine:
                {chain_id: 777777, testnet: true, asset: {address: "\(ConfigurationRuleTests.payTo)", name: U, version: "1"}}
            """
        #expect(try ConfigurationLoader.load(yaml: custom, environment: [:]).get().warnings.count == 3)
        let unmarked = custom.replacingOccurrences(of: "testnet: true, ", with: "")
        #expect(throws: ConfigurationProblems.self) {
            try ConfigurationLoader.load(yaml: unmarked, environment: [:]).get()
        }
    }
}
