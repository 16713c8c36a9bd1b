import Yams

/// `facilitator:` — the x402 facilitator that verifies and settles for us (or second-opinions).
public struct FacilitatorSettings: Sendable {
    public var url: String
    public var timeoutMilliseconds = 10_000
    public var retries = 2
    public var bearerToken: String?
    /// Coinbase CDP API key (`cdp_api_key_id` / `cdp_api_key_secret`, or `CDP_API_KEY_ID` /
    /// `CDP_API_KEY_SECRET`), already parsed: it signs a JWT per request.
    public var cdp: CDPCredentials?

    public init(url: String) { self.url = url }
}

extension FacilitatorSettings {
    static let keys = ["url", "timeout_ms", "retries", "bearer_token", "cdp_api_key_id", "cdp_api_key_secret"]

    static func parse(_ node: Node?, _ r: inout ConfigReader) -> FacilitatorSettings? {
        guard let s = r.section(node, "facilitator", allowed: keys) else { return nil }
        guard let url = r.string(s["url"], "facilitator.url") else {
            if s["url"] == nil { r.problem("facilitator.url", "is required", node) }
            return nil
        }
        if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            r.problem("facilitator.url", "must be an http:// or https:// URL, not \"\(url)\"", s["url"])
        }
        var settings = FacilitatorSettings(url: url)
        if let value = r.int(s["timeout_ms"], "facilitator.timeout_ms", range: 100...120_000) {
            settings.timeoutMilliseconds = value
        }
        if let value = r.int(s["retries"], "facilitator.retries", range: 0...10) { settings.retries = value }
        settings.bearerToken = nonEmpty(r.string(s["bearer_token"], "facilitator.bearer_token"))
        let keyId = nonEmpty(
            r.string(s["cdp_api_key_id"], "facilitator.cdp_api_key_id") ?? r.environment["CDP_API_KEY_ID"])
        let keySecret = nonEmpty(
            r.string(s["cdp_api_key_secret"], "facilitator.cdp_api_key_secret") ?? r.environment["CDP_API_KEY_SECRET"])
        switch (keyId, keySecret) {
        case (nil, nil):
            break
        case (let id?, let secret?):
            settings.cdp = CDPCredentials(keyId: id, secret: secret)
            if settings.cdp == nil {
                r.problem("facilitator.cdp_api_key_secret",
                          "is neither an EC P-256 PEM key nor a base64 Ed25519 key (64 bytes) that can sign",
                          s["cdp_api_key_secret"] ?? node)
            }
            if settings.bearerToken != nil {
                r.problem("facilitator", "give either bearer_token or a CDP API key, not both", node)
            }
        default:
            r.problem("facilitator", "a CDP API key needs both cdp_api_key_id and cdp_api_key_secret "
                      + "(or CDP_API_KEY_ID and CDP_API_KEY_SECRET)", node)
        }
        return settings
    }

    private static func nonEmpty(_ text: String?) -> String? {
        text?.isEmpty == true ? nil : text
    }
}
