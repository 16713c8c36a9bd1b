import X402

/// When a route's payments are settled on chain.
public enum SettlementMode: String, Sendable, CaseIterable {
    /// Settle first; the request is allowed only once the transfer is mined.
    case before
    /// Allow at once; settle when Nginx reports an upstream status below 400, release otherwise.
    case after
    /// Allow at once; always settle, in the background.
    case deferred
}

/// Who submits the `transferWithAuthorization`.
public enum SettlementVia: String, Sendable, CaseIterable {
    /// A facilitator's `/settle` (Coinbase CDP, x402.org, a self-hosted one).
    case facilitator
    /// Our own relayer: we sign and send the transaction with our key.
    case relayer
}

/// One accepted payment on its way to the chain. Everything needed to settle it is inside, so a
/// job read back from the queue after a crash can be finished without the request that made it.
public struct SettlementJob: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Waiting for `after`'s upstream report (until `holdUntil`).
        case held
        /// To be settled at or after `dueAt`.
        case pending
        /// Mined; `transaction` holds the hash. Terminal.
        case settled
        /// Not to be settled (upstream failed under `after`); the reservation was given back. Terminal.
        case released
        /// Given up after `maxAttempts` or a permanent error; needs an operator. Terminal.
        case dead
    }

    /// The payment id (also the nonce reservation's owner token).
    public var id: String
    public var route: String
    public var mode: SettlementMode
    public var via: SettlementVia
    public var state: State
    public var version: Int
    /// CAIP-2, e.g. `eip155:84532`.
    public var network: String
    public var chainId: UInt64
    public var asset: String
    public var payTo: String
    public var amount: String
    public var payer: String
    public var authorization: Authorization
    public var signature: String
    /// The decoded payment header (JSON), forwarded unchanged to a facilitator (`null` for jobs our
    /// relayer settles).
    public var paymentPayload: String
    /// The server's requirement (JSON, field names of `version`), for a facilitator (`null` for
    /// relayer jobs).
    public var paymentRequirements: String
    public var createdAt: Int64
    public var dueAt: Int64
    public var holdUntil: Int64
    public var attempts: Int
    /// The transaction submitted or reported for this payment, once known (the relayer records it
    /// before sending, so a crash between sending and recording cannot lead to a blind resubmit).
    public var transaction: String?
    /// Every transaction sent for this payment, oldest first: a stuck relayer transaction and its
    /// replacements share one nonce, so at most one of them is ever mined — the one in
    /// `transaction` once settled; the others are dead. All are looked at before anything is sent.
    public var sentTransactions: [String] = []
    public var lastError: String?
    /// For `after`: the upstream status Nginx reported.
    public var upstreamStatus: Int?

    public var nonceKey: NonceKey {
        NonceKey(network: network, asset: asset, payer: payer, nonce: authorization.nonce)
    }

    public var isTerminal: Bool { state == .settled || state == .released || state == .dead }

    /// The job for a payment that was just granted.
    public init(grant: Grant, route: String, mode: SettlementMode, via: SettlementVia, resource: ResourceInfo,
                now: Int64, holdSeconds: Int64) {
        let payment = grant.payment
        id = grant.paymentId
        self.route = route
        self.mode = mode
        self.via = via
        state = mode == .after ? .held : .pending
        version = payment.version
        network = payment.option.network.caip2
        chainId = payment.option.network.chainId
        asset = payment.option.token.address.lowercased()
        payTo = payment.option.payTo.lowercased()
        amount = payment.option.amount
        payer = payment.payer
        authorization = payment.authorization
        signature = payment.signature
        if via == .facilitator {
            (paymentPayload, paymentRequirements) = Self.facilitatorParts(payment, resource: resource)
        } else {
            // Our relayer needs only the authorization and signature: no JSON to build or store.
            (paymentPayload, paymentRequirements) = ("null", "null")
        }
        createdAt = now
        dueAt = now
        holdUntil = mode == .after ? now + holdSeconds : 0
        attempts = 0
    }

    /// `paymentPayload` and `paymentRequirements` as a facilitator takes them.
    static func facilitatorParts(_ payment: VerifiedPayment, resource: ResourceInfo) -> (String, String) {
        var json = JSONWriter(capacity: 1024)
        json.value(checksummingAddresses(payment.payload.document))
        return (json.string, payment.option.requirementsJSON(version: payment.version, resource: resource))
    }

    static func facilitatorRequest(version: Int, payload: String, requirements: String) -> String {
        "{\"x402Version\":\(version),\"paymentPayload\":\(payload),\"paymentRequirements\":\(requirements)}"
    }

    /// The payload with `authorization.from` and `.to` in EIP-55 form. The signature covers the
    /// address bytes, not their spelling, and the official facilitator hands these strings to
    /// web3.py, which refuses lowercase addresses (the settlement would fail in simulation).
    static func checksummingAddresses(_ document: JSONValue) -> JSONValue {
        guard case .object(var root) = document, case .object(var payload)? = root["payload"],
            case .object(var authorization)? = payload["authorization"]
        else { return document }
        for field in ["from", "to"] {
            if let text = authorization[field]?.stringValue, let bytes = Hex.decode(text, byteCount: 20) {
                authorization[field] = .string(Hex.checksumAddress(bytes))
            }
        }
        payload["authorization"] = .object(authorization)
        root["payload"] = .object(payload)
        return .object(root)
    }

    /// The body of a facilitator's `/verify` and `/settle`.
    public var facilitatorRequest: String {
        Self.facilitatorRequest(version: version, payload: paymentPayload, requirements: paymentRequirements)
    }
}

// MARK: - Serialization (queue records)

extension SettlementJob {
    public func encoded() -> String {
        var json = JSONWriter(capacity: 2048)
        json.beginObject()
        json.field("id", id)
        json.field("route", route)
        json.field("mode", mode.rawValue)
        json.field("via", via.rawValue)
        json.field("state", state.rawValue)
        json.field("version", version)
        json.field("network", network)
        json.field("chainId", String(chainId))
        json.field("asset", asset)
        json.field("payTo", payTo)
        json.field("amount", amount)
        json.field("payer", payer)
        json.key("authorization")
        json.beginObject()
        json.field("from", authorization.from)
        json.field("to", authorization.to)
        json.field("value", authorization.value)
        json.field("validAfter", authorization.validAfter)
        json.field("validBefore", authorization.validBefore)
        json.field("nonce", authorization.nonce)
        json.endObject()
        json.field("signature", signature)
        json.key("paymentPayload")
        json.raw(Array(paymentPayload.utf8))
        json.key("paymentRequirements")
        json.raw(Array(paymentRequirements.utf8))
        json.field("createdAt", createdAt)
        json.field("dueAt", dueAt)
        json.field("holdUntil", holdUntil)
        json.field("attempts", attempts)
        json.field("transaction", optional: transaction)
        if !sentTransactions.isEmpty {
            json.key("sentTransactions")
            json.beginArray()
            for hash in sentTransactions { json.string(hash) }
            json.endArray()
        }
        json.field("lastError", optional: lastError)
        if let upstreamStatus { json.field("upstreamStatus", upstreamStatus) }
        json.endObject()
        return json.string
    }

    /// A stored job read back, or why it cannot be (the store keeps such a job for inspection).
    public static func decode(_ text: String) -> Result<SettlementJob, SettlementJobError> {
        let document: JSONValue
        do {
            document = try JSONParser.parse(Array(text.utf8), maxDepth: 32)
        } catch {
            return .failure(SettlementJobError(reason: "not JSON: \(error)"))
        }
        guard case .object(let o) = document else { return .failure(SettlementJobError(reason: "not a JSON object")) }
        do {
            return .success(try decode(o))
        } catch let error as SettlementJobError {
            return .failure(error)
        } catch {
            return .failure(SettlementJobError(reason: "\(error)"))
        }
    }

    private static func decode(_ o: [String: JSONValue]) throws -> SettlementJob {
        func need<T>(_ value: T?, _ field: String) throws -> T {
            guard let value else { throw SettlementJobError(reason: "missing or invalid field \(field)") }
            return value
        }
        func s(_ k: String) -> String? { o[k]?.stringValue }
        func i(_ k: String) -> Int64? {
            if case .number(let t)? = o[k] { return Int64(t) }
            return nil
        }
        let auth = try need(o["authorization"]?.objectValue, "authorization")
        func a(_ k: String) throws -> String { try need(auth[k]?.stringValue, "authorization.\(k)") }
        var p = JSONWriter(capacity: 1024)
        p.value(try need(o["paymentPayload"], "paymentPayload"))
        var r = JSONWriter(capacity: 512)
        r.value(try need(o["paymentRequirements"], "paymentRequirements"))
        return SettlementJob(
            id: try need(s("id"), "id"), route: try need(s("route"), "route"),
            mode: try need(s("mode").flatMap(SettlementMode.init), "mode"),
            via: try need(s("via").flatMap(SettlementVia.init), "via"),
            state: try need(s("state").flatMap(State.init), "state"), version: Int(try need(i("version"), "version")),
            network: try need(s("network"), "network"), chainId: try need(s("chainId").flatMap({ UInt64($0) }), "chainId"),
            asset: try need(s("asset"), "asset"), payTo: try need(s("payTo"), "payTo"),
            amount: try need(s("amount"), "amount"), payer: try need(s("payer"), "payer"),
            authorization: Authorization(
                from: try a("from"), to: try a("to"), value: try a("value"), validAfter: try a("validAfter"),
                validBefore: try a("validBefore"), nonce: try a("nonce")),
            signature: try need(s("signature"), "signature"), paymentPayload: p.string, paymentRequirements: r.string,
            createdAt: try need(i("createdAt"), "createdAt"), dueAt: try need(i("dueAt"), "dueAt"),
            holdUntil: try need(i("holdUntil"), "holdUntil"), attempts: Int(try need(i("attempts"), "attempts")),
            transaction: s("transaction"), sentTransactions: o["sentTransactions"].flatMap(strings) ?? [],
            lastError: s("lastError"), upstreamStatus: i("upstreamStatus").map { Int($0) })
    }

    private static func strings(_ value: JSONValue) -> [String]? {
        guard case .array(let items) = value else { return nil }
        return items.compactMap(\.stringValue)
    }

    /// Notes transactions a settler recorded (sent or about to be), keeping the order, once each.
    mutating func noteSent(_ hashes: [String]) {
        for hash in hashes where !sentTransactions.contains(hash) { sentTransactions.append(hash) }
    }

    /// The transactions to reconcile before sending anything: all sent ones and the current one.
    var knownTransactions: [String] {
        var all = sentTransactions
        if let transaction, !all.contains(transaction) { all.append(transaction) }
        return all
    }

    init(id: String, route: String, mode: SettlementMode, via: SettlementVia, state: State, version: Int,
         network: String, chainId: UInt64, asset: String, payTo: String, amount: String, payer: String,
         authorization: Authorization, signature: String, paymentPayload: String, paymentRequirements: String,
         createdAt: Int64, dueAt: Int64, holdUntil: Int64, attempts: Int, transaction: String?,
         sentTransactions: [String] = [], lastError: String?, upstreamStatus: Int?) {
        self.id = id
        self.route = route
        self.mode = mode
        self.via = via
        self.state = state
        self.version = version
        self.network = network
        self.chainId = chainId
        self.asset = asset
        self.payTo = payTo
        self.amount = amount
        self.payer = payer
        self.authorization = authorization
        self.signature = signature
        self.paymentPayload = paymentPayload
        self.paymentRequirements = paymentRequirements
        self.createdAt = createdAt
        self.dueAt = dueAt
        self.holdUntil = holdUntil
        self.attempts = attempts
        self.transaction = transaction
        self.sentTransactions = sentTransactions
        self.lastError = lastError
        self.upstreamStatus = upstreamStatus
    }
}

/// Why a stored job could not be read back.
public struct SettlementJobError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
