import X402

/// One request's use of a lease, for `LeaseStore.admit`.
public struct LeaseUse: Sendable, Equatable {
    public var jti: String
    /// The token's `exp`: every record about the lease may be forgotten after it (plus the store's margin).
    public var expiresAt: Int64
    public var maxRequests: Int?
    public var maxConcurrent: Int?
    /// Names this request's concurrency slot (e.g. its request id); required with `maxConcurrent`,
    /// given back with `LeaseStore.release(jti:slot:)` when nginx reports the request's end.
    public var slot: String?
    /// When an unreleased slot frees itself; the token's `exp` unless the flow picks earlier.
    public var slotExpiresAt: Int64

    public init(claims: LeaseClaims, slot: String?, slotExpiresAt: Int64? = nil) {
        self.jti = claims.jti
        self.expiresAt = claims.expiresAt
        self.maxRequests = claims.maxRequests
        self.maxConcurrent = claims.maxConcurrent
        self.slot = slot
        self.slotExpiresAt = min(slotExpiresAt ?? claims.expiresAt, claims.expiresAt)
    }
}

/// What `admit` decided.
public enum LeaseAdmission: Sendable, Equatable {
    /// Let in. `requests` is this request's number when the lease counts requests, else 0; the
    /// slot (if any) is now held.
    case admitted(requests: Int)
    /// Refused: `.revoked`, `.requestLimit` or `.concurrencyLimit`. Nothing was counted or held.
    case refused(LeaseRefusal)
}

/// What `renew` decided about the old lease.
public enum LeaseRenewal: Sendable, Equatable {
    /// The old lease is now revoked and names `successor`.
    case renewed
    /// Another renewal won first: the old lease already names this successor.
    case alreadyRenewed(successor: String)
    /// The old lease was revoked (not by a renewal): no renewal.
    case revoked
}

/// A payment that gives a wallet access to a route on a host until `expiresAt`, recorded when
/// the payment was accepted; what Sign-In-With-X looks up.
public struct PaidAccess: Sendable, Equatable {
    /// Lowercase `0x` address.
    public var payer: String
    public var route: String
    /// Normalized client-visible host (`LeaseClaims.normalizedHost`).
    public var host: String
    /// Price paid (decimal atomic units), asset and CAIP-2 network.
    public var amount: String
    public var asset: String
    public var network: String
    public var paymentID: String
    public var expiresAt: Int64

    public init(
        payer: String, route: String, host: String, amount: String, asset: String, network: String,
        paymentID: String, expiresAt: Int64
    ) {
        self.payer = payer
        self.route = route
        self.host = host
        self.amount = amount
        self.asset = asset
        self.network = network
        self.paymentID = paymentID
        self.expiresAt = expiresAt
    }

    /// Whether this payment still buys access at the route's current price: same asset and
    /// network, amount at least `amount` (a price rise needs a new payment), not expired.
    public func covers(amount required: String, asset: String, network: String, now: Int64) -> Bool {
        guard now < expiresAt, asset.lowercased() == self.asset.lowercased(), network == self.network else {
            return false
        }
        return Self.compareDecimal(self.amount, required) >= 0
    }

    /// Compares canonical decimal strings (no leading zeros).
    static func compareDecimal(_ a: String, _ b: String) -> Int {
        if a.utf8.count != b.utf8.count { return a.utf8.count < b.utf8.count ? -1 : 1 }
        return a == b ? 0 : (a < b ? -1 : 1)
    }
}

/// Lease and Sign-In-With-X state shared by every sidecar: revocations, request counters,
/// concurrency slots, renewals, consumed SIWX nonces and paid-access records. Every decision is
/// atomic (one Redis script on one hash-tagged slot per lease; one lock in process), and every
/// record expires by itself (at the token's `exp` plus a margin, or the record's own expiry).
public protocol LeaseStore: Sendable {
    /// Notes a newly issued lease under its payer, so `revoke(payer:)` can find it.
    func register(_ claims: LeaseClaims) async throws

    /// Checks revocation, then `maxConcurrent` (taking `use.slot`), then `maxRequests`
    /// (incrementing the counter), all or nothing. In process it answers in place, so a leased
    /// request is decided on the event loop.
    func admit(_ use: LeaseUse, now: Int64) -> StoreAnswer<LeaseAdmission>

    /// Gives back a concurrency slot. - Returns: false when it was not held (released or expired).
    @discardableResult
    func release(jti: String, slot: String) async throws -> Bool

    /// Revokes one lease until `expiresAt` (its `exp`).
    func revoke(jti: String, expiresAt: Int64) async throws

    /// Revokes every registered, unexpired lease of `payer`. - Returns: how many.
    @discardableResult
    func revoke(payer: String, now: Int64) async throws -> Int

    /// Marks `jti` renewed by `successor` (and so revoked), once: concurrent renewals of one lease
    /// get one `.renewed`.
    func renew(jti: String, successor: String, expiresAt: Int64) async throws -> LeaseRenewal

    /// Consumes a SIWX nonce, remembered until `expiresAt`. - Returns: true for the first call only.
    func consumeSIWXNonce(_ nonce: String, expiresAt: Int64) -> StoreAnswer<Bool>

    /// Records paid access; a record with a later `expiresAt` for the same payer, route and host
    /// is kept instead.
    func recordPaidAccess(_ access: PaidAccess) -> StoreAnswer<Void>

    /// The unexpired paid-access record for payer, route and host, if any.
    func paidAccess(payer: String, route: String, host: String, now: Int64) -> StoreAnswer<PaidAccess?>

    /// Throws when the store cannot serve requests (`/readyz`).
    func checkReady() async throws
}
