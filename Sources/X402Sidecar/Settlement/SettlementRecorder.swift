import Logging
import X402

/// Applies settlement transitions: the queue write and the ledger change of one transition go
/// together, and every failure is logged with the payment id and counted — nothing is dropped
/// silently. Used by intake, inline `before` settlement, Nginx's reports and the worker alike.
public final class SettlementRecorder: Sendable {
    public enum Applied: Sendable, Equatable {
        case applied
        /// A `putIfHeld` found the job already decided: nothing was changed.
        case lostRace
        /// The queue did not take the write; for a conditional write nothing else was changed.
        case writeFailed
    }

    let queue: any SettlementQueue
    let ledger: any NonceLedger
    let metrics: SidecarMetrics
    let logger: Logger

    init(queue: any SettlementQueue, ledger: any NonceLedger, metrics: SidecarMetrics, logger: Logger) {
        self.queue = queue
        self.ledger = ledger
        self.metrics = metrics
        self.logger = logger
    }

    @discardableResult
    public func apply(_ transition: SettlementTransition) async -> Applied {
        let job = transition.job
        var applied = Applied.applied
        do {
            switch transition.write {
            case .put:
                try await queue.put(job).value
            case .putIfHeld:
                guard try await queue.putIfHeld(job) else { return .lostRace }
            }
        } catch {
            metrics.settlementStoreFailures.increment()
            logger.error("settlement queue did not record a job's new state", metadata: [
                "payment_id": "\(job.id)", "state": "\(job.state.rawValue)",
                "outcome": "\(transition.outcome.rawValue)", "error": "\(error)"])
            // A conditional write that failed decided nothing: leave the reservation as it is.
            if transition.write == .putIfHeld { return .writeFailed }
            applied = .writeFailed
        }
        await change(transition.ledger, job)
        metrics.count(transition.outcome)
        log(transition)
        return applied
    }

    /// The ledger side of a transition (not tied to a queue write: the flow's own rollback).
    func change(_ change: SettlementTransition.LedgerChange, _ job: SettlementJob) async {
        do {
            switch change {
            case .keep:
                return
            case .release:
                try await ledger.release(job.nonceKey, token: job.id)
            case .markSettled(let transaction):
                try await ledger.markSettled(job.nonceKey, token: job.id, transaction: transaction)
            }
        } catch {
            metrics.settlementStoreFailures.increment()
            logger.error("nonce ledger did not record a settlement change", metadata: [
                "payment_id": "\(job.id)", "change": "\(change)", "error": "\(error)"])
        }
    }

    private func log(_ transition: SettlementTransition) {
        let job = transition.job
        let reason = transition.reason ?? "-"
        switch transition.outcome {
        case .enqueued, .scheduled:
            return
        case .pending:
            logger.notice("settlement pending; the worker will reconcile it", metadata: [
                "payment_id": "\(job.id)", "transaction": "\(job.transaction ?? "-")", "reason": "\(reason)"])
        case .settled:
            logger.info("settled", metadata: [
                "payment_id": "\(job.id)", "route": "\(job.route)", "payer": "\(job.payer)", "amount": "\(job.amount)",
                "network": "\(job.network)", "transaction": "\(job.transaction ?? "-")", "mode": "\(job.mode.rawValue)",
                "attempts": "\(job.attempts)"])
        case .released:
            logger.warning("released: nothing charged", metadata: [
                "payment_id": "\(job.id)", "route": "\(job.route)", "reason": "\(reason)",
                "upstream_status": "\(job.upstreamStatus.map(String.init) ?? "-")"])
        case .retried:
            logger.warning("settlement will be retried", metadata: [
                "payment_id": "\(job.id)", "attempt": "\(job.attempts)", "reason": "\(reason)",
                "transaction": "\(job.transaction ?? "-")"])
        case .deadLettered:
            logger.error("settlement dead-lettered", metadata: [
                "payment_id": "\(job.id)", "route": "\(job.route)", "payer": "\(job.payer)", "amount": "\(job.amount)",
                "attempts": "\(job.attempts)", "reason": "\(reason)"])
        }
    }
}
