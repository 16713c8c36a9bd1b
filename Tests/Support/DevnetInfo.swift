import Foundation
import X402

/// What `deploy/devnet/devnet.py` writes to `devnet.json` when it is ready (the file
/// `X402_TEST_DEVNET_INFO` names during `make test`).
public struct DevnetInfo: Decodable, Sendable {
    public struct Account: Decodable, Sendable {
        public var address: String
        public var privateKey: String
    }

    public var chainId: UInt64
    public var rpcURL: String
    public var facilitatorURL: String
    public var token: String
    public var payTo: Account
    public var relayer: Account
    public var payers: [Account]
    public var poorPayer: Account

    enum CodingKeys: String, CodingKey {
        case chainId, token, payTo, payers, poorPayer
        case rpcURL = "rpcUrl"
        case facilitatorURL = "facilitatorUrl"
        case relayer = "sidecarRelayer"
    }

    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    public static let path = ProcessInfo.processInfo.environment["X402_TEST_DEVNET_INFO"]

    public static func loadFromEnvironment() throws -> DevnetInfo {
        guard let path, let data = FileManager.default.contents(atPath: path) else {
            throw Missing(description: "X402_TEST_DEVNET_INFO does not name a devnet info file")
        }
        return try JSONDecoder().decode(DevnetInfo.self, from: data)
    }

    /// The devnet's USDC-like token (EIP-712 name "USDC", version "2", 6 decimals).
    public var option: PaymentOption {
        try! PaymentOption(
            network: Network(chainId: chainId, v1Name: chainId == 84532 ? "base-sepolia" : nil),
            token: TokenInfo(address: token, eip712Name: "USDC", eip712Version: "2", decimals: 6, symbol: "USDC"),
            payTo: payTo.address, amount: "10000", maxTimeoutSeconds: 300)
    }

    public var route: RouteRequirements {
        RouteRequirements(name: "weather", description: "Weather", mimeType: "application/json", options: [option])
    }

    public var resource: ResourceInfo {
        ResourceInfo(url: "http://localhost/weather", description: "Weather", mimeType: "application/json")
    }
}
