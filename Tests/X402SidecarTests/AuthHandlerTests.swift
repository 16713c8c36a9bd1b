import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import X402
import X402TestSupport
@testable import X402Sidecar

/// The HTTP handler alone on a testing channel: request parts in, response parts out.
@Suite struct AuthHandlerTests {
    static func channel(maxHeaderBytes: Int = 32768) async throws -> NIOAsyncTestingChannel {
        let authorizer = Authorizer(routes: ["weather": try AuthServerTests.route()], verifier: PaymentVerifier(),
                                    ledger: MemoryNonceLedger())
        let core = SidecarCore(authorizer: authorizer, decisionLog: DecisionLog(enabled: false),
                               maxHeaderBytes: maxHeaderBytes)
        return await NIOAsyncTestingChannel(handler: AuthHandler(core: core))
    }

    static func send(_ channel: NIOAsyncTestingChannel, _ uri: String, headers: [(String, String)] = [],
                     version: HTTPVersion = .http1_1) async throws {
        var head = HTTPRequestHead(version: version, method: .GET, uri: uri)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        try await channel.writeInbound(HTTPServerRequestPart.head(head))
        try await channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    /// The next whole response: head, body text, and whether it ended.
    static func response(_ channel: NIOAsyncTestingChannel) async throws -> (HTTPResponseHead, String) {
        guard case .head(let head) = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) else {
            throw CancellationError()
        }
        var body = ""
        while true {
            switch try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) {
            case .body(.byteBuffer(let buffer)): body += String(buffer: buffer)
            case .end: return (head, body)
            default: throw CancellationError()
            }
        }
    }

    @Test func anUnpaidRequestIsAnsweredInPlaceWithTheChallenge() async throws {
        let channel = try await Self.channel()
        try await Self.send(channel, "/authorize", headers: AuthServerTests.forwarded)
        let (head, body) = try await Self.response(channel)
        #expect(head.status == .unauthorized)
        #expect(head.headers.first(name: "X-X402-Status") == "402")
        #expect(head.headers.first(name: "PAYMENT-REQUIRED") != nil)
        #expect(head.headers.first(name: "Content-Length") == String(body.utf8.count))
        #expect(body.contains("\"x402Version\":1"))
        #expect(head.headers.first(name: "Connection") == nil, "keep-alive by default on HTTP/1.1")
        _ = try await channel.finish()
    }

    @Test func endpointsFromTheTable() async throws {
        let channel = try await Self.channel()
        try await Self.send(channel, "/healthz")
        #expect(try await Self.response(channel).1 == #"{"status":"ok"}"#)
        try await Self.send(channel, "/readyz")
        #expect(try await Self.response(channel).1 == #"{"status":"ready"}"#)
        try await Self.send(channel, "/metrics")
        let (metricsHead, metrics) = try await Self.response(channel)
        #expect(metricsHead.headers.first(name: "Content-Type") == "text/plain; version=0.0.4")
        #expect(metrics.contains(#"x402_decisions_total{route="weather",outcome="paid"} 0"#))
        try await Self.send(channel, "/admin/ratelimit")
        #expect(try await Self.response(channel).0.status == .notFound, "admin paths only on the admin listener")
        try await Self.send(channel, "/nope")
        #expect(try await Self.response(channel).0.status == .notFound)
        _ = try await channel.finish()
    }

    @Test func oversizedHeadsGet431AndHTTP10Closes() async throws {
        let channel = try await Self.channel(maxHeaderBytes: 256)
        try await Self.send(channel, "/authorize", headers: [("X-Big", String(repeating: "a", count: 300))])
        #expect(try await Self.response(channel).0.status.code == 431)
        try await Self.send(channel, "/healthz", version: .http1_0)
        let (head, _) = try await Self.response(channel)
        #expect(head.headers.first(name: "Connection") == "close")
        _ = try? await channel.finish()
    }
}

/// The sidecar built from YAML the way `serve` builds it.
@Suite(.serialized) struct SidecarHarnessTests {
    @Test func builtFromYAMLItAnswersLikeServe() async throws {
        let sidecar = try await SidecarHarness.start(yaml: SidecarHarness.minimalYAML(payTo: AuthServerTests.payTo))
        let connection = try RawHTTPConnection(port: sidecar.port)
        let unpaid = try await connection.request("/authorize", headers: AuthServerTests.forwarded)
        #expect(unpaid.status == 401 && unpaid.header("X-X402-Status") == "402")
        let ready = try await connection.request("/readyz", headers: [])
        #expect(ready.status == 200)
        let metrics = try await connection.request("/metrics", headers: [])
        #expect(metrics.body.contains(#"x402_decisions_total{route="weather",outcome="payment_required"} 1"#))
        try await sidecar.stop()
    }
}
