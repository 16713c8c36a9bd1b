#if canImport(Glibc)
import Glibc
#endif
import X402

/// A route's rate limits and free quota, from the YAML.
public struct RouteLimits: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public enum Key: Sendable, Equatable, CustomStringConvertible {
            /// The client's address (X-Forwarded-For believed only from trusted proxies).
            case ip
            /// The verified payer (paid requests only).
            case payer
            /// A lease id (`X-X402-Lease`).
            case lease
            /// A request header, e.g. an API key (stored hashed).
            case header(String)

            public var description: String {
                switch self {
                case .ip: return "ip"
                case .payer: return "payer"
                case .lease: return "lease"
                case .header(let name): return "header:\(name)"
                }
            }
        }
        /// Which requests a rule counts.
        public enum Applies: String, Sendable, CaseIterable {
            case all, unpaid, paid
        }

        /// The policy name (`RateLimit-Policy`), unique in the route.
        public var name: String
        public var rule: RateRule
        public var key: Key
        public var applies: Applies
        /// When the limiter's store is unreachable: true lets requests through, false answers 503.
        public var failOpen: Bool

        public init(name: String, rule: RateRule, key: Key, applies: Applies = .all, failOpen: Bool = false) {
            self.name = name
            self.rule = rule
            self.key = key
            self.applies = applies
            self.failOpen = failOpen
        }
    }

    public struct Free: Sendable, Equatable {
        public var calls: Int
        public var windowSeconds: Int64
        public var key: Rule.Key

        public init(calls: Int, windowSeconds: Int64, key: Rule.Key) {
            self.calls = calls
            self.windowSeconds = windowSeconds
            self.key = key
        }
    }

    public var rules: [Rule]
    public var free: Free?

    public init(rules: [Rule] = [], free: Free? = nil) {
        self.rules = rules
        self.free = free
    }

    public var isEmpty: Bool { rules.isEmpty && free == nil }

    /// Request headers the rules read (lowercased), so the HTTP layer captures only those.
    var keyHeaderNames: [String] {
        var names: [String] = []
        for key in rules.map(\.key) + (free.map { [$0.key] } ?? []) {
            switch key {
            case .header(let name): names.append(name.lowercased())
            case .lease: names.append("x-x402-lease")
            default: break
            }
        }
        return names
    }
}

/// Which peers may tell us the client's address in `X-Forwarded-For`.
public struct TrustedProxies: Sendable, Equatable {
    struct Network: Sendable, Equatable {
        var address: [UInt8]
        var prefix: Int
    }
    var networks: [Network]

    public init() { networks = [] }

    /// CIDRs like `10.0.0.0/8`, `127.0.0.1`, `::1/128`; nil for anything else.
    public init?(_ cidrs: [String]) {
        var parsed: [Network] = []
        for text in cidrs {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard let address = Self.bytes(parts[0]) else { return nil }
            let prefix = parts.count == 2 ? Int(parts[1]) : address.count * 8
            guard let prefix, (0...(address.count * 8)).contains(prefix) else { return nil }
            parsed.append(Network(address: address, prefix: prefix))
        }
        networks = parsed
    }

    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    func contains(_ text: String) -> Bool {
        guard let address = Self.bytes(text) else { return false }
        return networks.contains { network in
            guard network.address.count == address.count else { return false }
            var bits = network.prefix
            for (a, b) in zip(network.address, address) {
                if bits <= 0 { return true }
                let mask: UInt8 = bits >= 8 ? 0xFF : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if a & mask != b & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    /// The client's address: the peer nginx saw, or — when that peer is a trusted proxy — the
    /// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
    public func clientAddress(peer: String?, forwardedFor: String?) -> String? {
        guard let peer else { return nil }
        guard contains(peer), let forwardedFor else { return peer }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() where !contains(hop) {
            return Self.bytes(hop) != nil ? hop : peer
        }
        return hops.first.flatMap { Self.bytes($0) != nil ? $0 : nil } ?? peer
    }
}
