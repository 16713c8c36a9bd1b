#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A deliberately dumb HTTP/1.1 client over a blocking TCP socket: requests are written as raw
/// bytes and responses parsed by hand, so tests see exactly what Nginx would see.
/// `@unchecked Sendable`: each connection is used by one test at a time; the async methods only move
/// the blocking calls onto a thread of their own, away from the cooperative pool the server needs.
final class RawHTTPConnection: @unchecked Sendable {
    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        func headerCount(_ name: String) -> Int {
            headers.filter { $0.0.lowercased() == name.lowercased() }.count
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to a unix socket instead of TCP.
    convenience init(unixPath: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(unixPath.utf8.prefix(raw.count - 1)) + [0])
        }
        try self.init(family: AF_UNIX, address: address, name: unixPath)
    }

    convenience init(port: Int) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        try self.init(family: AF_INET, address: address, name: "127.0.0.1:\(port)")
    }

    private init<Address>(family: Int32, address: Address, name: String) throws {
        fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = address
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure(description: "connect to \(name) failed: errno \(errno)")
        }
    }

    deinit { close(fd) }

    func sendSync(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            guard written > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += written
        }
    }

    /// Reads one response (Content-Length framed).
    func receiveSync() throws -> Response {
        while true {
            if let response = try parse() { return response }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw Failure(description: "connection closed before a full response") }
            buffer += chunk[0..<count]
        }
    }

    /// `true` when the server has closed the connection (reads EOF).
    func isClosedByPeerSync() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    func requestSync(_ path: String = "/authorize", method: String = "GET", headers: [(String, String)]) throws -> Response {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: sidecar\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        try sendSync(text)
        return try receiveSync()
    }

    private func parse() throws -> Response? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = buffer.indices.dropLast(3).first(where: { Array(buffer[$0..<$0 + 4]) == separator }) else {
            return nil
        }
        let headText = String(decoding: buffer[0..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure(description: "bad status line") }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            headers.append((String(line[..<colon]), String(value)))
        }
        let length = Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        guard buffer.count >= end + 4 + length else { return nil }
        let body = String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        buffer.removeFirst(end + 4 + length)
        return Response(status: status, headers: headers, body: body)
    }
}

extension RawHTTPConnection {
    /// Runs `body` on `count` threads at once and collects the results (-1 for a thrown error).
    static func onThreads(count: Int, _ body: @escaping @Sendable () throws -> Int) async -> [Int] {
        await withCheckedContinuation { continuation in
            let results = NSLock()
            nonisolated(unsafe) var collected: [Int] = []
            let group = DispatchGroup()
            for _ in 0..<count {
                group.enter()
                Thread.detachNewThread {
                    let value = (try? body()) ?? -1
                    results.lock()
                    collected.append(value)
                    results.unlock()
                    group.leave()
                }
            }
            group.notify(queue: .global()) { continuation.resume(returning: collected) }
        }
    }
}

extension RawHTTPConnection {
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    func send(_ text: String) async throws { try await Self.blocking { try self.sendSync(text) } }

    func receive() async throws -> Response { try await Self.blocking { try self.receiveSync() } }

    func isClosedByPeer() async -> Bool { (try? await Self.blocking { self.isClosedByPeerSync() }) ?? false }

    func request(_ path: String = "/authorize", method: String = "GET", headers: [(String, String)]) async throws
        -> Response
    {
        try await Self.blocking { try self.requestSync(path, method: method, headers: headers) }
    }
}
