import Testing
import X402
import X402Sidecar

/// A whole Sign-In-With-X round in Swift with the sidecar's HMAC nonce key: challenge, a wallet's
/// proof (signed with our secp256k1), verification, then the store's once-only nonce.
@Suite struct SIWXNonceKeyTests {
    static let resource = SIWXResource(
        origin: "https://api.example.com", pathAndQuery: "/weather", statement: "Sign in",
        chains: [SIWXChain(chainId: "eip155:84532")])
    static let walletKey = [UInt8](repeating: 0, count: 31) + [1]

    static func proofHeader(for challenge: SIWXChallenge, key: [UInt8] = walletKey) throws -> String {
        let address = Hex.checksumAddress(try #require(Secp256k1.address(privateKey: key)))
        var proof = SIWXProof(
            domain: challenge.resource.domain, address: address, uri: challenge.resource.uri, version: "1",
            chainId: "eip155:84532", type: "eip191", nonce: challenge.nonce, issuedAt: challenge.issuedAt,
            statement: challenge.resource.statement, expirationTime: challenge.expirationTime, notBefore: nil,
            requestId: nil, resources: challenge.resource.resources, signatureScheme: nil, signature: [])
        let digest = SIWXMessage.personalSignDigest(SIWXMessage.text(for: proof, chainNumber: 84532))
        proof.signature = try #require(Secp256k1.sign(digest: digest, privateKey: key))
        var writer = JSONWriter()
        writer.beginObject()
        for (name, value) in [
            ("domain", proof.domain), ("address", proof.address), ("statement", proof.statement!), ("uri", proof.uri),
            ("version", proof.version), ("chainId", proof.chainId), ("type", proof.type), ("nonce", proof.nonce),
            ("issuedAt", proof.issuedAt), ("expirationTime", proof.expirationTime!),
        ] {
            writer.field(name, value)
        }
        writer.key("resources")
        writer.beginArray()
        for item in proof.resources! { writer.string(item) }
        writer.endArray()
        writer.field("signature", Hex.encode(proof.signature))
        writer.endObject()
        return Base64.encode(writer.bytes)
    }

    @Test func challengeProofVerifyConsumeOnce() async throws {
        let key = SIWXNonceKey.random()
        let now: Int64 = 1_767_225_600
        let challenge = key.challenge(for: Self.resource, now: now, lifetimeSeconds: 300)
        let header = try Self.proofHeader(for: challenge)
        let entry = try key.verify(header: header, expecting: SIWXExpectation(resource: Self.resource, now: now + 5)).get()
        #expect(entry.payer == "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf")
        #expect(entry.nonceExpiresAt == now + 301)
        let store = EmbeddedLeaseStore(now: { now + 5 })
        #expect(try await store.consumeSIWXNonce(entry.nonce, expiresAt: entry.nonceExpiresAt).value)
        #expect(try await !store.consumeSIWXNonce(entry.nonce, expiresAt: entry.nonceExpiresAt).value)

        // Another sidecar with another key did not issue this nonce.
        guard case .failure(let failure) = SIWXNonceKey.random().verify(
            header: header, expecting: SIWXExpectation(resource: Self.resource, now: now + 5))
        else {
            Issue.record("a nonce bound with another key was accepted")
            return
        }
        #expect(failure.reason == .unknownNonce)
        #expect(SIWXNonceKey(secret: [UInt8](repeating: 1, count: 31)) == nil)
    }
}
