/// A 402 challenge in both protocol versions at once: the v2 `PAYMENT-REQUIRED` header value and
/// the v1 JSON body. The official clients pick v2 when the header is present, v1 otherwise.
public struct Challenge: Sendable, Equatable {
    /// base64(JSON) for the `PAYMENT-REQUIRED` header.
    public var paymentRequiredHeader: String
    /// The v1 JSON body, ASCII-only so it can also travel in a header to Nginx.
    public var v1Body: String
}

extension RouteRequirements {
    /// Builds the challenge for one request. `resourceURL` is the URL the client asked for (built
    /// from `X-Forwarded-Proto`/`Host` and the original URI, not the sidecar's address).
    ///
    /// Unpaid requests are the most common request a paid API sees: everything but the URL and
    /// the error was encoded once, when the route was made (`ChallengeTemplate`).
    /// - Parameter extensions: the members of v2's `extensions` object (`"name":{…}` pairs,
    ///   e.g. a `sign-in-with-x` declaration with its fresh nonce); nil for none.
    public func challenge(resourceURL: String, error: String, extensions: [UInt8]? = nil) -> Challenge {
        let url = JSONWriter.quoted(resourceURL)
        let error = JSONWriter.quoted(error)
        var v2: [UInt8] = []
        v2.reserveCapacity(48 + url.count + error.count + template.v2Tail.count)
        v2.append(contentsOf: #"{"x402Version":2,"error":"#.utf8)
        v2.append(contentsOf: error)
        v2.append(contentsOf: #","resource":{"url":"#.utf8)
        v2.append(contentsOf: url)
        v2.append(contentsOf: template.v2Tail)
        if let extensions {
            // The template ends with an empty `"extensions":{}` and the closing brace.
            v2.removeLast(2)
            v2.append(contentsOf: extensions)
            v2.append(contentsOf: "}}".utf8)
        }

        var v1: [UInt8] = []
        v1.reserveCapacity(48 + error.count + template.v1Size + template.v1Heads.count * url.count)
        v1.append(contentsOf: #"{"x402Version":1,"error":"#.utf8)
        v1.append(contentsOf: error)
        v1.append(contentsOf: #","accepts":["#.utf8)
        for index in template.v1Heads.indices {
            if index > 0 { v1.append(UInt8(ascii: ",")) }
            v1.append(contentsOf: template.v1Heads[index])
            v1.append(contentsOf: url)
            v1.append(contentsOf: template.v1Tails[index])
        }
        v1.append(contentsOf: "]}".utf8)
        return Challenge(paymentRequiredHeader: Base64.encode(v2), v1Body: String(decoding: v1, as: UTF8.self))
    }

    /// The same challenge written field by field, with no template: the definition the template
    /// must reproduce byte for byte (tests compare the two).
    func challengeWrittenInFull(resourceURL: String, error: String) -> Challenge {
        let resource = ResourceInfo(url: resourceURL, description: description, mimeType: mimeType)

        var v2 = JSONWriter(capacity: 256 + 256 * options.count)
        v2.beginObject()
        v2.field("x402Version", 2)
        v2.field("error", error)
        v2.key("resource")
        resource.write(&v2)
        v2.key("accepts")
        v2.beginArray()
        for option in options { option.writeV2(&v2) }
        v2.endArray()
        v2.key("extensions")
        v2.beginObject()
        v2.endObject()
        v2.endObject()

        var v1 = JSONWriter(capacity: 256 + 384 * options.count)
        v1.beginObject()
        v1.field("x402Version", 1)
        v1.field("error", error)
        v1.key("accepts")
        v1.beginArray()
        for option in options {
            guard let v1Network = option.network.v1Name else { continue }
            option.writeV1(&v1, v1Network: v1Network, resource: resource)
        }
        v1.endArray()
        v1.endObject()

        return Challenge(paymentRequiredHeader: Base64.encode(v2.bytes), v1Body: v1.string)
    }
}

/// What a route's challenge has in common across requests, encoded once: everything after the
/// v2 `resource.url`, and each v1 requirement around its `resource` field.
struct ChallengeTemplate: Sendable, Equatable {
    /// `,"description":…,"mimeType":…},"accepts":[…],"extensions":{}}`
    var v2Tail: [UInt8]
    /// Per v1 requirement: up to `"resource":`, and from `,"description":` to its closing brace.
    var v1Heads: [[UInt8]]
    var v1Tails: [[UInt8]]
    var v1Size: Int

    init(description: String, mimeType: String, options: [PaymentOption]) {
        var resource = JSONWriter(capacity: 128)
        resource.beginObject()
        resource.field("description", description)
        resource.field("mimeType", mimeType)
        resource.endObject()
        var accepts = JSONWriter(capacity: 256 * options.count)
        accepts.beginArray()
        for option in options { option.writeV2(&accepts) }
        accepts.endArray()
        v2Tail = [UInt8(ascii: ",")] + resource.bytes.dropFirst() + Array(#","accepts":"#.utf8) + accepts.bytes
            + Array(#","extensions":{}}"#.utf8)

        v1Heads = []
        v1Tails = []
        for option in options {
            guard let v1Network = option.network.v1Name else { continue }
            let parts = option.v1Parts(v1Network: v1Network, description: description, mimeType: mimeType)
            v1Heads.append(parts.head)
            v1Tails.append(parts.tail)
        }
        v1Size = v1Heads.reduce(0) { $0 + $1.count + 1 } + v1Tails.reduce(0) { $0 + $1.count }
    }
}
