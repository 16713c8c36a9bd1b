/// An EVM network as x402 names it: CAIP-2 id for v2, legacy name for v1.
public struct Network: Sendable, Hashable {
    /// `eip155:<chainId>`.
    public var caip2: String
    /// The v1 name (`base-sepolia`), when v1 clients know this network.
    public var v1Name: String?
    public var chainId: UInt64

    public init(chainId: UInt64, v1Name: String?) {
        self.caip2 = "eip155:\(chainId)"
        self.v1Name = v1Name
        self.chainId = chainId
    }
}

/// A token that speaks EIP-3009, with the EIP-712 domain its contract signs under.
public struct TokenInfo: Sendable, Hashable {
    public var address: String
    /// EIP-712 domain name. USDC's differs by chain ("USD Coin" vs "USDC"); a wrong name gives a
    /// well-formed signature that recovers to a random address.
    public var eip712Name: String
    public var eip712Version: String
    public var decimals: Int
    public var symbol: String

    public init(address: String, eip712Name: String, eip712Version: String, decimals: Int, symbol: String) {
        self.address = address
        self.eip712Name = eip712Name
        self.eip712Version = eip712Version
        self.decimals = decimals
        self.symbol = symbol
    }
}

/// Networks we know without configuration, with their USDC. Custom networks come from config.
public struct KnownNetwork: Sendable {
    public var name: String
    public var network: Network
    public var usdc: TokenInfo

    static func usdc(_ address: String, _ name: String) -> TokenInfo {
        TokenInfo(address: address, eip712Name: name, eip712Version: "2", decimals: 6, symbol: "USDC")
    }

    /// The built-in table (facts checked against the official SDK's default asset table).
    public static let builtIn: [KnownNetwork] = [
        KnownNetwork(name: "base", network: Network(chainId: 8453, v1Name: "base"),
                     usdc: usdc("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USD Coin")),
        KnownNetwork(name: "base-sepolia", network: Network(chainId: 84532, v1Name: "base-sepolia"),
                     usdc: usdc("0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC")),
        KnownNetwork(name: "ethereum", network: Network(chainId: 1, v1Name: "ethereum"),
                     usdc: usdc("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USD Coin")),
        KnownNetwork(name: "polygon", network: Network(chainId: 137, v1Name: "polygon"),
                     usdc: usdc("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", "USD Coin")),
        KnownNetwork(name: "polygon-amoy", network: Network(chainId: 80002, v1Name: "polygon-amoy"),
                     usdc: usdc("0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582", "USDC")),
        KnownNetwork(name: "avalanche", network: Network(chainId: 43114, v1Name: "avalanche"),
                     usdc: usdc("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", "USD Coin")),
        KnownNetwork(name: "avalanche-fuji", network: Network(chainId: 43113, v1Name: "avalanche-fuji"),
                     usdc: usdc("0x5425890298aed601595a70AB815c96711a31Bc65", "USD Coin")),
        KnownNetwork(name: "arbitrum", network: Network(chainId: 42161, v1Name: nil),
                     usdc: usdc("0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "USD Coin")),
    ]

    /// Looks a network up by its name, its CAIP-2 id or its v1 name.
    public static func find(_ name: String) -> KnownNetwork? {
        builtIn.first { $0.name == name || $0.network.caip2 == name || $0.network.v1Name == name }
    }
}
