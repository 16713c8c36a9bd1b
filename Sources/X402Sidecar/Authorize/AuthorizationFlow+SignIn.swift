import X402

/// The Sign-In-With-X steps of the decision: a route that offers it declares the extension in its
/// 402; a wallet's proof is verified in process (domain and URI against the client-visible origin,
/// age, expiry, our nonce, the signature), its nonce consumed exactly once, and the wallet let in
/// when it paid for this route, on this host, within the route's access window.
extension AuthorizationFlow {
    func presentedSignIn(_ route: RouteRequirements) -> String? {
        guard let proof = request.signInProof, !proof.isEmpty, request.payment.isEmpty,
            policy.signIn?.routes[route.name] != nil
        else { return nil }
        return proof
    }

    func signInResource(_ route: RouteRequirements, _ settings: SignInRouteSettings) -> SIWXResource {
        var chains: [SIWXChain] = []
        for option in route.options where !chains.contains(where: { $0.chainId == "eip155:\(option.network.chainId)" }) {
            chains.append(SIWXChain(chainId: "eip155:\(option.network.chainId)"))
        }
        return SIWXResource(origin: "\(request.scheme)://\(request.host)", pathAndQuery: request.uri,
                            statement: settings.statement, chains: chains)
    }

    mutating func checkSignIn(_ proof: String, route: RouteRequirements) -> Action {
        guard let signIn = policy.signIn, let settings = signIn.routes[route.name] else {
            return verify(route, limits: policy.limits[route.name])
        }
        let expectation = SIWXExpectation(resource: signInResource(route, settings), now: policy.now())
        switch signIn.nonceKey.verify(header: proof, expecting: expectation) {
        case .failure(let failure):
            return refuseSignIn(failure.reason.rawValue, failure.message, route: route)
        case .success(let entry):
            state = .signingIn(route, entry, consumed: false)
            return .consumeSignInNonce(entry.nonce, expiresAt: entry.nonceExpiresAt)
        }
    }

    mutating func signInNonceConsumed(_ answer: Result<Bool, any Error>, _ entry: SIWXEntry,
                                      route: RouteRequirements) -> Action {
        switch answer {
        case .success(true):
            state = .signingIn(route, entry, consumed: true)
            return .findPaidAccess(payer: entry.payer, route: route.name, host: Self.accessHost(request))
        case .success(false):
            return refuseSignIn("siwx_nonce_used", "this proof was already used", route: route)
        case .failure:
            return respond(.unavailable(reason: "sign-in store unavailable", retryAfter: 5))
        }
    }

    mutating func paidAccessFound(_ answer: Result<PaidAccess?, any Error>, _ entry: SIWXEntry,
                                  route: RouteRequirements) -> Action {
        switch answer {
        case .success(let access?):
            let now = policy.now()
            guard route.options.contains(where: {
                access.covers(amount: $0.amount, asset: $0.token.address, network: $0.network.caip2, now: now)
            }) else {
                return refuseSignIn("siwx_not_paid", "the wallet's payment does not cover this route's price", route: route)
            }
            return respond(.signedIn(SignInGrant(
                payer: access.payer, paymentId: access.paymentID, amount: access.amount, asset: access.asset,
                network: access.network, expiresAt: access.expiresAt)))
        case .success(nil):
            return refuseSignIn("siwx_not_paid", "this wallet has no payment for this route in its access window",
                                route: route)
        case .failure:
            return respond(.unavailable(reason: "sign-in store unavailable", retryAfter: 5))
        }
    }

    mutating func refuseSignIn(_ reason: String, _ message: String, route: RouteRequirements) -> Action {
        respond(.signInRefused(reason: reason, message: message, challenge: challenge(route, error: reason)))
    }

    /// What a payment on a Sign-In-With-X route records: payer, route, host, price, until when.
    func paidAccess(_ grant: Grant, route: RouteRequirements) -> PaidAccess? {
        guard let settings = policy.signIn?.routes[route.name] else { return nil }
        let payment = grant.payment
        return PaidAccess(
            payer: payment.payer, route: route.name, host: Self.accessHost(request), amount: payment.option.amount,
            asset: payment.option.token.address.lowercased(), network: payment.option.network.caip2,
            paymentID: grant.paymentId, expiresAt: policy.now() + settings.accessSeconds)
    }

    /// The extension we declare that a payment echoed with changed `info` (its static fields are
    /// recomputed from the request; the per-402 ones — nonce and times — may differ), or nil.
    func extensionEchoMismatch(_ payment: VerifiedPayment, route: RouteRequirements) -> String? {
        guard let signIn = policy.signIn, let settings = signIn.routes[route.name],
            case .object(let root) = payment.payload.document, case .object(let echoed)? = root["extensions"],
            echoed["sign-in-with-x"] != nil
        else { return nil }
        let declaration = signIn.nonceKey.challenge(
            for: signInResource(route, settings), now: policy.now(), lifetimeSeconds: settings.proofLifetimeSeconds)
        guard let declared = try? JSONParser.parse(declaration.declarationJSON, maxDepth: 16) else { return nil }
        return ExtensionEcho.firstMismatch(
            declared: ["sign-in-with-x": declared], echoed: echoed,
            dynamicFields: ["sign-in-with-x": ExtensionEcho.signInWithXDynamicFields])
    }

    static func accessHost(_ request: AuthorizeRequest) -> String {
        LeaseClaims.normalizedHost(request.host) ?? request.host.lowercased()
    }
}
