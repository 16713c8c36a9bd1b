import Yams

/// Where the sidecar listens.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// A unix socket; `mode` is applied after bind so that nginx's worker user can connect.
    case unix(path: String, mode: UInt16)
    case tcp(host: String, port: Int)

    public var description: String {
        switch self {
        case .unix(let path, _): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// `unix:/path` or `HOST:PORT` (`[::1]:PORT` for IPv6); nil for anything else.
    init?(parsing text: String, mode: UInt16) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            if path.isEmpty { return nil }
            self = .unix(path: path, mode: mode)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { return nil }
        self = .tcp(host: host, port: port)
    }
}

/// `server:` — the listeners Nginx talks to and the HTTP limits.
public struct ServerSettings: Sendable, Equatable {
    public var listen: [ListenAddress]
    /// NIO event loops; nil means one per core.
    public var eventLoops: Int?
    /// Upper bound on a request's head (request line + headers); larger requests get 431.
    public var maxHeaderBytes: Int
    /// Seconds to let in-flight requests finish on shutdown.
    public var shutdownGraceSeconds: Int
    /// Unix datagram socket where Nginx reports paid requests' upstream statuses (syslog format).
    public var reportSocket: String?
    public var unixSocketMode: UInt16 = 0o660
    /// How long the nginx module may keep the 402 of an unpaid request on a plain route
    /// (`DecisionCaching`); 0 keeps nothing.
    public var decisionCacheSeconds = 0

    public init(
        listen: [ListenAddress] = [.tcp(host: "127.0.0.1", port: 8402)], eventLoops: Int? = nil,
        maxHeaderBytes: Int = 32768, shutdownGraceSeconds: Int = 10
    ) {
        self.listen = listen
        self.eventLoops = eventLoops
        self.maxHeaderBytes = maxHeaderBytes
        self.shutdownGraceSeconds = shutdownGraceSeconds
    }
}

extension ServerSettings {
    static let keys = ["listen", "unix_socket_mode", "event_loops", "max_header_bytes", "shutdown_grace_seconds",
                       "report_socket", "decision_cache_seconds"]

    static func parse(_ node: Node?, _ r: inout ConfigReader) -> ServerSettings {
        var settings = ServerSettings()
        guard let s = r.section(node, "server", allowed: keys) else { return settings }
        if let text = r.string(s["unix_socket_mode"], "server.unix_socket_mode") {
            if let mode = UInt16(text, radix: 8), mode <= 0o777 { settings.unixSocketMode = mode } else {
                r.problem("server.unix_socket_mode", "must be an octal mode like \"0660\", not \"\(text)\"",
                          s["unix_socket_mode"])
            }
        }
        if let text = r.string(s["report_socket"], "server.report_socket") {
            if text.hasPrefix("unix:"), text.count > 5 { settings.reportSocket = String(text.dropFirst(5)) } else {
                r.problem("server.report_socket", "must be unix:/path/to/report.sock, not \"\(text)\"",
                          s["report_socket"])
            }
        }
        if let items = r.list(s["listen"], "server.listen") {
            var addresses: [ListenAddress] = []
            for (index, item) in items.enumerated() {
                let path = "server.listen[\(index)]"
                guard let text = r.string(item, path) else { continue }
                guard let address = ListenAddress(parsing: text, mode: settings.unixSocketMode) else {
                    r.problem(path, "must be unix:/path/to.sock or HOST:PORT (port 0-65535), not \"\(text)\"", item)
                    continue
                }
                if addresses.contains(address) { r.problem(path, "\(text) is listed twice", item) }
                addresses.append(address)
            }
            if items.isEmpty { r.problem("server.listen", "must name at least one address", s["listen"]) }
            settings.listen = addresses
        }
        settings.eventLoops = r.int(s["event_loops"], "server.event_loops", range: 1...64)
        if let value = r.int(s["max_header_bytes"], "server.max_header_bytes", range: 1024...1_048_576) {
            settings.maxHeaderBytes = value
        }
        if let value = r.int(s["decision_cache_seconds"], "server.decision_cache_seconds", range: 0...60) {
            settings.decisionCacheSeconds = value
        }
        if let value = r.int(s["shutdown_grace_seconds"], "server.shutdown_grace_seconds", range: 0...300) {
            settings.shutdownGraceSeconds = value
        }
        return settings
    }
}
