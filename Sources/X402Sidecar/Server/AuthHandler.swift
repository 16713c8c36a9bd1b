import NIOCore
import NIOHTTP1
import X402

/// Serves `/authorize`, `/healthz` and `/readyz` on one connection. Not `Sendable`: it lives on
/// its channel's event loop. Unpaid and invalid requests are answered without leaving the loop;
/// only the nonce reservation of a verified payment goes to the store.
final class AuthHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let core: SidecarCore
    private let admin: Bool
    private var head: HTTPRequestHead?
    private var started: UInt64 = 0

    init(core: SidecarCore, admin: Bool = false) {
        self.core = core
        self.admin = admin
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            started = UnixClock.monotonicNanoseconds()
        case .body:
            break  // Auth subrequests carry no body; anything sent is discarded.
        case .end:
            guard let requestHead = head else { return }
            head = nil
            core.inFlight.add(1, ordering: .relaxed)
            handle(requestHead, context: context)
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if headSize(head) > core.maxHeaderBytes {
            let response = DecisionResponse(status: .init(statusCode: 431), headers: [:], body: "")
            write(response, for: head, context: context)
            return
        }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let core = self.core
        switch Endpoint.find(path, admin: admin) {
        case .authorize:
            authorize(head, context: context)
        case .lease:
            authorize(head, context: context, leasePath: path)
        case .healthz:
            write(Self.json(.ok, #"{"status":"ok"}"#), for: head, context: context)
        case .report:
            let query = Self.query(head.uri)
            let paymentId = query["payment_id"] ?? head.headers.first(name: "X-X402-Payment-Id")
            let status = query["status"] ?? head.headers.first(name: "X-X402-Upstream-Status")
            answer(head, context: context) { await core.reports.respond(paymentId: paymentId, status: status) }
        case .readyz:
            answer(head, context: context) { await core.readiness.respond() }
        case .metrics:
            answer(head, context: context) { await core.metricsResponse() }
        case .admin:
            let query = Self.query(head.uri)
            let authorization = head.headers.first(name: "Authorization")
            answer(head, context: context) {
                await core.admin.respond(method: head.method, path: String(path), query: query, authorization: authorization)
            }
        case nil:
            write(Self.json(.notFound, #"{"error":"not found"}"#), for: head, context: context)
        }
    }

    /// Answers with what `body` returns, computed on a task.
    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext,
                        _ body: @escaping @Sendable () async -> DecisionResponse) {
        let promise = context.eventLoop.makePromise(of: DecisionResponse.self)
        promise.completeWithTask(body)
        promise.futureResult.assumeIsolated().whenSuccess { response in
            self.write(response, for: head, context: context)
        }
    }

    /// - Parameter leasePath: the path of a lease purchase (`/lease/NAME`): the client talks to us
    ///   through a plain `proxy_pass`, so it gets real statuses and the token in the body.
    private func authorize(_ head: HTTPRequestHead, context: ChannelHandlerContext, leasePath: Substring? = nil) {
        var request = core.keyHeaderNames.isEmpty ? AuthorizeRequest(head) : AuthorizeRequest(head, keyHeaders: core.keyHeaderNames)
        if let leasePath {
            request.direct = true
            request.viaNginx = false
            if request.route == nil { request.route = leasePath.split(separator: "/").last.map(String.init) }
        }
        switch core.authorizer.start(request) {
        case .decided(let decision):
            finish(decision, request: request, head: head, context: context)
        case .suspended(let flow, let work):
            let promise = context.eventLoop.makePromise(of: Decision.self)
            let authorizer = core.authorizer
            promise.completeWithTask { await authorizer.resume(flow, work) }
            promise.futureResult.assumeIsolated().whenSuccess { decision in
                self.finish(decision, request: request, head: head, context: context)
            }
        }
    }

    private func finish(_ decision: Decision, request: AuthorizeRequest, head: HTTPRequestHead,
                        context: ChannelHandlerContext) {
        let micros = (UnixClock.monotonicNanoseconds() &- started) / 1000
        let response = core.answer(decision, request: request, latencyMicros: micros)
        write(request.direct ? response.direct() : response, for: head, context: context)
    }

    private func write(_ response: DecisionResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive
        var headers = response.headers
        headers.add(name: "Content-Length", value: String(response.body.utf8.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(version: head.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if !response.body.isEmpty {
            let buffer = context.channel.allocator.buffer(string: response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        core.inFlight.subtract(1, ordering: .relaxed)
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func headSize(_ head: HTTPRequestHead) -> Int {
        var size = head.uri.utf8.count + 16
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
        return size
    }

    /// `a=b&c=d` after the `?`, percent-decoded.
    static func query(_ uri: String) -> [String: String] {
        guard let mark = uri.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]).removingPercentEncoding ?? String(parts[1]) }
        }
        return result
    }

    static func json(_ status: HTTPResponseStatus, _ body: String) -> DecisionResponse {
        DecisionResponse(status: status, headers: ["Content-Type": "application/json"], body: body)
    }
}

extension AuthorizeRequest {
    /// Reads the auth subrequest's headers (see the table on `AuthorizeRequest`).
    init(_ head: HTTPRequestHead) {
        let headers = head.headers
        let v2 = headers["PAYMENT-SIGNATURE"]
        let v1 = headers["X-PAYMENT"]
        let proto = headers.first(name: "X-Forwarded-Proto")?.lowercased()
        let host = headers.first(name: "X-Forwarded-Host") ?? headers.first(name: "Host") ?? "localhost"
        let uri = headers.first(name: "X-Original-URI") ?? head.uri
        self.init(
            route: headers.first(name: "X-X402-Route"),
            method: headers.first(name: "X-Original-Method") ?? head.method.rawValue,
            uri: uri.first == "/" ? uri : "/",
            scheme: proto == "https" ? "https" : "http",
            host: Self.isPlausibleHost(host) ? host : "localhost",
            clientAddress: headers.first(name: "X-Real-IP"),
            requestId: headers.first(name: "X-Request-ID"),
            payment: PresentedPayment(
                v2Header: v2.first, v1Header: v1.first, duplicated: v2.count > 1 || v1.count > 1))
        forwardedFor = headers.first(name: "X-Forwarded-For")
        viaNginx = headers.first(name: "X-X402-Via") == "nginx"
        signInProof = headers.first(name: "SIGN-IN-WITH-X")
        lease = PresentedLease.find(header: headers.first(name: "X-X402-Lease"),
                                    authorization: headers.first(name: "Authorization"), uri: uri)
    }

    init(_ head: HTTPRequestHead, keyHeaders names: [String]) {
        self.init(head)
        for name in names {
            if let value = head.headers.first(name: name) { keyHeaders[name] = value }
        }
    }

    /// Host names and `[v6]:port` only: the host ends up inside the challenge's resource URL.
    static func isPlausibleHost(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 255 else { return false }
        return host.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":"),
                UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "_"):
                return true
            default:
                return false
            }
        }
    }
}
