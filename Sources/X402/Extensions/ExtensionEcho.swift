/// The official SDK's echo rule for declared v2 extensions (`server_base.py` `validate_extensions`,
/// x402 2.25.0): a client that echoes an extension we declared must repeat every advertised `info`
/// field unchanged, except the extension's dynamic fields; it may add fields of its own. Objects
/// compare as subsets, lists and primitives exactly; an advertised `null` may be left out.
public enum ExtensionEcho {
    /// The SIWX fields regenerated per 402 (`dynamic_info_fields`).
    public static let signInWithXDynamicFields: Set<String> = ["nonce", "issuedAt", "expirationTime"]

    /// The reason code the SDK gives a mismatch.
    public static let mismatchReason = "extension_echo_mismatch"

    /// The first declared extension whose echo does not match, or nil when all do. Extensions the
    /// client sends that we did not declare are not judged here (the SDK lets them pass).
    /// - Parameters:
    ///   - declared: what our 402 put in `extensions` (key → `{info, …}`).
    ///   - echoed: the payment payload's `extensions`, if any.
    ///   - dynamicFields: per extension key, `info` fields that may differ.
    public static func firstMismatch(
        declared: [String: JSONValue], echoed: [String: JSONValue]?, dynamicFields: [String: Set<String>] = [:]
    ) -> String? {
        guard let echoed else { return nil }
        for key in echoed.keys.sorted() {
            guard let advertised = declared[key] else { continue }
            if !matches(advertised: advertised, echoed: echoed[key]!, dynamicFields: dynamicFields[key] ?? []) {
                return key
            }
        }
        return nil
    }

    /// Whether one echoed extension value repeats the advertised one's `info`.
    public static func matches(advertised: JSONValue, echoed: JSONValue, dynamicFields: Set<String> = []) -> Bool {
        containsSubset(omit(info(of: advertised), dynamicFields), omit(info(of: echoed), dynamicFields))
    }

    static func info(of value: JSONValue) -> JSONValue { value["info"] ?? value }

    static func omit(_ value: JSONValue, _ fields: Set<String>) -> JSONValue {
        guard case .object(let members) = value, !fields.isEmpty else { return value }
        return .object(members.filter { !fields.contains($0.key) })
    }

    static func containsSubset(_ expected: JSONValue, _ actual: JSONValue) -> Bool {
        guard case .object(let wanted) = expected else { return expected == actual }
        guard case .object(let present) = actual else { return false }
        for (key, value) in wanted {
            guard let other = present[key] else {
                if value == .null { continue }
                return false
            }
            if !containsSubset(value, other) { return false }
        }
        return true
    }
}
