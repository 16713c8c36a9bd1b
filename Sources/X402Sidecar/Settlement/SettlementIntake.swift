import Synchronization
import X402

/// The request-side I/O of settlement: a `before` request's inline attempt, and Nginx's report of
/// an `after` request's upstream status. Their decisions are `SettlementLifecycle` transitions.
extension Settlements {
    public enum ReportResult: Sendable, Equatable {
        case willSettle, released, unknown, alreadyDecided(SettlementJob.State)
    }

    /// Nginx reports the upstream status of a paid request (`after` mode).
    /// - Throws: when the queue cannot be read or written (the report should be retried).
    public func report(paymentId: String, upstreamStatus: Int) async throws -> ReportResult {
        guard let job = try await queue.job(paymentId) else { return .unknown }
        guard let transition = SettlementLifecycle.reported(job, upstreamStatus: upstreamStatus, now: now()) else {
            return .alreadyDecided(job.state)
        }
        switch await recorder.apply(transition) {
        case .applied:
            if transition.outcome == .scheduled {
                signal()
                return .willSettle
            }
            return .released
        case .lostRace:
            return .alreadyDecided((try await queue.job(paymentId))?.state ?? .held)
        case .writeFailed:
            throw SettlementIntakeError.queueUnavailable
        }
    }

    /// A `before` request's own attempt, bounded by `before_timeout_seconds`. A settlement cut off
    /// mid-way reports the transaction it recorded (if any) as still on its way — or, for a
    /// facilitator, that it is in doubt — so the request is served and reconciled instead of being
    /// answered with a fresh 402 (the client would pay twice) or refused while charged.
    /// - Returns: the outcome, and every transaction hash recorded on the way (oldest first).
    func settleInline(_ job: SettlementJob) async -> (SettleOutcome, [String]) {
        guard let settler = settler(for: job) else {
            return (.failed(reason: nil, message: "no settler for \(job.via.rawValue) on \(job.network)"), [])
        }
        let recorder = transactionRecorder(for: job)
        let record = recorder.record
        if let finished = await withTimeout(seconds: settings.beforeTimeoutSeconds, {
            await settler.settle(job, record: record)
        }) {
            // The settler's own word, including "nothing was sent" (retry without a transaction),
            // even if a transaction hash was recorded just before the send failed.
            return (finished, recorder.sent)
        }
        let recorded: String?
        do {
            recorded = try await queue.job(job.id)?.transaction
        } catch {
            metrics.settlementStoreFailures.increment()
            logger.error("cannot read back a cut-off settlement", metadata: ["payment_id": "\(job.id)", "error": "\(error)"])
            recorded = nil
        }
        let reason = "settlement took longer than \(settings.beforeTimeoutSeconds) s"
        if recorded == nil, job.via == .facilitator {
            // Cut off while `/settle` was (or may have been) on its way: the facilitator may still
            // send the transfer, so the job must not be released. The worker looks on chain first.
            return (.inDoubt(reason: reason), recorder.sent)
        }
        return (.retry(reason: reason, transaction: recorded), recorder.sent)
    }

    /// Persists each transaction hash before the settler sends it (a crash in between must never
    /// lead to a blind second submission), keeping every one of the attempt (a replacement does not
    /// erase the transaction it replaces: either may be mined).
    func transactionRecorder(for job: SettlementJob) -> TransactionRecorder {
        TransactionRecorder(job: job, queue: queue)
    }
}

/// One attempt's transaction hashes, each stored with the job before it is sent.
final class TransactionRecorder: Sendable {
    private let job: Mutex<SettlementJob>
    private let queue: any SettlementQueue

    init(job: SettlementJob, queue: any SettlementQueue) {
        self.job = Mutex(job)
        self.queue = queue
    }

    /// What a settler is handed as `record`.
    var record: @Sendable (String) async throws -> Void {
        { [self] transaction in
            let updated = job.withLock { job in
                job.transaction = transaction
                job.noteSent([transaction])
                return job
            }
            try await queue.put(updated).value
        }
    }

    /// The hashes recorded so far, oldest first.
    var sent: [String] { job.withLock { $0.sentTransactions } }
}

enum SettlementIntakeError: Error, CustomStringConvertible {
    case queueUnavailable
    case noFacilitator
    case noLeaseStore
    var description: String {
        switch self {
        case .queueUnavailable: "settlement queue unavailable"
        case .noFacilitator: "no facilitator configured"
        case .noLeaseStore: "no lease store configured"
        }
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
