import FuzzSupport
@testable import X402

/// The payment-header decoder: base64 → strict JSON → v1/v2 payload → the `exact` EVM fields.
///
/// Mode byte: bit 0 picks the header (`X-PAYMENT` v1 / `PAYMENT-SIGNATURE` v2); bit 1 set sends the
/// body as the header text itself (fuzzing the base64 layer), clear base64-encodes the body first
/// (fuzzing the JSON and payload layers, where the seeds' documents are).
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let version = input.mode & 1 == 0 ? 1 : 2
    let header = input.mode & 2 == 0 ? Base64.encode(input.body) : input.text
    switch PaymentPayload.decode(header: header, expectedVersion: version) {
    case .failure(let failure):
        require(!failure.message.isEmpty, "a refusal without a message")
        require(
            failure.reason == .invalidPayload || failure.reason == .invalidVersion,
            "decoding refused with \(failure.reason), which belongs to verification")
        require(failure.payer == nil, "a refusal names a payer before any authorization was read")
    case .success(let payload):
        checkAccepted(payload, header: header, version: version)
    }
    return 0
}

/// What an accepted header must be, and that its document written back decodes to the same payload.
func checkAccepted(_ payload: PaymentPayload, header: String, version: Int) {
    require(payload.version == version, "a v\(payload.version) payload accepted in the v\(version) header")
    guard let bytes = Base64.decode(header) else { return require(false, "accepted a header that is not base64") }
    require(Base64.encode(bytes) == header, "a second base64 spelling of the same bytes was accepted")
    require(header.utf8.count <= PaymentLimits.maxHeaderBytes, "accepted a header over the size limit")
    guard case .object(let root) = payload.document else { return require(false, "the document is not an object") }
    require(root["x402Version"]?.integerValue == version, "x402Version differs from the decoded version")
    if version == 2 {
        require(payload.accepted?["network"]?.stringValue == payload.network, "v2 network is not accepted.network")
        require(payload.accepted?["scheme"]?.stringValue == payload.scheme, "v2 scheme is not accepted.scheme")
    } else {
        require(payload.accepted == nil, "a v1 payload with an accepted echo")
        require(root["network"]?.stringValue == payload.network, "v1 network is not the document's")
    }
    var writer = JSONWriter(capacity: bytes.count)
    writer.value(payload.document)
    let rewritten = Base64.encode(writer.bytes)
    if rewritten.utf8.count <= PaymentLimits.maxHeaderBytes {
        // Escapes can make the rewritten document longer than the limit; below it, same payload.
        let again = PaymentPayload.decode(header: rewritten, expectedVersion: version)
        require(again == .success(payload), "the document written back decodes differently")
    }
    switch payload.exactEVMFields() {
    case .failure(let failure):
        require(!failure.message.isEmpty, "a refusal without a message")
        require(
            failure.reason == .invalidPayload || failure.reason == .invalidSignature, "unexpected \(failure.reason)")
    case .success(let (authorization, signature)):
        require(Hex.isAddress(authorization.from) && Hex.isAddress(authorization.to), "from/to are not addresses")
        for text in [authorization.value, authorization.validAfter, authorization.validBefore] {
            require(Amount.isCanonical(text), "\(text) is not a canonical decimal")
        }
        require(Hex.decode(authorization.nonce, byteCount: 32) != nil, "the nonce is not 32 bytes")
        require(payload.payload["signature"]?.stringValue == signature, "the signature is not the payload's")
    }
}

@main
enum FuzzPaymentHeader {
    static func main() { runFuzzer(testOneInput) }
}
