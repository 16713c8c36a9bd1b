import Foundation
import Testing
import X402

@testable import X402Sidecar

/// Exposure control: the pure table, the flow's steps, the embedded ledger across a restart and
/// the configuration rules. (Redis: RedisExposureTests; through nginx on the devnet: test_exposure.py.)
@Suite struct ExposureTests {
    static let now = AuthorizationFlowTests.now

    @Test func tableHoldsUpToTheLimitAndSettlementAndReleaseLowerIt() {
        var table = ExposureTable()
        let hold = ExposureHold(amount: 10_000, limit: 25_000)
        #expect(table.hold("p", nonce: "a", hold, until: Self.now + 60, now: Self.now) == .held)
        #expect(table.hold("p", nonce: "b", hold, until: Self.now + 60, now: Self.now) == .held)
        #expect(table.hold("p", nonce: "c", hold, until: Self.now + 60, now: Self.now) == .overLimit(pending: 20_000))
        #expect(table.hold("p", nonce: "a", hold, until: Self.now + 60, now: Self.now) == .held)  // same nonce: no-op
        #expect(table.pending("p", now: Self.now) == 20_000)
        #expect(table.hold("q", nonce: "c", hold, until: Self.now + 60, now: Self.now) == .held)  // other payer
        table.release("p", nonce: "b")
        #expect(table.pending("p", now: Self.now) == 10_000)
        // Settled: still counted for the hold, then gone; unsettled: counted until the reservation expires.
        table.settle("p", nonce: "a", until: Self.now + 15)
        #expect(table.pending("p", now: Self.now + 14) == 10_000)
        #expect(table.pending("p", now: Self.now + 15) == 0)
        #expect(table.pending("q", now: Self.now + 59) == 10_000)
        #expect(table.pending("q", now: Self.now + 60) == 0)
        // Without a limit it always holds (before routes count against the others).
        #expect(table.hold("p", nonce: "d", ExposureHold(amount: .max, limit: nil), until: Self.now + 60, now: Self.now)
            == .held)
        #expect(table.hold("p", nonce: "e", ExposureHold(amount: 1, limit: .max), until: Self.now + 60, now: Self.now)
            == .overLimit(pending: .max))
    }

    @Test func amountsParseAndBalancesCap() {
        #expect(ExposureHold.amount("10000") == 10_000)
        #expect(ExposureHold.amount("") == nil)
        #expect(ExposureHold.amount("1e5") == nil)
        #expect(ExposureHold.amount(String(repeating: "9", count: 40)) == nil)
        var word = [UInt8](repeating: 0, count: 32)
        word[31] = 0x10
        word[30] = 0x27
        #expect(ExposureHold.amount(word: word) == 0x2710)
        word[0] = 1
        #expect(ExposureHold.amount(word: word) == .max)
    }

    static func policy(cap: UInt128? = nil, mode: SettlementMode = .deferred) -> AuthorizationPolicy {
        var settings = SettlementSettings()
        settings.mode = mode
        let caip2 = AuthorizationFlowTests.route.options[0].network.caip2
        return AuthorizationPolicy(
            routes: ["weather": AuthorizationFlowTests.route], verifier: PaymentVerifier(), settlement: settings,
            routeSettlement: ["weather": RouteSettlement(mode: mode, via: .facilitator)],
            exposure: ExposurePolicy(checked: mode == .before ? [:] : [
                "weather": ExposureRoute(maxPending: cap.map { [caip2: $0] } ?? [:])
            ]),
            now: { now }, makePaymentId: { "pid-1" })
    }

    @Test func aCheckedRouteReadsTheBalanceAndHoldsAgainstIt() throws {
        var flow = AuthorizationFlow(AuthorizationFlowTests.request(paid: true), policy: Self.policy(cap: 15_000))
        guard case .fetchBalance(let query) = flow.start() else {
            Issue.record("no balance read")
            return
        }
        #expect(query.payer == AuthServerTests.payer.address.lowercased())
        guard case .reserveHeld(_, "pid-1", _, let hold) = flow.receive(.balanceFetched(.success(1_000_000))) else {
            Issue.record("no held reservation")
            return
        }
        let price = try #require(ExposureHold.amount(AuthorizationFlowTests.route.options[0].amount))
        #expect(hold == ExposureHold(amount: price, limit: 15_000))  // the cap is lower than the balance
        guard case .enqueue = flow.receive(.reservedHeld(.success(.reserved))) else {
            Issue.record("a held reservation did not go to the queue")
            return
        }
    }

    @Test func overTheBalanceIsRefusedAndNoBalanceFailsClosed() {
        var over = AuthorizationFlow(AuthorizationFlowTests.request(paid: true), policy: Self.policy())
        _ = over.start()
        _ = over.receive(.balanceFetched(.success(5)))
        #expect(AuthorizationFlowTests.reason(over.receive(.reservedHeld(.success(.overLimit(pending: 0)))))
            == .insufficientBalance)
        var used = AuthorizationFlow(AuthorizationFlowTests.request(paid: true), policy: Self.policy())
        _ = used.start()
        _ = used.receive(.balanceFetched(.success(5)))
        #expect(AuthorizationFlowTests.reason(used.receive(.reservedHeld(.success(.alreadyUsed)))) == .nonceAlreadyUsed)
        var down = AuthorizationFlow(AuthorizationFlowTests.request(paid: true), policy: Self.policy())
        _ = down.start()
        #expect(AuthorizationFlowTests.decision(down.receive(.balanceFetched(.failure(AuthorizationFlowTests.Failure()))))
            == .unavailable(reason: "payer balance unavailable", retryAfter: 5))
    }

    @Test func aRouteThatSettlesFirstHoldsWithoutAReadOrALimit() {
        var flow = AuthorizationFlow(AuthorizationFlowTests.request(paid: true), policy: Self.policy(mode: .before))
        guard case .reserveHeld(_, _, _, let hold) = flow.start() else {
            Issue.record("no held reservation")
            return
        }
        #expect(hold.limit == nil)
    }

    @Test func theEmbeddedLedgerKeepsPendingHoldsAcrossARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("x402-exposure-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("nonces.journal").path
        let clock = UnixClock.seconds()
        func key(_ nonce: String) -> NonceKey {
            NonceKey(network: "eip155:84532", asset: "0x" + String(repeating: "a", count: 40),
                     payer: "0x" + String(repeating: "b", count: 40), nonce: "0x" + String(repeating: nonce, count: 64))
        }
        do {
            let ledger = try EmbeddedNonceLedger(path: path, exposureSettledHoldSeconds: 15)
            let hold = ExposureHold(amount: 10_000, limit: 30_000)
            for nonce in ["1", "2", "3"] {
                #expect(try await ledger.reserve(key(nonce), token: "t\(nonce)", expiresAt: clock + 600, holding: hold).value
                    == .reserved)
            }
            #expect(try await ledger.reserve(key("4"), token: "t4", expiresAt: clock + 600, holding: hold).value
                == .overLimit(pending: 30_000))
            #expect(try await ledger.reserve(key("1"), token: "t9", expiresAt: clock + 600, holding: hold).value
                == .alreadyUsed)
            try await ledger.release(key("2"), token: "t2")
            try await ledger.markSettled(key("3"), token: "t3", transaction: "0xabc")
            #expect(try await ledger.pendingExposure(key("1")) == 20_000)
        }
        // After a restart the unsettled hold is back (the settled one's balance is read afresh).
        let reopened = try EmbeddedNonceLedger(path: path)
        #expect(try await reopened.pendingExposure(key("1")) == 10_000)
        #expect(try await reopened.reserve(key("5"), token: "t5", expiresAt: clock + 600,
                                           holding: ExposureHold(amount: 10_000, limit: 15_000)).value
            == .overLimit(pending: 10_000))
    }

    static func load(_ routes: String, rpc: Bool = true) -> Result<SidecarConfiguration, ConfigurationProblems> {
        ConfigurationLoader.load(
            yaml: """
                defaults: {pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", network: base-sepolia}
                stores: {ledger: embedded, embedded: {journal: "/tmp/x402-exposure-config/nonces.journal"}}
                settlement: {mode: deferred, via: facilitator}
                facilitator: {url: "http://127.0.0.1:9/"}
                \(rpc ? "rpc_urls: {base-sepolia: \"http://127.0.0.1:8545\"}" : "")
                routes:
                \(routes)
                """, environment: [:])
    }

    @Test func checkConfigRequiresABalanceSourceOrUnchecked() throws {
        let deferred = "  weather: {description: w, price: \"0.01\", max_pending_per_payer: \"0.05\"}"
        let configuration = try Self.load(deferred).get()
        #expect(configuration.exposure?.checked["weather"]?.maxPending == ["eip155:84532": 50_000])
        guard case .failure(let problems) = Self.load(deferred, rpc: false) else {
            Issue.record("a deferred route without rpc_urls was accepted")
            return
        }
        #expect(problems.problems.contains {
            $0.path == "routes.weather.exposure" && $0.message.contains("exposure: unchecked")
        })
        let unchecked = "  weather: {description: w, price: \"0.01\", exposure: unchecked}"
        #expect(try Self.load(unchecked, rpc: false).get().exposure == nil)
        let before = "  weather: {description: w, price: \"0.01\", settlement: before}"
        #expect(try Self.load(before, rpc: false).get().exposure == nil)
    }
}
