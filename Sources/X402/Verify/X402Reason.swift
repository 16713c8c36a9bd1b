/// Reason codes, spelled as the official facilitator spells them so clients can act on them.
public enum X402Reason: String, Sendable, CaseIterable, Error {
    case invalidPayload = "invalid_payload"
    case invalidVersion = "invalid_x402_version"
    case unsupportedScheme = "unsupported_scheme"
    case networkMismatch = "network_mismatch"
    case missingEIP712Domain = "missing_eip712_domain"
    case recipientMismatch = "invalid_exact_evm_payload_recipient_mismatch"
    case valueMismatch = "invalid_exact_evm_payload_authorization_value_mismatch"
    case validBefore = "invalid_exact_evm_payload_authorization_valid_before"
    case validAfter = "invalid_exact_evm_payload_authorization_valid_after"
    case invalidSignature = "invalid_exact_evm_payload_signature"
    case nonceAlreadyUsed = "invalid_exact_evm_nonce_already_used"
    case insufficientBalance = "invalid_exact_evm_insufficient_balance"
    case transactionFailed = "transaction_failed"
    case simulationFailed = "invalid_exact_evm_transaction_simulation_failed"
    case settlementPending = "settlement_pending"
    /// A declared extension's `info` came back changed (the SDK's `validate_extensions`).
    case extensionEchoMismatch = "extension_echo_mismatch"
}

/// A refused payment: the official reason code plus a message for logs and the challenge's
/// `error` field. Messages never echo client input beyond short, sanitised identifiers.
public struct PaymentFailure: Error, Sendable, Equatable {
    public var reason: X402Reason
    public var message: String
    /// The payer, when the payload got far enough to name one.
    public var payer: String?

    public init(_ reason: X402Reason, _ message: String, payer: String? = nil) {
        self.reason = reason
        self.message = message
        self.payer = payer
    }
}
