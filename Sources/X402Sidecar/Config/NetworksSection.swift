import X402
import Yams

/// `networks:` (custom chains) on top of the built-in table, and `rpc_urls:`.
struct NetworkCatalog {
    struct Custom {
        var network: Network
        var token: TokenInfo
        /// Keys and secrets found in public test lists are warnings on a testnet, errors elsewhere.
        var testnet: Bool
    }

    /// Chains whose coins are worth nothing: the built-in testnets, the other public testnets, and
    /// the chain ids local devnets use (Anvil/Hardhat 31337, Ganache/geth --dev 1337).
    static let testnetChainIds: Set<UInt64> = [84532, 80002, 43113, 11155111, 17000, 421614, 11155420, 31337, 1337]

    var custom: [String: Custom] = [:]

    static func parse(_ node: Node?, _ r: inout ConfigReader) -> NetworkCatalog {
        var catalog = NetworkCatalog()
        for (name, value) in r.mapping(node, "networks") ?? [] {
            let path = "networks.\(name)"
            guard let s = r.section(value, path, allowed: ["chain_id", "v1_name", "asset", "testnet"]) else { continue }
            if s["chain_id"] == nil { r.problem("\(path).chain_id", "is required", value) }
            if s["asset"] == nil { r.problem("\(path).asset", "is required (address, name, version, decimals)", value) }
            let chainId = r.int(s["chain_id"], "\(path).chain_id", range: 1...Int(Int64.max))
            let v1Name = r.string(s["v1_name"], "\(path).v1_name")
            let token = parseToken(s["asset"], "\(path).asset", &r)
            let testnet = r.bool(s["testnet"], "\(path).testnet")
            guard let chainId, let token else { continue }
            catalog.custom[name] = Custom(
                network: Network(chainId: UInt64(chainId), v1Name: v1Name), token: token,
                testnet: testnet ?? testnetChainIds.contains(UInt64(chainId)))
        }
        return catalog
    }

    /// By a custom network's key, its CAIP-2 id, or a built-in name / CAIP-2 id / v1 name.
    func resolve(_ name: String) -> Custom? {
        if let custom = custom[name] { return custom }
        if let custom = custom.values.first(where: { $0.network.caip2 == name }) { return custom }
        return KnownNetwork.find(name).map {
            Custom(network: $0.network, token: $0.usdc, testnet: Self.testnetChainIds.contains($0.network.chainId))
        }
    }

    /// A custom network's own `testnet:` (or its chain id's); otherwise the known testnet ids.
    func isTestnet(_ chainId: UInt64) -> Bool {
        if let custom = custom.values.first(where: { $0.network.chainId == chainId }) { return custom.testnet }
        return Self.testnetChainIds.contains(chainId)
    }

    var knownNames: String { (KnownNetwork.builtIn.map(\.name) + custom.keys.sorted()).joined(separator: ", ") }

    /// `rpc_urls:` — JSON-RPC endpoints by chain id.
    func parseRPCURLs(_ node: Node?, _ r: inout ConfigReader) -> [UInt64: String] {
        var urls: [UInt64: String] = [:]
        for (name, value) in r.mapping(node, "rpc_urls") ?? [] {
            let path = "rpc_urls.\(name)"
            guard let url = r.string(value, path) else { continue }
            guard let network = resolve(name) else {
                r.problem(path, "\"\(name)\" is not a known network", value)
                continue
            }
            if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                r.problem(path, "must be an http:// or https:// URL, not \"\(url)\"", value)
            }
            urls[network.network.chainId] = url
        }
        return urls
    }

    static func parseToken(_ node: Node?, _ path: String, _ r: inout ConfigReader) -> TokenInfo? {
        let allowed = ["address", "name", "version", "decimals", "symbol"]
        guard let s = r.section(node, path, allowed: allowed) else { return nil }
        let address = r.string(s["address"], "\(path).address")
        if address == nil && s["address"] == nil { r.problem("\(path).address", "is required", node) }
        let addressOK = address.map { checkAddress($0, "\(path).address", s["address"], &r) } ?? false
        let name = r.string(s["name"], "\(path).name")
        let version = r.string(s["version"], "\(path).version")
        if s["name"] == nil || s["version"] == nil {
            r.problem(path, "needs name and version: the token's EIP-712 domain (missing_eip712_domain otherwise)",
                      node)
        }
        let decimals = s["decimals"] == nil ? 6 : r.int(s["decimals"], "\(path).decimals", range: 0...36)
        let symbol = r.string(s["symbol"], "\(path).symbol") ?? "USDC"
        guard let address, addressOK, let name, let version, let decimals else { return nil }
        return TokenInfo(address: address, eip712Name: name, eip712Version: version, decimals: decimals, symbol: symbol)
    }

    static func checkAddress(_ text: String, _ path: String, _ node: Node?, _ r: inout ConfigReader) -> Bool {
        guard let bytes = Hex.decode(text, byteCount: 20) else {
            r.problem(path, "must be an address: 0x followed by 40 hex digits, not \"\(text)\"", node)
            return false
        }
        guard bytes.contains(where: { $0 != 0 }) else {
            r.problem(path, "is the zero address; payments to it are burned", node)
            return false
        }
        return true
    }
}
