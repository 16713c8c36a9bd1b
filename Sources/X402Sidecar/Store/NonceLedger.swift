import X402

/// The state an authorization is in once a request has presented it.
public enum NonceState: String, Sendable, Equatable {
    /// Held for one request; not yet settled on chain.
    case reserved
    /// Settled on chain; can never be accepted again.
    case settled
}

/// What the ledger remembers about one authorization.
public struct NonceRecord: Sendable, Equatable {
    public var state: NonceState
    /// The reservation owner (the payment id handed to the request that won the reservation).
    public var token: String
    /// Unix seconds after which the record may be forgotten: the authorization's `validBefore`
    /// plus a margin, after which the chain itself refuses the authorization.
    public var expiresAt: Int64
    /// The settlement transaction, once known.
    public var transaction: String?

    public init(state: NonceState, token: String, expiresAt: Int64, transaction: String? = nil) {
        self.state = state
        self.token = token
        self.expiresAt = expiresAt
        self.transaction = transaction
    }
}

/// What a reservation with an exposure hold decided.
public enum Reservation: Sendable, Equatable {
    case reserved
    /// Reserved or settled already (by anyone).
    case alreadyUsed
    /// The payer's pending exposure plus this amount is over the hold's limit.
    case overLimit(pending: UInt128)
}

/// A used-authorization ledger keyed by (network, asset, payer, nonce).
///
/// `/verify` at a facilitator does not consume an authorization; only settlement does. The ledger
/// is what makes one signed authorization buy exactly one request: `reserve` is atomic across every
/// sidecar sharing the store, and a reservation is only ever given back by its owner (`release`),
/// never by someone presenting the same authorization again.
public protocol NonceLedger: Sendable {
    /// Atomically claims `key` for the owner `token` until `expiresAt` (unix seconds). In-process
    /// ledgers answer in place (`.ready`), so a paid request is decided on the event loop.
    /// - Returns: `true` when this call won the reservation, `false` when the key is already
    ///   reserved or settled (by anyone, including this owner).
    func reserve(_ key: NonceKey, token: String, expiresAt: Int64) -> StoreAnswer<Bool>

    /// `reserve`, and in the same atomic step `hold.amount` added to the payer's pending exposure
    /// (`ExposureHold.payerKey`) unless that would take it past `hold.limit`: then nothing is
    /// reserved or held. `markSettled` keeps the amount counted for `exposureSettledHoldSeconds`
    /// (a cached balance read before the transfer still includes it); `release` drops it; an
    /// unsettled hold counts until the reservation expires.
    func reserve(_ key: NonceKey, token: String, expiresAt: Int64, holding hold: ExposureHold)
        -> StoreAnswer<Reservation>

    /// The payer's pending exposure (for the admin API and tests).
    func pendingExposure(_ key: NonceKey) async throws -> UInt128

    /// Whether `key` is known here, without I/O, to be reserved or settled: an in-process table
    /// lookup that lets a replay be refused before its signature is recovered. `false` means
    /// "not known", never "free" (a shared ledger always answers `false`).
    func isKnownUsed(_ key: NonceKey) -> Bool

    /// Moves a reservation held by `token` to `settled`, recording the transaction.
    /// - Returns: `false` when `token` does not hold a reservation for `key`.
    @discardableResult
    func markSettled(_ key: NonceKey, token: String, transaction: String) async throws -> Bool

    /// Gives back a reservation held by `token` (the request failed before settlement), so the
    /// payer may present the same authorization again. Settled records are never released.
    /// - Returns: `false` when `token` does not hold a reservation for `key`.
    @discardableResult
    func release(_ key: NonceKey, token: String) async throws -> Bool

    /// The record for `key`, if any and not expired.
    func record(_ key: NonceKey) async throws -> NonceRecord?

    /// Throws when the store cannot currently serve requests (used by `/readyz`).
    func checkReady() async throws
}

extension NonceLedger {
    public func isKnownUsed(_ key: NonceKey) -> Bool { false }
}
