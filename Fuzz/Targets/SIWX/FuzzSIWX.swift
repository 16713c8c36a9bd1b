import FuzzSupport
import X402

/// `SIGN-IN-WITH-X` proofs: strict decoding (base64 → JSON → fields), then verification against
/// the route of `Tests/X402Tests/Fixtures/siwx.json` at the time of its `official` case, with its
/// MAC key, so a seed from the fixture walks every check down to signature recovery.
///
/// Mode byte: bit 0 set sends the body as the header text; clear base64-encodes the body (JSON).
enum Route {
    static let resource = SIWXResource(
        origin: "https://api.example.com", pathAndQuery: "/weather?city=Paris",
        statement: "Sign in to reach paid routes you already bought",
        chains: [SIWXChain(chainId: "eip155:84532"), SIWXChain(chainId: "eip155:8453")])
    static let expectation = SIWXExpectation(resource: resource, now: 1_767_225_605, maxAgeSeconds: 300, clockSkew: 30)
    static let macKey = Hex.decode("0x783430322d6e67696e7820736977782066697874757265206e6f6e6365206b6579")!

    /// The fixture generator's stand-in MAC: keccak256(key ‖ message).
    static func mac(_ message: [UInt8]) -> [UInt8] { Keccak256.hash(macKey + message) }
}

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let header = input.mode & 1 == 1 ? input.text : Base64.encode(input.body)
    let proof: SIWXProof
    switch SIWXProof.decode(header: header) {
    case .failure(let failure):
        require(failure.reason == .malformed, "decoding refused with \(failure.reason)")
        require(!failure.message.isEmpty && failure.payer == nil, "a decoding refusal without message, or with a payer")
        return 0
    case .success(let decoded): proof = decoded
    }
    let fields = [proof.domain, proof.address, proof.uri, proof.version, proof.chainId, proof.type, proof.nonce,
                  proof.issuedAt] + [proof.statement, proof.expirationTime, proof.notBefore, proof.requestId,
                  proof.signatureScheme].compactMap { $0 } + (proof.resources ?? [])
    for field in fields {
        // A line break in any field would forge a line of the signed message.
        require(!field.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) },
                "a control character got through in \(field.debugDescription)")
    }
    require(proof.signature.count == 65, "the signature is not 65 bytes")
    let rewritten = Base64.encode(document(proof))
    if rewritten.utf8.count <= SIWXLimits.maxHeaderBytes {
        require(SIWXProof.decode(header: rewritten) == .success(proof), "the proof written back decodes differently")
    }
    switch SIWXVerifier.verify(proof, expecting: Route.expectation, mac: Route.mac) {
    case .failure(let failure):
        require(!failure.message.isEmpty, "a refusal without a message")
        require(failure.reason != .nonceUsed && failure.reason != .notPaid, "the verifier made a store decision")
        require(failure.payer == nil, "a refused proof names a payer")
    case .success(let entry):
        require(entry.payer == proof.address.lowercased(), "signed in as \(entry.payer), not \(proof.address)")
        require(entry.nonce == proof.nonce && entry.chainId == proof.chainId, "the entry is not the proof's")
    }
    return 0
}

/// The proof as the SDK's client writes it (keys sorted, optional fields only when present).
func document(_ proof: SIWXProof) -> [UInt8] {
    var writer = JSONWriter()
    writer.beginObject()
    writer.field("address", proof.address)
    writer.field("chainId", proof.chainId)
    writer.field("domain", proof.domain)
    writer.field("expirationTime", optional: proof.expirationTime)
    writer.field("issuedAt", proof.issuedAt)
    writer.field("nonce", proof.nonce)
    writer.field("notBefore", optional: proof.notBefore)
    writer.field("requestId", optional: proof.requestId)
    if let resources = proof.resources {
        writer.key("resources")
        writer.beginArray()
        for resource in resources { writer.string(resource) }
        writer.endArray()
    }
    writer.field("signature", Hex.encode(proof.signature))
    writer.field("signatureScheme", optional: proof.signatureScheme)
    writer.field("statement", optional: proof.statement)
    writer.field("type", proof.type)
    writer.field("uri", proof.uri)
    writer.field("version", proof.version)
    writer.endObject()
    return writer.bytes
}

@main
enum FuzzSIWX {
    static func main() { runFuzzer(testOneInput) }
}
