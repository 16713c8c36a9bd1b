import X402

/// What one step of a settlement job's life changes, computed without I/O: the job as it must be
/// stored, how (`write`), what happens to the payment's nonce reservation, and what to count and
/// log. `SettlementRecorder` applies a transition — queue and ledger together, every error logged
/// and counted.
public struct SettlementTransition: Sendable, Equatable {
    public enum Write: Sendable, Equatable {
        /// Store the job as it now is.
        case put
        /// Store it only if the stored job is still `held`: Nginx's report and the hold timeout
        /// race to decide an `after` job, and only one of them may.
        case putIfHeld
    }

    public enum LedgerChange: Sendable, Equatable {
        case keep
        /// Give the reservation back: nothing was charged, the payer may present it again.
        case release
        /// The transfer is on chain: the authorization can never be accepted again.
        case markSettled(transaction: String)
    }

    /// What the step came to; counted in `/metrics` and named in the log line.
    public enum Outcome: String, Sendable, CaseIterable {
        /// Accepted for settlement (pending, or held for `after`'s report).
        case enqueued
        /// Due for settlement now (Nginx reported success, or the hold timeout says settle).
        case scheduled
        /// A transaction is on its way but not confirmed (settlement_pending): reconciled later.
        case pending
        case settled
        case released
        case retried
        case deadLettered = "dead_lettered"
    }

    public var job: SettlementJob
    public var write: Write
    public var ledger: LedgerChange
    public var outcome: Outcome
    /// Why (for logs): the settler's message, the upstream status, the timeout.
    public var reason: String?

    public init(job: SettlementJob, write: Write = .put, ledger: LedgerChange = .keep, outcome: Outcome,
                reason: String? = nil) {
        self.job = job
        self.write = write
        self.ledger = ledger
        self.outcome = outcome
        self.reason = reason
    }
}

/// The life of a settlement job as pure transitions. Stored states: `held` (an `after` job
/// waiting for Nginx's report), `pending` (queued; claimed while a worker's lease on it runs; sent
/// once `transaction` is set), and the terminal `settled`, `released` and `dead`.
public enum SettlementLifecycle {
    /// Intake: the job for a payment whose reservation this request just won.
    public static func queued(
        _ grant: Grant, route: RouteRequirements, policy: RouteSettlement, settings: SettlementSettings,
        resource: ResourceInfo, now: Int64
    ) -> SettlementTransition {
        var job = SettlementJob(
            grant: grant, route: route.name, mode: policy.mode, via: policy.via, resource: resource, now: now,
            holdSeconds: Int64(settings.reportTimeoutSeconds))
        if policy.mode == .before {
            // The request settles it inline; the worker only picks it up if this process dies.
            job.dueAt = job.createdAt + Int64(settings.beforeTimeoutSeconds) + 5
        }
        return SettlementTransition(job: job, outcome: .enqueued)
    }

    /// What a `before` request answers once its inline settlement is over.
    public enum InlineVerdict: Sendable, Equatable {
        /// Serve; `transaction` is the settled one (nil while it is only pending).
        case serve(transaction: String?)
        /// Nothing is known to be on chain: refuse, the reservation is given back.
        case unavailable(reason: String)
        /// The payment can never settle: ask for another one.
        case refuse(X402Reason, message: String)
    }

    /// A `before` request's own settlement attempt finished (or was cut off) with `outcome`.
    public static func settledInline(_ job: SettlementJob, _ outcome: SettleOutcome, now: Int64)
        -> (SettlementTransition, InlineVerdict)
    {
        var job = job
        switch outcome {
        case .settled(let transaction):
            return (settled(job, transaction), .serve(transaction: transaction))
        case .retry(let reason, let transaction):
            if let transaction = transaction ?? job.transaction {
                // settlement_pending: submitted, not yet confirmed. Serve; the worker reconciles it
                // from the hash. Answering 402 here would make the client pay twice.
                job.transaction = transaction
                job.dueAt = now + 2
                job.lastError = reason
                return (SettlementTransition(job: job, outcome: .pending, reason: reason), .serve(transaction: nil))
            }
            job.state = .released
            job.lastError = reason
            return (SettlementTransition(job: job, ledger: .release, outcome: .released, reason: reason),
                    .unavailable(reason: "settlement unavailable: \(reason)"))
        case .inDoubt(let reason):
            // The facilitator may have sent the transfer: refusing would charge the payer for nothing
            // and a fresh 402 would make it pay twice. Serve, and let the worker find out on chain
            // (it looks at `authorizationState` before it asks the facilitator again).
            job.dueAt = now + 2
            job.lastError = reason
            return (SettlementTransition(job: job, outcome: .pending, reason: reason), .serve(transaction: nil))
        case .failed(let reason, let message):
            job.state = .released
            job.lastError = message
            // A used authorization stays used: releasing it would only let it be presented again.
            let ledger: SettlementTransition.LedgerChange = reason == .nonceAlreadyUsed ? .keep : .release
            return (SettlementTransition(job: job, ledger: ledger, outcome: .released, reason: message),
                    .refuse(reason ?? .transactionFailed, message: message))
        }
    }

    /// Nginx reported the upstream status of an `after` request: below 400 settles, anything else
    /// gives the reservation back. nil when the job is no longer held (already decided).
    public static func reported(_ job: SettlementJob, upstreamStatus: Int, now: Int64) -> SettlementTransition? {
        guard job.state == .held else { return nil }
        var job = job
        job.upstreamStatus = upstreamStatus
        if upstreamStatus < 400 {
            job.state = .pending
            job.dueAt = now
            return SettlementTransition(job: job, write: .putIfHeld, outcome: .scheduled)
        }
        job.state = .released
        return SettlementTransition(job: job, write: .putIfHeld, ledger: .release, outcome: .released,
                                    reason: "upstream failed with \(upstreamStatus)")
    }

    /// No report arrived before `holdUntil`: the configured policy decides.
    public static func holdExpired(_ job: SettlementJob, settings: SettlementSettings, now: Int64) -> SettlementTransition {
        var job = job
        switch settings.holdTimeoutPolicy {
        case .settle:
            job.state = .pending
            job.dueAt = now
            job.lastError = "no upstream report within \(settings.reportTimeoutSeconds) s"
            return SettlementTransition(job: job, write: .putIfHeld, outcome: .scheduled, reason: job.lastError)
        case .release:
            job.state = .released
            return SettlementTransition(job: job, write: .putIfHeld, ledger: .release, outcome: .released,
                                        reason: "no upstream report in time")
        }
    }

    /// A worker's attempt (`job.attempts` already counts it) came to `outcome`.
    public static func attempted(_ job: SettlementJob, _ outcome: SettleOutcome, settings: SettlementSettings,
                                 now: Int64) -> SettlementTransition {
        var job = job
        switch outcome {
        case .settled(let transaction):
            return settled(job, transaction)
        case .retry(let reason, let transaction):
            if let transaction { job.transaction = transaction }
            job.lastError = reason
            if job.attempts >= settings.maxAttempts { return dead(job, reason) }
            let delayMillis = min(settings.retryBaseMilliseconds << min(job.attempts - 1, 16),
                                  settings.retryMaxSeconds * 1000)
            job.dueAt = now + Int64(max(delayMillis / 1000, 1))
            return SettlementTransition(job: job, outcome: .retried, reason: reason)
        case .inDoubt(let reason):
            // Like a retry; dead-lettering it keeps the reservation (the transfer may have landed).
            return attempted(job, .retry(reason: reason, transaction: nil), settings: settings, now: now)
        case .failed(let reason, let message):
            return dead(job, "\(reason?.rawValue ?? "failed"): \(message)")
        }
    }

    /// Given up: an operator must look at it (`x402-sidecar admin settlements`).
    public static func dead(_ job: SettlementJob, _ reason: String) -> SettlementTransition {
        var job = job
        job.state = .dead
        job.lastError = reason
        return SettlementTransition(job: job, outcome: .deadLettered, reason: reason)
    }

    static func settled(_ job: SettlementJob, _ transaction: String) -> SettlementTransition {
        var job = job
        job.state = .settled
        job.transaction = transaction
        job.lastError = nil
        return SettlementTransition(job: job, ledger: .markSettled(transaction: transaction), outcome: .settled)
    }
}
