extension LeaseClaims {
    /// Reads claims from a token's JSON payload, strictly: every required claim present with its
    /// type and syntax (addresses, hex ids, canonical integers and amounts, a CAIP-2 network, a
    /// normalized host), `nbf < exp`, and `iss` = `x402-nginx` (else `.wrongIssuer`). Unknown
    /// claims are ignored, as JWT requires; duplicates are refused by the parser. Does not look at
    /// the clock or the request.
    public static func decode(json bytes: [UInt8]) -> Result<LeaseClaims, LeaseFailure> {
        func bad(_ why: String) -> Result<LeaseClaims, LeaseFailure> { .failure(LeaseFailure(.malformed, why)) }
        guard case .object(let claims)? = try? JSONParser.parse(bytes, maxDepth: 4) else {
            return bad("the claims are not a JSON object")
        }
        func string(_ name: String) -> String? {
            guard let value = claims[name]?.stringValue, !value.isEmpty, value.utf8.count <= LeaseLimits.maxStringBytes,
                value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F })
            else { return nil }
            return value
        }
        guard let issuer = claims["iss"]?.stringValue else { return bad("iss is missing or not a string") }
        guard issuer == Self.issuer else {
            return .failure(LeaseFailure(.wrongIssuer, "iss is not \(Self.issuer)"))
        }
        guard let payer = string("sub"), isLowercaseHex(payer, prefixed: true, digits: 40) else {
            return bad("sub is not a lowercase 0x address")
        }
        guard let host = string("aud"), normalizedHost(host) == host else {
            return bad("aud is not a lowercase host without port")
        }
        guard let jti = string("jti"), isLowercaseHex(jti, prefixed: false, digits: 32) else {
            return bad("jti is not 32 lowercase hex digits")
        }
        guard let issuedAt = numericDate(claims["iat"]), let notBefore = numericDate(claims["nbf"]),
            let expiresAt = numericDate(claims["exp"])
        else { return bad("iat, nbf and exp must be non-negative integers") }
        guard notBefore < expiresAt else { return bad("nbf is not before exp") }
        guard case .array(let routeValues)? = claims["x402_routes"], !routeValues.isEmpty,
            routeValues.count <= LeaseLimits.maxRoutes
        else { return bad("x402_routes is not a non-empty array of at most \(LeaseLimits.maxRoutes)") }
        var routes: [String] = []
        routes.reserveCapacity(routeValues.count)
        for value in routeValues {
            guard let route = value.stringValue, !route.isEmpty, route.utf8.count <= LeaseLimits.maxStringBytes else {
                return bad("x402_routes holds something other than route names")
            }
            routes.append(route)
        }
        guard let leaseRoute = string("x402_lease") else { return bad("x402_lease is missing") }
        guard let amount = string("x402_amount"), Amount.isCanonical(amount) else {
            return bad("x402_amount is not a canonical decimal string")
        }
        guard let asset = string("x402_asset") else { return bad("x402_asset is missing") }
        guard let network = string("x402_network"), isCAIP2(network) else {
            return bad("x402_network is not a CAIP-2 chain id")
        }
        guard let paymentID = string("x402_payment_id") else { return bad("x402_payment_id is missing") }
        var transaction: String?
        if let value = claims["x402_tx"] {
            guard value.stringValue != nil, let tx = string("x402_tx") else { return bad("x402_tx is not a string") }
            transaction = tx
        }
        var limits: [Int?] = []
        for name in ["x402_max_requests", "x402_max_concurrent"] {
            guard let value = claims[name] else {
                limits.append(nil)
                continue
            }
            guard let limit = numericDate(value), limit >= 1, limit <= Int64(Int32.max) else {
                return bad("\(name) is not a positive integer")
            }
            limits.append(Int(limit))
        }
        return .success(
            LeaseClaims(
                payer: payer, host: host, routes: routes, jti: jti, issuedAt: issuedAt, notBefore: notBefore,
                expiresAt: expiresAt, leaseRoute: leaseRoute, amount: amount, asset: asset, network: network,
                paymentID: paymentID, transaction: transaction, maxRequests: limits[0], maxConcurrent: limits[1]))
    }

    /// A JSON integer 0...2^53 written without sign, fraction or exponent.
    static func numericDate(_ value: JSONValue?) -> Int64? {
        guard case .number(let text)? = value, !text.isEmpty, text.utf8.count <= 16,
            text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = Int64(text), number <= 1 << 53
        else { return nil }
        return number
    }

    static func isLowercaseHex(_ text: String, prefixed: Bool, digits: Int) -> Bool {
        var utf8 = Substring(text).utf8[...]
        if prefixed {
            guard utf8.starts(with: "0x".utf8) else { return false }
            utf8 = utf8.dropFirst(2)
        }
        return utf8.count == digits
            && utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    }

    /// `namespace:reference` per CAIP-2: `[-a-z0-9]{3,8}` and `[-_a-zA-Z0-9]{1,32}`.
    static func isCAIP2(_ text: String) -> Bool {
        let parts = text.utf8.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard parts.count == 2, (3...8).contains(parts[0].count), (1...32).contains(parts[1].count) else {
            return false
        }
        let namespaceOK = parts[0].allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
                || $0 == UInt8(ascii: "-")
        }
        let referenceOK = parts[1].allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
                || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 == UInt8(ascii: "-")
                || $0 == UInt8(ascii: "_")
        }
        return namespaceOK && referenceOK
    }
}
