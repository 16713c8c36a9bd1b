import Logging
import ServiceLifecycle
import X402

/// Drains the durable queue: claims due jobs, settles them through their settler, and applies
/// each attempt's transition. Several sidecars sharing a Redis queue may each run one.
public final class SettlementWorker: Service, Sendable {
    let settlements: Settlements
    /// How many claimed jobs settle at once.
    let concurrency = 4

    public init(settlements: Settlements) {
        self.settlements = settlements
    }

    public func run() async throws {
        let settlements = self.settlements
        let logger = settlements.logger
        logger.info("settlement worker started", metadata: ["queue": "\(type(of: settlements.queue))"])
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let claimed: [SettlementJob]
                do {
                    claimed = try await settlements.queue.claim(
                        now: settlements.now(), limit: 16, lease: Int64(settlements.settings.leaseSeconds))
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
                        if running >= concurrency {
                            await group.next()
                            running -= 1
                        }
                        group.addTask { await self.process(job) }
                        running += 1
                    }
                }
            }
        } onGracefulShutdown: {
            settlements.signal()
        }
        logger.info("settlement worker stopped")
    }

    /// Sleeps until new work is signalled or the idle period passes.
    private func idle() async {
        let settlements = self.settlements
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await settlements.waitForSignal() }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(settlements.settings.workerIdleMilliseconds))
                settlements.signal()
            }
            await group.next()
            group.cancelAll()
            await group.waitForAll()
        }
    }

    func process(_ claimed: SettlementJob) async {
        let settlements = self.settlements
        var job = claimed
        if job.state == .held {
            // No report arrived in time.
            let transition = SettlementLifecycle.holdExpired(job, settings: settlements.settings, now: settlements.now())
            guard await settlements.recorder.apply(transition) == .applied, transition.job.state == .pending else {
                return
            }
            job = transition.job
        }
        guard job.state == .pending else { return }
        guard let settler = settlements.settler(for: job) else {
            await settlements.recorder.apply(
                SettlementLifecycle.dead(job, "no settler for \(job.via.rawValue) on \(job.network)"))
            return
        }
        job.attempts += 1
        let recorder = settlements.transactionRecorder(for: job)
        let outcome = await settler.settle(job, record: recorder.record)
        job.noteSent(recorder.sent)
        if job.transaction == nil {
            // The settler may have recorded a hash for this attempt before it sent it.
            do {
                job.transaction = try await settlements.queue.job(job.id)?.transaction
            } catch {
                settlements.logger.warning("cannot read back a settlement's recorded transaction", metadata: [
                    "payment_id": "\(job.id)", "error": "\(error)"])
            }
        }
        await settlements.recorder.apply(
            SettlementLifecycle.attempted(job, outcome, settings: settlements.settings, now: settlements.now()))
    }
}
