/// A payment that passed every local check. It still has to win its nonce reservation.
public struct VerifiedPayment: Sendable, Equatable {
    public var version: Int
    /// The server-side option it pays for.
    public var option: PaymentOption
    /// `authorization.from`, lowercase.
    public var payer: String
    public var authorization: Authorization
    public var signature: String
    public var nonceKey: NonceKey
    public var validBefore: Int64
    public var payload: PaymentPayload
}

/// Local verification of the `exact` scheme on EVM (EIP-3009), pure and deterministic: the same
/// checks, in the same order, as the official facilitator, plus the ones it leaves to servers.
public struct PaymentVerifier: Sendable {
    /// `validBefore` must leave at least this many seconds to settle (the facilitator's 6 s).
    public var validBeforeMargin: Int64
    /// How far past `now + maxTimeoutSeconds` a `validBefore` may lie (client clock skew). Bounds
    /// how long the nonce ledger must remember an authorization.
    public var clockSkewAllowance: Int64
    /// `false` leaves the signature to a facilitator (routes with `verify: facilitator`, e.g. for
    /// smart-contract wallets whose EIP-1271 / ERC-6492 signatures ecrecover cannot check).
    public var checksSignature = true

    public init(validBeforeMargin: Int64 = 6, clockSkewAllowance: Int64 = 600) {
        self.validBeforeMargin = validBeforeMargin
        self.clockSkewAllowance = clockSkewAllowance
    }

    /// Verifies the payment headers of one request against what the server advertises for `route`.
    /// - Parameter now: unix seconds.
    /// - Parameter alreadyUsed: what the caller already knows of the authorization's nonce key
    ///   without I/O (an in-process ledger). A key known to be reserved or settled is refused
    ///   before the signature is recovered, so replaying a captured header costs a lookup, not an
    ///   elliptic-curve recovery. It only ever refuses: acceptance still needs the reservation.
    public func verify(_ presented: PresentedPayment, route: RouteRequirements, now: Int64,
                       alreadyUsed: (NonceKey) -> Bool = { _ in false })
        -> Result<VerifiedPayment, PaymentFailure>
    {
        switch Self.decode(presented) {
        case .failure(let failure): return .failure(failure)
        case .success(let payload): return verify(payload, route: route, now: now, alreadyUsed: alreadyUsed)
        }
    }

    /// The first step of `verify`: the one payment header, decoded. A pure function of the
    /// headers, so a caller may keep its answer for a header it sees again (a replay).
    public static func decode(_ presented: PresentedPayment) -> Result<PaymentPayload, PaymentFailure> {
        if presented.duplicated || (presented.v2Header != nil && presented.v1Header != nil) {
            return .failure(PaymentFailure(.invalidPayload, "exactly one payment header is allowed per request"))
        }
        if let header = presented.v2Header { return PaymentPayload.decode(header: header, expectedVersion: 2) }
        if let header = presented.v1Header { return PaymentPayload.decode(header: header, expectedVersion: 1) }
        return .failure(PaymentFailure(.invalidPayload, "no payment header"))
    }

    public func verify(_ payload: PaymentPayload, route: RouteRequirements, now: Int64,
                       alreadyUsed: (NonceKey) -> Bool = { _ in false })
        -> Result<VerifiedPayment, PaymentFailure>
    {
        guard payload.scheme == "exact" else {
            return .failure(PaymentFailure(.unsupportedScheme, "only the exact scheme is accepted"))
        }
        let matched = payload.version == 2 ? route.option(v2Network: payload.network) : route.option(v1Network: payload.network)
        guard let option = matched else {
            return .failure(PaymentFailure(.networkMismatch, "this route does not accept payments on that network"))
        }
        if let accepted = payload.accepted {
            // The echo must name what we advertise. We never verify against it, but a client that
            // thinks it is paying something else is refused rather than charged.
            guard let asset = accepted["asset"]?.stringValue, let payTo = accepted["payTo"]?.stringValue,
                let amount = accepted["amount"]?.stringValue
            else {
                return .failure(PaymentFailure(.invalidPayload, "accepted.asset, payTo and amount are required"))
            }
            guard Hex.decode(asset, byteCount: 20) == option.assetBytes else {
                return .failure(PaymentFailure(.invalidPayload, "accepted.asset is not the asset this route accepts"))
            }
            guard Hex.decode(payTo, byteCount: 20) == option.payToBytes else {
                return .failure(PaymentFailure(.recipientMismatch, "accepted.payTo is not this route's recipient"))
            }
            guard amount == option.amount else {
                return .failure(PaymentFailure(.valueMismatch, "accepted.amount is not this route's price"))
            }
        }
        let authorization: Authorization
        let signatureText: String
        switch payload.exactEVMFields() {
        case .failure(let failure): return .failure(failure)
        case .success(let fields): (authorization, signatureText) = fields
        }
        let payer = authorization.from.lowercased()
        let signature = Hex.decode(signatureText, byteCount: 65)
        if checksSignature && signature == nil {
            return .failure(PaymentFailure(.invalidSignature, "signature must be 65 bytes of hex", payer: payer))
        }
        if !checksSignature && Hex.decode(signatureText) == nil {
            return .failure(PaymentFailure(.invalidSignature, "signature must be 0x-prefixed hex", payer: payer))
        }
        guard let to = Hex.decode(authorization.to, byteCount: 20), to == option.payToBytes else {
            return .failure(PaymentFailure(.recipientMismatch, "authorization.to is not this route's recipient", payer: payer))
        }
        guard authorization.value == option.amount else {
            return .failure(PaymentFailure(.valueMismatch, "authorization.value is not the price", payer: payer))
        }
        // Both times are canonical decimals; anything beyond UInt64 is absurdly far in the future.
        let validBefore = Int64(exactly: UInt64(authorization.validBefore) ?? UInt64.max) ?? Int64.max
        let validAfter = Int64(exactly: UInt64(authorization.validAfter) ?? UInt64.max) ?? Int64.max
        guard validBefore >= now + validBeforeMargin else {
            return .failure(PaymentFailure(.validBefore, "authorization expires too soon or has expired", payer: payer))
        }
        guard validBefore <= now + Int64(option.maxTimeoutSeconds) + clockSkewAllowance else {
            return .failure(PaymentFailure(.validBefore, "authorization is valid for longer than this route allows", payer: payer))
        }
        guard validAfter <= now else {
            return .failure(PaymentFailure(.validAfter, "authorization is not valid yet", payer: payer))
        }
        let from = Hex.decode(authorization.from, byteCount: 20)!
        let nonce = Hex.decode(authorization.nonce, byteCount: 32)!
        let key = NonceKey(network: option.network.caip2, asset: option.token.address, payer: payer, nonce: authorization.nonce)
        if alreadyUsed(key) {
            return .failure(PaymentFailure(.nonceAlreadyUsed, "this authorization was already presented", payer: payer))
        }
        if checksSignature, let signature {
            if let failure = checkSignature(signature, from: from, to: to, nonce: nonce, validAfter: validAfter,
                                            validBefore: validBefore, option: option, payer: payer) {
                return .failure(failure)
            }
        }
        return .success(
            VerifiedPayment(
                version: payload.version, option: option, payer: payer, authorization: authorization,
                signature: signatureText, nonceKey: key, validBefore: validBefore, payload: payload))
    }

    private func checkSignature(
        _ signature: [UInt8], from: [UInt8], to: [UInt8], nonce: [UInt8], validAfter: Int64, validBefore: Int64,
        option: PaymentOption, payer: String
    ) -> PaymentFailure? {
        let structHash = EIP712.transferWithAuthorizationHash(
            from: from, to: to, value: option.amountBytes, validAfter: Amount.uint256(UInt64(validAfter)),
            validBefore: Amount.uint256(UInt64(validBefore)), nonce: nonce)
        let digest = EIP712.digest(domainSeparator: option.domainSeparator, structHash: structHash)
        switch Secp256k1.recoverAddress(digest: digest, signature: signature) {
        case .failure(.badV):
            return PaymentFailure(.invalidSignature, "signature v must be 27 or 28", payer: payer)
        case .failure(.highS):
            return PaymentFailure(.invalidSignature, "signature s is in the upper half of the curve order", payer: payer)
        case .failure:
            return PaymentFailure(.invalidSignature, "signature does not recover", payer: payer)
        case .success(let signer) where signer != from:
            return PaymentFailure(.invalidSignature, "signature was not made by authorization.from", payer: payer)
        case .success:
            return nil
        }
    }
}
