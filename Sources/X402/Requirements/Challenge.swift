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
    public func challenge(resourceURL: String, error: String) -> Challenge {
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
