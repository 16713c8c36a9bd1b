import Logging
import X402

/// A facilitator's HTTP API: `POST /verify`, `POST /settle`, `GET /supported`.
///
/// Failures come back as HTTP 200 with `isValid` / `success` false and a reason code; those map
/// to our reasons one to one. Only calls that are safe to repeat are retried: `/verify` and
/// `/supported` always, `/settle` only when the request provably never left (connect errors).
public final class FacilitatorClient: Settler {
    public let baseURL: String
    let http: HTTPJSONClient
    let retries: Int
    let logger: Logger
    /// Where to look up an authorization on chain before settling again after an unknown outcome.
    let chains: [UInt64: EthereumRPC]
    /// How long to watch the chain for the transfer after a `/settle` got no answer.
    let unansweredLookSeconds: Double

    public init(baseURL: String, http: HTTPJSONClient, retries: Int = 2, chains: [UInt64: EthereumRPC] = [:],
                unansweredLookSeconds: Double = 5, logger: Logger) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = http
        self.retries = retries
        self.chains = chains
        self.unansweredLookSeconds = unansweredLookSeconds
        self.logger = logger
    }

    public struct Verdict: Sendable, Equatable {
        public var isValid: Bool
        public var invalidReason: String?
        public var invalidMessage: String?
        public var payer: String?
    }

    public struct Settlement: Sendable, Equatable {
        public var success: Bool
        public var errorReason: String?
        public var errorMessage: String?
        public var transaction: String?
        public var network: String?
        public var payer: String?
    }

    public func verify(_ requestBody: String) async throws -> Verdict {
        let json = try await postRetrying("/verify", requestBody, retryAnswerless: true)
        guard case .bool(let valid)? = json["isValid"] else {
            throw OutboundError(kind: .badAnswer, description: "/verify: no isValid in the answer")
        }
        return Verdict(isValid: valid, invalidReason: json["invalidReason"]?.stringValue,
                       invalidMessage: json["invalidMessage"]?.stringValue, payer: json["payer"]?.stringValue)
    }

    public func settleRequest(_ requestBody: String) async throws -> Settlement {
        let json = try await postRetrying("/settle", requestBody, retryAnswerless: false)
        guard case .bool(let success)? = json["success"] else {
            throw OutboundError(kind: .badAnswer, description: "/settle: no success in the answer")
        }
        let transaction = json["transaction"]?.stringValue
        return Settlement(success: success, errorReason: json["errorReason"]?.stringValue,
                          errorMessage: json["errorMessage"]?.stringValue,
                          transaction: transaction?.isEmpty == true ? nil : transaction,
                          network: json["network"]?.stringValue, payer: json["payer"]?.stringValue)
    }

    /// The `kinds` the facilitator supports, as `(x402Version, scheme, network)`.
    public func supported() async throws -> [(Int, String, String)] {
        var lastError: any Error = OutboundError(kind: .notSent, description: "no attempt")
        for attempt in 0...retries {
            do {
                let response = try await http.get(baseURL + "/supported")
                guard response.status == 200 else {
                    throw OutboundError(kind: .badAnswer, description: "/supported: HTTP \(response.status)")
                }
                guard case .array(let kinds)? = try response.json()["kinds"] else { return [] }
                return kinds.compactMap { kind in
                    guard let version = kind["x402Version"].flatMap(EthereumRPC.int), let scheme = kind["scheme"]?.stringValue,
                        let network = kind["network"]?.stringValue
                    else { return nil }
                    return (version, scheme, network)
                }
            } catch {
                lastError = error
                if attempt < retries { try await Task.sleep(for: .milliseconds(200 << attempt)) }
            }
        }
        throw lastError
    }

    private func postRetrying(_ path: String, _ body: String, retryAnswerless: Bool) async throws -> JSONValue {
        var attempt = 0
        while true {
            do {
                let response = try await http.post(baseURL + path, json: body)
                // 4xx with a JSON body still carries the verdict (some facilitators answer 400).
                if response.status >= 500 {
                    throw OutboundError(kind: .noAnswer, description: "\(path): HTTP \(response.status)")
                }
                return try response.json()
            } catch let error as OutboundError {
                let safe = error.kind == .notSent || (retryAnswerless && error.kind == .noAnswer)
                guard safe, attempt < retries else { throw error }
                attempt += 1
                try await Task.sleep(for: .milliseconds(200 << attempt))
            }
        }
    }

    /// Settles through `/settle`. After an attempt whose outcome is unknown, the chain (when an RPC
    /// URL is configured for it) says whether the authorization was already used; a `/settle` that
    /// gets no answer is looked up on chain before anything is concluded (`FacilitatorClient+Chain`).
    public func settle(_ job: SettlementJob, record: @Sendable (String) async throws -> Void) async -> SettleOutcome {
        if job.attempts > 1, let known = await onChain(job), known != .unused {
            return outcome(known, job: job)
        }
        do {
            let answer = try await settleRequest(job.facilitatorRequest)
            if answer.success, let transaction = answer.transaction {
                return .settled(transaction: transaction)
            }
            let reason = answer.errorReason ?? "unknown"
            if reason == X402Reason.settlementPending.rawValue {
                if let transaction = answer.transaction {
                    do {
                        try await record(transaction)
                    } catch {
                        // The outcome below still names it, so the job keeps it either way.
                        logger.warning("cannot record a pending settlement's transaction", metadata: [
                            "payment_id": "\(job.id)", "transaction": "\(transaction)", "error": "\(error)"])
                    }
                }
                return .retry(reason: "settlement_pending", transaction: answer.transaction)
            }
            if let known = X402Reason(rawValue: reason) {
                if known == .nonceAlreadyUsed, job.attempts > 1 {
                    // Our own earlier attempt most likely went through (one that got no answer may
                    // have landed since we looked): the chain names its transaction, or says the
                    // payer canceled the authorization.
                    if let onChain = await onChain(job), onChain != .unused { return outcome(onChain, job: job) }
                    return .settled(transaction: job.transaction ?? "unknown")
                }
                return .failed(reason: known, message: answer.errorMessage ?? reason)
            }
            return .failed(reason: .transactionFailed, message: "\(reason): \(answer.errorMessage ?? "")")
        } catch let error as OutboundError where error.kind != .notSent {
            // Sent, and no answer we can read (timeout, cut connection, 5xx, garbage): the
            // facilitator may have sent the transfer. Only the chain can say.
            return await unanswered(job, error)
        } catch let error as OutboundError {
            return .retry(reason: error.description, transaction: job.transaction)
        } catch {
            return .retry(reason: "\(error)", transaction: job.transaction)
        }
    }
}
