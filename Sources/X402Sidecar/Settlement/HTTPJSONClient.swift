import AsyncHTTPClient
import NIOCore
import NIOPosix
import NIOHTTP1
import X402
#if canImport(Glibc)
import Glibc
#endif

/// Why an HTTP call to a facilitator or a JSON-RPC node failed.
public struct OutboundError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Nothing was sent (connect refused, DNS, TLS): safe to retry anything.
        case notSent
        /// Sent, but no complete answer (timeout, connection reset): the effect is unknown.
        case noAnswer
        /// An answer that is not what the protocol says (status, JSON).
        case badAnswer
    }
    public var kind: Kind
    public var description: String
}

/// POSTs and GETs JSON with AsyncHTTPClient; the one file that talks to it.
public struct HTTPJSONClient: Sendable {
    public var timeout: TimeAmount
    /// Extra headers on every call (e.g. `Authorization: Bearer …`).
    public var headers: [(String, String)]
    /// Answers larger than this are refused.
    public var maxResponseBytes = 4 << 20
    /// Signs each request (CDP API-key JWTs are bound to the method and URL).
    public var cdp: CDPCredentials?

    public init(timeout: TimeAmount = .seconds(10), headers: [(String, String)] = [], cdp: CDPCredentials? = nil) {
        self.timeout = timeout
        self.headers = headers
        self.cdp = cdp
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]

        public func json() throws(OutboundError) -> JSONValue {
            do {
                return try JSONParser.parse(body, maxDepth: 64)
            } catch {
                throw OutboundError(kind: .badAnswer, description: "answer is not JSON (HTTP \(status))")
            }
        }
    }

    public func post(_ url: String, json body: String, headers extra: [(String, String)] = []) async throws(OutboundError)
        -> Response
    {
        try await execute(url, method: .POST, body: body, headers: extra)
    }

    public func get(_ url: String, headers extra: [(String, String)] = []) async throws(OutboundError) -> Response {
        try await execute(url, method: .GET, body: nil, headers: extra)
    }

    public func delete(_ url: String, headers extra: [(String, String)] = []) async throws(OutboundError) -> Response {
        try await execute(url, method: .DELETE, body: nil, headers: extra)
    }

    private func execute(_ url: String, method: HTTPMethod, body: String?, headers extra: [(String, String)])
        async throws(OutboundError) -> Response
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "x402-sidecar")
        for (name, value) in headers + extra { request.headers.add(name: name, value: value) }
        if let cdp {
            guard let token = cdp.token(method: method.rawValue, url: url) else {
                throw OutboundError(kind: .notSent, description: "\(url): cannot sign the CDP API-key JWT")
            }
            request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            let buffer = try await response.body.collect(upTo: maxResponseBytes)
            return Response(status: Int(response.status.code), body: Array(buffer.readableBytesView))
        } catch let error as HTTPClientError {
            switch error {
            case .connectTimeout, .invalidURL, .emptyHost, .emptyScheme:
                throw OutboundError(kind: .notSent, description: "\(url): \(error)")
            default:
                throw OutboundError(kind: .noAnswer, description: "\(url): \(error)")
            }
        } catch let error as NIOConnectionError {
            throw OutboundError(kind: .notSent, description: "\(url): cannot connect (\(error))")
        } catch let error as IOError where error.errnoCode == ECONNREFUSED {
            throw OutboundError(kind: .notSent, description: "\(url): connection refused")
        } catch {
            throw OutboundError(kind: .noAnswer, description: "\(url): \(error)")
        }
    }
}
