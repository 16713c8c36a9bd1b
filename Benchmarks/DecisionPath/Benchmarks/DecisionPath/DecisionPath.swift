import Benchmark
import X402
import X402Sidecar

/// The sidecar's decision path without sockets: the flow as the HTTP handler runs it (`start`,
/// in-process stores answering in place), the answer it becomes, and a settlement job's journal
/// encoding. `make bench-swift`; compare two builds with the plugin's baseline commands.
let route: RouteRequirements = {
    let known = KnownNetwork.find("base-sepolia")!
    let option = try! PaymentOption(network: known.network, token: known.usdc,
                                    payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", amount: "10000",
                                    maxTimeoutSeconds: 3000)
    return RouteRequirements(name: "bench", description: "bench", mimeType: "application/json", options: [option])
}()

let signer = PaymentSigner(privateKeyHex: "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")!
let resource = ResourceInfo(url: "http://bench.local/paid", description: "bench", mimeType: "application/json")

func request(_ header: String? = nil) -> AuthorizeRequest {
    var request = AuthorizeRequest(route: "bench", uri: "/paid", host: "bench.local", clientAddress: "127.0.0.1",
                                   requestId: "0123456789abcdef", payment: PresentedPayment(v2Header: header))
    request.viaNginx = true
    return request
}

func header(_ number: Int, now: Int64) -> String {
    signer.header(paying: route.options[0], resource: resource, now: now,
                  nonce: Keccak256.hash(Array("bench-\(now)-\(number)".utf8)))
}

/// The answer of a decision the in-process stores made in place, as the handler writes it.
func decisionResponse(_ progress: Authorizer.Progress) -> DecisionResponse {
    guard case .decided(let decision) = progress else { fatalError("an in-process decision suspended") }
    return DecisionResponse(decision, challengeBody: false)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .instructions, .mallocCountTotal], maxDuration: .seconds(2))

    Benchmark("unpaid → challenge (flow + answer)") { benchmark in
        let authorizer = Authorizer(routes: ["bench": route], verifier: PaymentVerifier(), ledger: MemoryNonceLedger())
        let unpaid = request()
        for _ in benchmark.scaledIterations {
            blackHole(decisionResponse(authorizer.start(unpaid)))
        }
    }

    Benchmark("replayed payment → refused (flow + answer)") { benchmark in
        let ledger = MemoryNonceLedger()
        let authorizer = Authorizer(routes: ["bench": route], verifier: PaymentVerifier(), ledger: ledger)
        let replay = request(header(0, now: UnixClock.seconds()))
        _ = authorizer.start(replay)
        for _ in benchmark.scaledIterations {
            blackHole(decisionResponse(authorizer.start(replay)))
        }
    }

    Benchmark("fresh payment → reserved and queued (flow + answer)",
              configuration: .init(maxDuration: .seconds(3), maxIterations: 20_000)) { benchmark in
        let now = UnixClock.seconds()
        let headers = (0..<benchmark.scaledIterations.count).map { header($0, now: now) }
        let ledger = MemoryNonceLedger()
        var settings = SettlementSettings()
        settings.queue = .memory
        let settlements = Settlements(
            settings: settings, queue: try! EmbeddedSettlementQueue(path: nil), ledger: ledger, routes: [:],
            facilitator: nil, relayers: [:], logger: .init(label: "bench"))
        let authorizer = Authorizer(routes: ["bench": route], verifier: PaymentVerifier(), ledger: ledger,
                                    settlements: settlements)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(decisionResponse(authorizer.start(request(headers[index]))))
        }
    }

    Benchmark("settlement job → journal line") { benchmark in
        let now = UnixClock.seconds()
        guard case .success(let payment) = PaymentVerifier().verify(
            PresentedPayment(v2Header: header(1, now: now)), route: route, now: now)
        else { fatalError("the benchmark's payment does not verify") }
        let grant = Grant(payment: payment, paymentId: PaymentId.make())
        var settings = SettlementSettings()
        settings.via = .relayer
        let job = SettlementLifecycle.queued(grant, route: route, policy: RouteSettlement(mode: .deferred, via: .relayer),
                                             settings: settings, resource: resource, now: now).job
        for _ in benchmark.scaledIterations {
            blackHole(job.encoded())
        }
    }
}
