#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import Testing
import X402
@testable import X402Sidecar

/// Router-level tests: a real `AuthServer` on an ephemeral loopback port, driven with raw HTTP.
@Suite(.serialized) struct AuthServerTests {
    static let payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    static let payer = PaymentSigner(privateKeyHex: "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")!

    static func route() throws -> RouteRequirements {
        let known = KnownNetwork.find("base-sepolia")!
        let option = try PaymentOption(
            network: known.network, token: known.usdc, payTo: payTo, amount: "10000", maxTimeoutSeconds: 60)
        return RouteRequirements(name: "weather", description: "Weather", mimeType: "application/json", options: [option])
    }

    /// Starts a server, runs `body` with its port, stops it.
    static func withServer(
        ledger: any NonceLedger = MemoryNonceLedger(), maxHeaderBytes: Int = 32768, unixPath: String? = nil,
        _ body: (Int, RouteRequirements) async throws -> Void
    ) async throws {
        let route = try route()
        let authorizer = Authorizer(routes: ["weather": route], verifier: PaymentVerifier(), ledger: ledger)
        let core = SidecarCore(
            authorizer: authorizer, decisionLog: DecisionLog(enabled: false), maxHeaderBytes: maxHeaderBytes)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let address = ListenAddress.tcp(host: "127.0.0.1", port: 0)
        let addresses = [address] + (unixPath.map { [ListenAddress.unix(path: $0, mode: 0o660)] } ?? [])
        let server = AuthServer(core: core, addresses: addresses, group: group, logger: Logger(label: "test"))
        try await server.start()
        do {
            try await body(server.port(of: address)!, route)
        } catch {
            await server.stop()
            try await group.shutdownGracefully()
            throw error
        }
        await server.stop()
        try await group.shutdownGracefully()
    }

    static func paymentHeader(_ route: RouteRequirements, version: Int = 2, nonce: String = "n1") -> String {
        payer.header(
            paying: route.options[0],
            resource: ResourceInfo(url: "https://api.example.com/weather", description: "Weather", mimeType: "application/json"),
            version: version, now: UnixClock.seconds(), nonce: Keccak256.hash(Array(nonce.utf8)))
    }

    static let forwarded: [(String, String)] = [
        ("X-X402-Route", "weather"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "api.example.com"),
        ("X-Original-URI", "/weather?city=Paris"), ("X-Original-Method", "GET"), ("X-Request-ID", "req-1"),
    ]

    @Test func unpaidRequestGetsBothChallenges() async throws {
        try await Self.withServer { port, _ in
            let connection = try RawHTTPConnection(port: port)
            let response = try await connection.request(headers: Self.forwarded)
            #expect(response.status == 401)
            #expect(response.header("X-X402-Status") == "402")
            #expect(response.header("Cache-Control") == "no-store")
            #expect(response.header("X-X402-Reason") == nil)

            let requiredHeader = try #require(response.header("PAYMENT-REQUIRED"))
            let requiredBytes = try #require(Base64.decode(requiredHeader))
            let v2 = try JSONParser.parse(requiredBytes)
            #expect(v2["x402Version"] == .number("2"))
            #expect(v2["resource"]?["url"] == .string("https://api.example.com/weather?city=Paris"))
            guard case .array(let accepts) = v2["accepts"] else {
                Issue.record("accepts is not an array")
                return
            }
            #expect(accepts[0]["amount"] == .string("10000"))
            #expect(accepts[0]["network"] == .string("eip155:84532"))
            #expect(accepts[0]["extra"]?["name"] == .string("USDC"))

            let v1Header = try #require(response.header("X-X402-Challenge"))
            #expect(v1Header == response.body)
            let v1 = try JSONParser.parse(Array(v1Header.utf8))
            #expect(v1["x402Version"] == .number("1"))
            guard case .array(let v1Accepts) = v1["accepts"] else {
                Issue.record("v1 accepts is not an array")
                return
            }
            #expect(v1Accepts[0]["maxAmountRequired"] == .string("10000"))
            #expect(v1Accepts[0]["network"] == .string("base-sepolia"))
            #expect(v1Accepts[0]["resource"] == .string("https://api.example.com/weather?city=Paris"))
        }
    }

    @Test(arguments: [1, 2])
    func paidRequestIsAllowedOnceThenReplayIsRefused(version: Int) async throws {
        try await Self.withServer { port, route in
            let header = Self.paymentHeader(route, version: version, nonce: "replay-\(version)")
            let name = version == 2 ? "PAYMENT-SIGNATURE" : "X-PAYMENT"
            let connection = try RawHTTPConnection(port: port)
            let paid = try await connection.request(headers: Self.forwarded + [(name, header)])
            #expect(paid.status == 200)
            #expect(paid.header("X-X402-Payer") == Self.payer.address.lowercased())
            #expect(paid.header("X-X402-Amount") == "10000")
            #expect(paid.header("X-X402-Network") == "eip155:84532")
            #expect(paid.header("X-X402-Payment-Id")?.utf8.count == 32)
            #expect(paid.header("X-X402-Version") == String(version))

            let replay = try await connection.request(headers: Self.forwarded + [(name, header)])
            #expect(replay.status == 401)
            #expect(replay.header("X-X402-Status") == "402")
            #expect(replay.header("X-X402-Reason") == "invalid_exact_evm_nonce_already_used")
            #expect(replay.header("PAYMENT-REQUIRED") != nil)
        }
    }

    /// `memory` answers on the event loop; `embedded-fsync` may block, so it takes the task path.
    @Test(arguments: ["memory", "embedded-fsync"])
    func concurrentCopiesOfOnePaymentBuyOneRequest(ledgerKind: String) async throws {
        let ledger: any NonceLedger = ledgerKind == "memory"
            ? MemoryNonceLedger() : try EmbeddedNonceLedger(path: "/tmp/x402-router-\(UnixClock.monotonicNanoseconds()).journal", fsync: true)
        try await Self.withServer(ledger: ledger) { port, route in
            let header = Self.paymentHeader(route, nonce: "concurrent")
            // Blocking clients run on their own threads: as Tasks they would starve the small
            // cooperative pool the server's reservation step runs on.
            let statuses = await RawHTTPConnection.onThreads(count: 50) {
                let connection = try RawHTTPConnection(port: port)
                return try connection.requestSync(headers: Self.forwarded + [("PAYMENT-SIGNATURE", header)]).status
            }
            #expect(statuses.filter { $0 == 200 }.count == 1)
            #expect(statuses.filter { $0 == 401 }.count == 49)
        }
    }

    @Test func badInputGetsAPreciseReason() async throws {
        try await Self.withServer { port, route in
            let connection = try RawHTTPConnection(port: port)
            let cases: [([(String, String)], String)] = [
                ([("PAYMENT-SIGNATURE", "%%%not-base64%%%")], "invalid_payload"),
                ([("PAYMENT-SIGNATURE", Base64.encode("[1,2]"))], "invalid_payload"),
                ([("X-PAYMENT", Self.paymentHeader(route, version: 2, nonce: "v2-in-v1"))], "invalid_x402_version"),
                ([("PAYMENT-SIGNATURE", Self.paymentHeader(route, nonce: "dup-a")),
                  ("PAYMENT-SIGNATURE", Self.paymentHeader(route, nonce: "dup-b"))], "invalid_payload"),
                ([("PAYMENT-SIGNATURE", Self.paymentHeader(route, nonce: "both")),
                  ("X-PAYMENT", Self.paymentHeader(route, version: 1, nonce: "both"))], "invalid_payload"),
            ]
            for (headers, reason) in cases {
                let response = try await connection.request(headers: Self.forwarded + headers)
                #expect(response.status == 401)
                #expect(response.header("X-X402-Reason") == reason)
                #expect(response.header("PAYMENT-REQUIRED") != nil)
            }
        }
    }

    @Test func operatorErrorsAndProbes() async throws {
        try await Self.withServer { port, _ in
            let connection = try RawHTTPConnection(port: port)
            let unknown = try await connection.request(headers: [("X-X402-Route", "nope")])
            #expect(unknown.status == 403)
            #expect(unknown.header("X-X402-Status") == "500")
            let missing = try await connection.request(headers: [])
            #expect(missing.status == 403)
            #expect(missing.header("X-X402-Status") == "500")
            #expect(try await connection.request("/healthz", headers: []).status == 200)
            let ready = try await connection.request("/readyz", headers: [])
            #expect(ready.status == 200)
            #expect(ready.body == #"{"status":"ready"}"#)
            #expect(try await connection.request("/nope", headers: []).status == 404)
            // POST with a body on the same keep-alive connection: the body is ignored.
            try await connection.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            #expect(try await connection.receive().status == 200)
        }
    }

    @Test func unixSocketListenerServesTheSameDecisions() async throws {
        let path = "/tmp/x402-test-\(UnixClock.monotonicNanoseconds()).sock"
        try await Self.withServer(unixPath: path) { _, route in
            let connection = try RawHTTPConnection(unixPath: path)
            #expect(try await connection.request(headers: Self.forwarded).status == 401)
            let paid = try await connection.request(
                headers: Self.forwarded + [("PAYMENT-SIGNATURE", Self.paymentHeader(route, nonce: "unix"))])
            #expect(paid.status == 200)
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o660)
        }
    }

    @Test func oversizedHeadsAreRefused() async throws {
        try await Self.withServer(maxHeaderBytes: 2048) { port, _ in
            let connection = try RawHTTPConnection(port: port)
            let response = try await connection.request(headers: Self.forwarded + [("X-Padding", String(repeating: "a", count: 4096))])
            #expect(response.status == 431)
        }
    }

    @Test func http10WithoutKeepAliveIsClosed() async throws {
        try await Self.withServer { port, _ in
            let connection = try RawHTTPConnection(port: port)
            try await connection.send("GET /healthz HTTP/1.0\r\n\r\n")
            let response = try await connection.receive()
            #expect(response.status == 200)
            #expect(await connection.isClosedByPeer())
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await Self.withServer { port, route in
            let connection = try RawHTTPConnection(port: port)
            let paid = Self.paymentHeader(route, nonce: "pipelined")
            var text = ""
            for index in 0..<10 {
                let extra = index == 5 ? "PAYMENT-SIGNATURE: \(paid)\r\n" : ""
                text += "GET /authorize HTTP/1.1\r\nHost: x\r\nX-X402-Route: weather\r\nX-Request-ID: \(index)\r\n\(extra)\r\n"
            }
            try await connection.send(text)
            var statuses: [Int] = []
            for _ in 0..<10 { statuses.append(try await connection.receive().status) }
            #expect(statuses == [401, 401, 401, 401, 401, 200, 401, 401, 401, 401])
        }
    }
}
