import NIOHTTP1
import X402

extension AuthorizeRequest {
    /// Reads the auth subrequest's headers (see the table on `AuthorizeRequest`) in one pass over
    /// them: the first value of each name wins, names compare ASCII case-insensitively, and a
    /// payment header seen twice marks the payment duplicated — as a lookup per name would, for
    /// a fraction of the cost (a dozen scans of every header per request otherwise).
    init(_ head: HTTPRequestHead, keyHeaders names: [String] = []) {
        var fields = Fields()
        for (name, value) in head.headers {
            fields.take(name, value)
            if !names.isEmpty { fields.takeKeyHeader(name, value, names: names) }
        }
        let host = fields.forwardedHost ?? fields.host ?? "localhost"
        let uri = fields.originalURI ?? head.uri
        self.init(
            route: fields.route,
            method: fields.originalMethod ?? head.method.rawValue,
            uri: uri.first == "/" ? uri : "/",
            scheme: fields.forwardedProto.map(Self.isHTTPS) == true ? "https" : "http",
            host: Self.isPlausibleHost(host) ? host : "localhost",
            clientAddress: fields.realIP,
            requestId: fields.requestId,
            payment: PresentedPayment(v2Header: fields.v2, v1Header: fields.v1, duplicated: fields.duplicated))
        forwardedFor = fields.forwardedFor
        viaNginx = fields.via == "nginx"
        keyHeaders = fields.keyHeaders
        signInProof = fields.signIn
        streamRecheck = fields.recheck == "stream"
        lease = PresentedLease.find(
            header: fields.lease, authorization: fields.authorization, uri: uri, headerDuplicated: fields.leaseDuplicated)
    }

    /// `X-Forwarded-Proto: https`, in any case.
    static func isHTTPS(_ proto: String) -> Bool { Fields.equalsLowercased(proto, "https" as StaticString) }

    /// The headers the request is read from, each the first of its name.
    private struct Fields {
        var v2: String?, v1: String?, duplicated = false
        var route: String?, originalMethod: String?, originalURI: String?
        var forwardedProto: String?, forwardedHost: String?, host: String?, forwardedFor: String?
        var realIP: String?, requestId: String?, via: String?
        var lease: String?, authorization: String?, signIn: String?, recheck: String?
        var leaseDuplicated = false
        var keyHeaders: [String: String] = [:]

        mutating func take(_ name: String, _ value: String) {
            switch name.utf8.count {
            case 4:
                if Self.equalsLowercased(name, "host") { Self.first(&host, value) }
            case 9:
                if Self.equalsLowercased(name, "x-payment") {
                    if v1 == nil { v1 = value } else { duplicated = true }
                } else if Self.equalsLowercased(name, "x-real-ip") { Self.first(&realIP, value) }
            case 10:
                if Self.equalsLowercased(name, "x-x402-via") { Self.first(&via, value) }
            case 12:
                if Self.equalsLowercased(name, "x-x402-route") { Self.first(&route, value) }
                else if Self.equalsLowercased(name, "x-request-id") { Self.first(&requestId, value) }
                else if Self.equalsLowercased(name, "x-x402-lease") {
                    if lease == nil { lease = value } else { leaseDuplicated = true }
                }
            case 13:
                if Self.equalsLowercased(name, "authorization") { Self.first(&authorization, value) }
            case 14:
                if Self.equalsLowercased(name, "x-x402-recheck") { Self.first(&recheck, value) }
                else if Self.equalsLowercased(name, "x-original-uri") { Self.first(&originalURI, value) }
                else if Self.equalsLowercased(name, "sign-in-with-x") { Self.first(&signIn, value) }
            case 15:
                if Self.equalsLowercased(name, "x-forwarded-for") { Self.first(&forwardedFor, value) }
            case 16:
                if Self.equalsLowercased(name, "x-forwarded-host") { Self.first(&forwardedHost, value) }
            case 17:
                if Self.equalsLowercased(name, "payment-signature") {
                    if v2 == nil { v2 = value } else { duplicated = true }
                } else if Self.equalsLowercased(name, "x-forwarded-proto") { Self.first(&forwardedProto, value) }
                else if Self.equalsLowercased(name, "x-original-method") { Self.first(&originalMethod, value) }
            default:
                break
            }
        }

        /// Headers named by rate-limit rules (`names` are lowercased).
        mutating func takeKeyHeader(_ name: String, _ value: String, names: [String]) {
            for key in names where keyHeaders[key] == nil && Self.equalsLowercased(name, key) {
                keyHeaders[key] = value
            }
        }

        private static func first(_ slot: inout String?, _ value: String) {
            if slot == nil { slot = value }
        }

        /// `name` equals the lowercase ASCII `lowercased`, ignoring ASCII case (as HTTP names compare).
        static func equalsLowercased(_ name: String, _ lowercased: StaticString) -> Bool {
            equals(name, UnsafeBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount))
        }

        static func equalsLowercased(_ name: String, _ lowercased: String) -> Bool {
            var lowercased = lowercased
            return lowercased.withUTF8 { equals(name, $0) }
        }

        private static func equals(_ name: String, _ expected: UnsafeBufferPointer<UInt8>) -> Bool {
            let utf8 = name.utf8
            guard utf8.count == expected.count else { return false }
            if let answer = utf8.withContiguousStorageIfAvailable({ bytes in
                for index in 0..<bytes.count where fold(bytes[index]) != expected[index] { return false }
                return true
            }) {
                return answer
            }
            return zip(utf8, expected).allSatisfy { fold($0) == $1 }
        }

        @inline(__always)
        private static func fold(_ byte: UInt8) -> UInt8 { byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte }
    }
}
