import Logging
import ServiceLifecycle
import Synchronization
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

/// Counters for `/metrics` and logs.
public final class SettlementCounters: Sendable {
    public let settled = Atomic<Int>(0)
    public let released = Atomic<Int>(0)
    public let retried = Atomic<Int>(0)
    public let deadLettered = Atomic<Int>(0)
    public let enqueued = Atomic<Int>(0)
    public init() {}
}

/// Takes granted payments to the chain according to each route's mode, and runs the worker that
/// drains the durable queue.
public final class Settlements: Service, Sendable {
    public let settings: SettlementSettings
    public let queue: any SettlementQueue
    public let ledger: any NonceLedger
    public let routes: [String: RouteSettlement]
    public let counters = SettlementCounters()
    let facilitator: FacilitatorClient?
    let relayers: [UInt64: Relayer]
    let logger: Logger
    let now: @Sendable () -> Int64
    private let wake = Mutex<CheckedContinuation<Void, Never>?>(nil)

    public init(settings: SettlementSettings, queue: any SettlementQueue, ledger: any NonceLedger,
                routes: [String: RouteSettlement], facilitator: FacilitatorClient?, relayers: [UInt64: Relayer],
                logger: Logger, now: @escaping @Sendable () -> Int64 = { UnixClock.seconds() }) {
        self.settings = settings
        self.queue = queue
        self.ledger = ledger
        self.routes = routes
        self.facilitator = facilitator
        self.relayers = relayers
        self.logger = logger
        self.now = now
    }

    func policy(_ route: String) -> RouteSettlement {
        routes[route] ?? RouteSettlement(mode: settings.mode, via: settings.via)
    }

    func settler(for job: SettlementJob) -> (any Settler)? {
        switch job.via {
        case .facilitator: return facilitator
        case .relayer: return relayers[job.chainId]
        }
    }

    // MARK: Accepting a granted payment

    /// Whether `route`'s payments can be queued without suspending (then `acceptImmediately`).
    func acceptsImmediately(_ route: String) -> Bool {
        let policy = policy(route)
        return policy.mode != .before && policy.verify == .local && queue is any SynchronousSettlementQueue
    }

    /// For `verify: facilitator | both`: the facilitator's verdict on a locally checked payment,
    /// as a refusal (nil when it accepts). Unreachable → fail closed.
    func facilitatorVerdict(_ payment: VerifiedPayment, route: RouteRequirements, request: AuthorizeRequest) async
        -> Decision?
    {
        guard policy(route.name).verify != .local else { return nil }
        guard let facilitator else { return .unavailable(reason: "no facilitator configured for verification", retryAfter: 5) }
        let resource = ResourceInfo(url: request.resourceURL, description: route.description, mimeType: route.mimeType)
        let (payload, requirements) = SettlementJob.facilitatorParts(payment, resource: resource)
        do {
            let verdict = try await facilitator.verify(
                SettlementJob.facilitatorRequest(version: payment.version, payload: payload, requirements: requirements))
            if verdict.isValid { return nil }
            let code = verdict.invalidReason ?? "invalid_payload"
            let failure = PaymentFailure(Self.reason(code), "facilitator: \(code)", payer: payment.payer)
            return .paymentRequired(route.challenge(resourceURL: request.resourceURL, error: failure.reason.rawValue),
                                    failure: failure)
        } catch {
            logger.warning("facilitator /verify failed; failing closed", metadata: ["error": "\(error)"])
            return .unavailable(reason: "facilitator unavailable", retryAfter: 5)
        }
    }

    /// A facilitator's reason code as ours (its own when we share it).
    static func reason(_ code: String) -> X402Reason {
        if let known = X402Reason(rawValue: code) { return known }
        if code.contains("signature") { return .invalidSignature }
        if code.contains("balance") { return .insufficientBalance }
        if code.contains("simulation") { return .simulationFailed }
        return .invalidPayload
    }

    func makeJob(_ grant: Grant, route: RouteRequirements, request: AuthorizeRequest) -> SettlementJob {
        let policy = policy(route.name)
        var job = SettlementJob(
            grant: grant, route: route.name, mode: policy.mode, via: policy.via,
            resource: ResourceInfo(url: request.resourceURL, description: route.description, mimeType: route.mimeType),
            now: now(), holdSeconds: Int64(settings.reportTimeoutSeconds))
        if policy.mode == .before {
            // The request settles it inline; the worker only picks it up if this process dies.
            job.dueAt = job.createdAt + Int64(settings.beforeTimeoutSeconds) + 5
        }
        return job
    }

    /// `after` and `deferred` on an in-process queue: the job is on disk when this returns.
    func acceptImmediately(_ grant: Grant, route: RouteRequirements, request: AuthorizeRequest) -> Decision? {
        guard let queue = queue as? any SynchronousSettlementQueue, policy(route.name).mode != .before else { return nil }
        do {
            try queue.putImmediately(makeJob(grant, route: route, request: request))
            counters.enqueued.add(1, ordering: .relaxed)
            signal()
            return .allow(grant)
        } catch {
            logger.error("settlement queue refused a job; failing closed", metadata: ["error": "\(error)"])
            let ledger = self.ledger
            Task { _ = try? await ledger.release(grant.payment.nonceKey, token: grant.paymentId) }
            return .unavailable(reason: "settlement queue unavailable", retryAfter: 5)
        }
    }

    /// Queues (and for `before`, settles) a payment whose reservation this request won.
    func accept(_ grant: Grant, route: RouteRequirements, request: AuthorizeRequest) async -> Decision {
        var job = makeJob(grant, route: route, request: request)
        do {
            try await queue.put(job)
            counters.enqueued.add(1, ordering: .relaxed)
        } catch {
            logger.error("settlement queue refused a job; failing closed", metadata: ["error": "\(error)"])
            _ = try? await ledger.release(grant.payment.nonceKey, token: grant.paymentId)
            return .unavailable(reason: "settlement queue unavailable", retryAfter: 5)
        }
        guard job.mode == .before else {
            signal()
            return .allow(grant)
        }
        guard let settler = settler(for: job) else {
            return await finishBefore(&job, grant: grant, route: route, request: request, .failed(reason: nil, message: "no settler for \(job.via.rawValue) on \(job.network)"))
        }
        job.attempts = 1
        let attempt = job
        let outcome: SettleOutcome
        if let finished = await withTimeout(seconds: settings.beforeTimeoutSeconds, {
            await settler.settle(attempt, record: self.recorder(for: attempt))
        }) {
            // The settler's own word, including "nothing was sent" (retry without a transaction),
            // even if a transaction hash was recorded just before the send failed.
            outcome = finished
        } else {
            // Cut off mid-settlement: a recorded transaction may be on its way, so it is treated as
            // settlement_pending (served and reconciled), never answered with a fresh 402.
            let recorded = (try? await queue.job(job.id))?.transaction
            outcome = .retry(reason: "settlement took longer than \(settings.beforeTimeoutSeconds) s", transaction: recorded)
        }
        return await finishBefore(&job, grant: grant, route: route, request: request, outcome)
    }

    private func finishBefore(
        _ job: inout SettlementJob, grant: Grant, route: RouteRequirements, request: AuthorizeRequest,
        _ outcome: SettleOutcome
    ) async -> Decision {
        let payment = grant.payment
        switch outcome {
        case .settled(let transaction):
            await complete(&job, transaction: transaction)
            var settledGrant = grant
            settledGrant.transaction = transaction
            return .allow(settledGrant)
        case .retry(let reason, let transaction):
            if let transaction = transaction ?? job.transaction {
                // settlement_pending: submitted, not yet confirmed. Serve; the worker reconciles it
                // from the hash. Answering 402 here would make the client pay twice.
                job.transaction = transaction
                job.dueAt = now() + 2
                job.lastError = reason
                try? await queue.put(job)
                logger.notice("settlement pending; the worker will reconcile it", metadata: [
                    "payment_id": "\(job.id)", "transaction": "\(transaction)", "reason": "\(reason)"])
                return .allow(grant)
            }
            // Nothing known to be on chain: refuse the request and free the authorization.
            job.state = .released
            job.lastError = reason
            try? await queue.put(job)
            _ = try? await ledger.release(job.nonceKey, token: job.id)
            counters.released.add(1, ordering: .relaxed)
            logger.warning("settlement unavailable; request refused, authorization released", metadata: [
                "payment_id": "\(job.id)", "reason": "\(reason)"])
            return .unavailable(reason: "settlement unavailable: \(reason)", retryAfter: 5)
        case .failed(let reason, let message):
            job.state = .released
            job.lastError = message
            try? await queue.put(job)
            if reason != .nonceAlreadyUsed { _ = try? await ledger.release(job.nonceKey, token: job.id) }
            counters.released.add(1, ordering: .relaxed)
            logger.warning("settlement refused; request refused", metadata: [
                "payment_id": "\(job.id)", "reason": "\(reason?.rawValue ?? "-")", "message": "\(message)"])
            let failure = PaymentFailure(reason ?? .transactionFailed, message, payer: payment.payer)
            return .paymentRequired(
                route.challenge(resourceURL: request.resourceURL, error: failure.reason.rawValue), failure: failure)
        }
    }

    private func recorder(for job: SettlementJob) -> @Sendable (String) async throws -> Void {
        let queue = self.queue
        return { transaction in
            var updated = job
            updated.transaction = transaction
            try await queue.put(updated)
        }
    }

    private func complete(_ job: inout SettlementJob, transaction: String) async {
        job.state = .settled
        job.transaction = transaction
        job.lastError = nil
        do {
            try await queue.put(job)
        } catch {
            logger.error("settled, but the queue did not record it (it will be reconciled)", metadata: [
                "payment_id": "\(job.id)", "transaction": "\(transaction)", "error": "\(error)"])
        }
        _ = try? await ledger.markSettled(job.nonceKey, token: job.id, transaction: transaction)
        counters.settled.add(1, ordering: .relaxed)
        logger.info("settled", metadata: [
            "payment_id": "\(job.id)", "route": "\(job.route)", "payer": "\(job.payer)", "amount": "\(job.amount)",
            "network": "\(job.network)", "transaction": "\(transaction)", "mode": "\(job.mode.rawValue)",
            "attempts": "\(job.attempts)"])
    }

    // MARK: Nginx's report for `after`

    public enum ReportResult: Sendable, Equatable {
        case willSettle, released, unknown, alreadyDecided(SettlementJob.State)
    }

    /// Nginx reports the upstream status of a paid request (`after` mode): below 400 settles,
    /// anything else gives the reservation back.
    public func report(paymentId: String, upstreamStatus: Int) async throws -> ReportResult {
        guard var job = try await queue.job(paymentId) else { return .unknown }
        guard job.state == .held else { return .alreadyDecided(job.state) }
        job.upstreamStatus = upstreamStatus
        if upstreamStatus < 400 {
            job.state = .pending
            job.dueAt = now()
            guard try await queue.putIfHeld(job) else { return .alreadyDecided((try await queue.job(paymentId))?.state ?? .held) }
            signal()
            return .willSettle
        }
        job.state = .released
        guard try await queue.putIfHeld(job) else { return .alreadyDecided((try await queue.job(paymentId))?.state ?? .held) }
        _ = try? await ledger.release(job.nonceKey, token: job.id)
        counters.released.add(1, ordering: .relaxed)
        logger.info("released: upstream failed", metadata: [
            "payment_id": "\(job.id)", "route": "\(job.route)", "upstream_status": "\(upstreamStatus)"])
        return .released
    }

    // MARK: The worker

    public func run() async throws {
        logger.info("settlement worker started", metadata: ["queue": "\(type(of: queue))"])
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let claimed: [SettlementJob]
                do {
                    claimed = try await queue.claim(now: now(), limit: 16, lease: Int64(settings.leaseSeconds))
                } catch {
                    logger.warning("settlement queue unavailable", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
                if claimed.isEmpty {
                    await idle()
                    continue
                }
                await withTaskGroup(of: Void.self) { group in
                    var running = 0
                    for job in claimed {
                        if running >= 4 {
                            await group.next()
                            running -= 1
                        }
                        group.addTask { await self.process(job) }
                        running += 1
                    }
                }
            }
        } onGracefulShutdown: {
            self.signal()
        }
        logger.info("settlement worker stopped")
    }

    /// Sleeps until new work is signalled or the idle period passes.
    private func idle() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let previous = self.wake.withLock { slot -> CheckedContinuation<Void, Never>? in
                        let old = slot
                        slot = continuation
                        return old
                    }
                    previous?.resume()
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(self.settings.workerIdleMilliseconds))
                self.signal()
            }
            await group.next()
            group.cancelAll()
            await group.waitForAll()
        }
    }

    func signal() {
        wake.withLock { slot in
            slot?.resume()
            slot = nil
        }
    }

    func process(_ claimed: SettlementJob) async {
        var job = claimed
        if job.state == .held {
            // No report arrived in time.
            switch settings.holdTimeoutPolicy {
            case .settle:
                job.state = .pending
                job.dueAt = now()
                job.lastError = "no upstream report within \(settings.reportTimeoutSeconds) s"
                guard (try? await queue.putIfHeld(job)) == true else { return }
            case .release:
                job.state = .released
                guard (try? await queue.putIfHeld(job)) == true else { return }
                _ = try? await ledger.release(job.nonceKey, token: job.id)
                counters.released.add(1, ordering: .relaxed)
                logger.warning("released: no upstream report in time", metadata: ["payment_id": "\(job.id)"])
                return
            }
        }
        guard job.state == .pending else { return }
        guard let settler = settler(for: job) else {
            await deadLetter(&job, "no settler for \(job.via.rawValue) on \(job.network)")
            return
        }
        job.attempts += 1
        let outcome = await settler.settle(job, record: recorder(for: job))
        if let stored = try? await queue.job(job.id), job.transaction == nil { job.transaction = stored.transaction }
        switch outcome {
        case .settled(let transaction):
            await complete(&job, transaction: transaction)
        case .retry(let reason, let transaction):
            if let transaction { job.transaction = transaction }
            job.lastError = reason
            if job.attempts >= settings.maxAttempts {
                await deadLetter(&job, reason)
                return
            }
            let delayMillis = min(settings.retryBaseMilliseconds << min(job.attempts - 1, 16), settings.retryMaxSeconds * 1000)
            job.dueAt = now() + Int64(max(delayMillis / 1000, 1))
            counters.retried.add(1, ordering: .relaxed)
            logger.warning("settlement will be retried", metadata: [
                "payment_id": "\(job.id)", "attempt": "\(job.attempts)", "reason": "\(reason)",
                "transaction": "\(job.transaction ?? "-")"])
            do { try await queue.put(job) } catch {
                logger.error("cannot reschedule settlement", metadata: ["payment_id": "\(job.id)", "error": "\(error)"])
            }
        case .failed(let reason, let message):
            await deadLetter(&job, "\(reason?.rawValue ?? "failed"): \(message)")
        }
    }

    private func deadLetter(_ job: inout SettlementJob, _ reason: String) async {
        job.state = .dead
        job.lastError = reason
        counters.deadLettered.add(1, ordering: .relaxed)
        logger.error("settlement dead-lettered", metadata: [
            "payment_id": "\(job.id)", "route": "\(job.route)", "payer": "\(job.payer)", "amount": "\(job.amount)",
            "attempts": "\(job.attempts)", "reason": "\(reason)"])
        try? await queue.put(job)
    }
}

/// Runs `body`, giving up after `seconds` (the body is cancelled).
func withTimeout<T: Sendable>(seconds: Int, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
