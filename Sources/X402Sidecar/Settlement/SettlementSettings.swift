import X402

/// Settlement settings shared by every route (a route may override mode and via).
public struct SettlementSettings: Sendable, Equatable {
    public enum QueueKind: Sendable, Equatable {
        case memory
        case embedded(journalPath: String, fsync: Bool)
        case redis(url: String, keyPrefix: String)
    }
    public enum HoldTimeoutPolicy: String, Sendable, CaseIterable {
        /// No report arrived: settle anyway (the backend probably answered).
        case settle
        /// No report arrived: give the reservation back, charge nothing.
        case release
    }

    public var mode: SettlementMode = .deferred
    public var via: SettlementVia = .facilitator
    public var queue: QueueKind = .embedded(journalPath: "/var/lib/x402/settlements.journal", fsync: false)
    public var maxAttempts = 8
    public var retryBaseMilliseconds = 1000
    public var retryMaxSeconds = 300
    /// How long an `after` job waits for Nginx's report of the upstream status.
    public var reportTimeoutSeconds = 30
    public var holdTimeoutPolicy: HoldTimeoutPolicy = .settle
    /// How long a `before` request waits for its settlement before the sidecar answers anyway.
    public var beforeTimeoutSeconds = 20
    /// How long a claimed job stays invisible to other workers.
    public var leaseSeconds = 60
    public var workerIdleMilliseconds = 200
    /// `false`: this instance only queues; others (with the same Redis queue) settle.
    public var runsWorker = true

    public init() {}
}

/// Who verifies a route's payments.
public enum VerifyMode: String, Sendable, CaseIterable {
    /// Our verifier alone (the fast path: no network call).
    case local
    /// The facilitator's `/verify` decides; locally only what binds the payment to the route
    /// (scheme, network, asset, payTo, amount, times) is checked, not the signature — for
    /// smart-contract wallets (EIP-1271 / ERC-6492) that ecrecover cannot verify.
    case facilitator
    /// Both must accept.
    case both
}

/// Per-route choices.
public struct RouteSettlement: Sendable, Equatable {
    public var mode: SettlementMode
    public var via: SettlementVia
    public var verify: VerifyMode
    public init(mode: SettlementMode, via: SettlementVia, verify: VerifyMode = .local) {
        self.mode = mode
        self.via = via
        self.verify = verify
    }
}
