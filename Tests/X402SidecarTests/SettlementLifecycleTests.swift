import Testing
import X402
@testable import X402Sidecar

/// Every transition of a settlement job, without a queue or a chain.
@Suite struct SettlementLifecycleTests {
    static let now: Int64 = 1_800_000_000

    static func job(_ mode: SettlementMode) -> SettlementJob { AuthorizationFlowTests.enqueued(mode).1.job }

    static var settings: SettlementSettings {
        var settings = SettlementSettings()
        settings.maxAttempts = 3
        settings.retryBaseMilliseconds = 1000
        settings.retryMaxSeconds = 300
        return settings
    }

    @Test func reportsSettleBelow400AndReleaseOtherwise() throws {
        let held = Self.job(.after)
        let settle = try #require(SettlementLifecycle.reported(held, upstreamStatus: 204, now: Self.now + 1))
        #expect(settle.job.state == .pending && settle.job.dueAt == Self.now + 1 && settle.write == .putIfHeld)
        #expect(settle.outcome == .scheduled && settle.ledger == .keep && settle.job.upstreamStatus == 204)
        let release = try #require(SettlementLifecycle.reported(held, upstreamStatus: 502, now: Self.now + 1))
        #expect(release.job.state == .released && release.ledger == .release && release.write == .putIfHeld)
        // A job no longer held is already decided: a late or repeated report changes nothing.
        #expect(SettlementLifecycle.reported(settle.job, upstreamStatus: 500, now: Self.now + 2) == nil)
    }

    @Test func holdTimeoutFollowsItsPolicy() {
        let held = Self.job(.after)
        var settings = Self.settings
        settings.holdTimeoutPolicy = .settle
        let settle = SettlementLifecycle.holdExpired(held, settings: settings, now: Self.now + 40)
        #expect(settle.job.state == .pending && settle.ledger == .keep && settle.write == .putIfHeld)
        settings.holdTimeoutPolicy = .release
        let release = SettlementLifecycle.holdExpired(held, settings: settings, now: Self.now + 40)
        #expect(release.job.state == .released && release.ledger == .release && release.outcome == .released)
    }

    @Test func attemptsSettleRetryWithBackoffAndDeadLetter() {
        var job = Self.job(.deferred)
        job.attempts = 1
        let settled = SettlementLifecycle.attempted(job, .settled(transaction: "0x1"), settings: Self.settings, now: Self.now)
        #expect(settled.job.state == .settled && settled.ledger == .markSettled(transaction: "0x1"))
        #expect(settled.job.transaction == "0x1" && settled.job.lastError == nil && settled.outcome == .settled)

        let retry = SettlementLifecycle.attempted(job, .retry(reason: "rpc down", transaction: "0x2"),
                                                  settings: Self.settings, now: Self.now)
        #expect(retry.job.state == .pending && retry.outcome == .retried && retry.job.transaction == "0x2")
        #expect(retry.job.dueAt == Self.now + 1 && retry.ledger == .keep)
        job.attempts = 2
        let later = SettlementLifecycle.attempted(job, .retry(reason: "rpc down", transaction: nil),
                                                  settings: Self.settings, now: Self.now)
        #expect(later.job.dueAt == Self.now + 2)
        job.attempts = 3
        let exhausted = SettlementLifecycle.attempted(job, .retry(reason: "rpc down", transaction: nil),
                                                      settings: Self.settings, now: Self.now)
        #expect(exhausted.job.state == .dead && exhausted.outcome == .deadLettered && exhausted.ledger == .keep)

        let failed = SettlementLifecycle.attempted(job, .failed(reason: .validBefore, message: "authorization is expired"),
                                                   settings: Self.settings, now: Self.now)
        #expect(failed.job.state == .dead && failed.job.lastError == "invalid_exact_evm_payload_authorization_valid_before: authorization is expired")
    }

    @Test func inlineOutcomes() {
        let job = Self.job(.before)
        let (settled, serve) = SettlementLifecycle.settledInline(job, .settled(transaction: "0x3"), now: Self.now)
        #expect(serve == .serve(transaction: "0x3") && settled.job.state == .settled)
        var recorded = job
        recorded.transaction = "0x4"
        let (pending, pendingVerdict) = SettlementLifecycle.settledInline(
            recorded, .retry(reason: "cut off", transaction: nil), now: Self.now)
        #expect(pendingVerdict == .serve(transaction: nil) && pending.job.transaction == "0x4")
        #expect(pending.job.state == .pending && pending.job.dueAt == Self.now + 2 && pending.outcome == .pending)
        let (released, refused) = SettlementLifecycle.settledInline(job, .retry(reason: "down", transaction: nil), now: Self.now)
        #expect(refused == .unavailable(reason: "settlement unavailable: down") && released.ledger == .release)
        let (failed, asked) = SettlementLifecycle.settledInline(job, .failed(reason: nil, message: "no settler"), now: Self.now)
        #expect(asked == .refuse(.transactionFailed, message: "no settler") && failed.job.state == .released)
    }

    /// A `/settle` that left without an answer may still transfer: served and kept, never released,
    /// in the request and in the worker alike (dead-lettering it keeps the reservation too).
    @Test func inDoubtIsServedAndKeptNeverReleased() {
        let job = Self.job(.before)
        let (kept, verdict) = SettlementLifecycle.settledInline(job, .inDoubt(reason: "no answer"), now: Self.now)
        #expect(verdict == .serve(transaction: nil) && kept.ledger == .keep && kept.outcome == .pending)
        #expect(kept.job.state == .pending && kept.job.dueAt == Self.now + 2 && kept.job.lastError == "no answer")
        var worked = kept.job
        worked.attempts = 2
        let retried = SettlementLifecycle.attempted(worked, .inDoubt(reason: "no answer"), settings: Self.settings,
                                                    now: Self.now)
        #expect(retried.job.state == .pending && retried.outcome == .retried && retried.ledger == .keep)
        worked.attempts = 3
        let dead = SettlementLifecycle.attempted(worked, .inDoubt(reason: "no answer"), settings: Self.settings,
                                                 now: Self.now)
        #expect(dead.job.state == .dead && dead.ledger == .keep)
    }

    @Test func deadLetterKeepsTheReservation() {
        let dead = SettlementLifecycle.dead(Self.job(.deferred), "no settler for relayer on eip155:84532")
        #expect(dead.job.state == .dead && dead.ledger == .keep && dead.write == .put)
        #expect(dead.job.lastError == "no settler for relayer on eip155:84532")
    }
}
