/// The sidecar's HTTP endpoints, in one table: what each path is and which listener serves it.
///
/// | path | endpoint | listener |
/// |---|---|---|
/// | `/authorize`, `/_x402/authorize` | Nginx's auth subrequest | main |
/// | `/lease/NAME`, `/_x402/lease/NAME` | a lease path, proxied by nginx: real 402/200 answers, the token in the body | main |
/// | `/report`, `/_x402/report` | an upstream status for `after` settlement (HTTP form of the report socket) | main |
/// | `/healthz` | liveness | main, admin |
/// | `/readyz` | readiness: every configured store answers, else 503 naming the one that failed | main |
/// | `/metrics` | Prometheus text format | main, admin |
/// | `/admin/…` | the admin API (bearer token) | admin |
enum Endpoint: Sendable, Equatable {
    case authorize, lease, report, healthz, readyz, metrics, admin

    struct Entry {
        var path: String
        /// `true`: any path starting with `path`.
        var prefix = false
        var endpoint: Endpoint
        var main: Bool
        var admin: Bool
    }

    static let table: [Entry] = [
        Entry(path: "/authorize", endpoint: .authorize, main: true, admin: false),
        Entry(path: "/_x402/authorize", endpoint: .authorize, main: true, admin: false),
        Entry(path: "/lease/", prefix: true, endpoint: .lease, main: true, admin: false),
        Entry(path: "/_x402/lease/", prefix: true, endpoint: .lease, main: true, admin: false),
        Entry(path: "/report", endpoint: .report, main: true, admin: false),
        Entry(path: "/_x402/report", endpoint: .report, main: true, admin: false),
        Entry(path: "/healthz", endpoint: .healthz, main: true, admin: true),
        Entry(path: "/readyz", endpoint: .readyz, main: true, admin: false),
        Entry(path: "/metrics", endpoint: .metrics, main: true, admin: true),
        Entry(path: "/admin/", prefix: true, endpoint: .admin, main: false, admin: true),
    ]

    /// The endpoint at `path` (without the query) on the main or the admin listener.
    static func find(_ path: Substring, admin: Bool) -> Endpoint? {
        for entry in table where admin ? entry.admin : entry.main {
            if entry.prefix ? path.hasPrefix(entry.path) : path == entry.path { return entry.endpoint }
        }
        return nil
    }
}
