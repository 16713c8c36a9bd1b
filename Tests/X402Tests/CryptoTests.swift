import Testing
@testable import X402

@Suite struct Secp256k1Tests {
    let key: [UInt8] = Hex.decode("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", byteCount: 32)!

    @Test func addressOfAKnownKey() {
        // eth_account's documented example key and address.
        #expect(Hex.encode(Secp256k1.address(privateKey: key)!) == "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23")
    }

    @Test func signThenRecover() throws {
        let digest = Keccak256.hash(Array("x402".utf8))
        let signature = try #require(Secp256k1.sign(digest: digest, privateKey: key))
        #expect(signature.count == 65)
        #expect(signature[64] == 27 || signature[64] == 28)
        #expect(Secp256k1.recoverAddress(digest: digest, signature: signature) == .success(Secp256k1.address(privateKey: key)!))
    }

    @Test func refusesMalleableAndMalformedSignatures() throws {
        let digest = Keccak256.hash(Array("x402".utf8))
        var signature = try #require(Secp256k1.sign(digest: digest, privateKey: key))
        var bad = signature
        bad[64] = 29
        #expect(Secp256k1.recoverAddress(digest: digest, signature: bad) == .failure(.badV))
        bad[64] = 1
        #expect(Secp256k1.recoverAddress(digest: digest, signature: bad) == .failure(.badV))
        // s' = n - s with the recovery bit flipped recovers the same key: refused as high-s.
        let n: [UInt8] = Hex.decode("0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", byteCount: 32)!
        var borrow = 0
        var flipped = [UInt8](repeating: 0, count: 32)
        for index in (0..<32).reversed() {
            let difference = Int(n[index]) - Int(signature[32 + index]) - borrow
            flipped[index] = UInt8((difference + 256) % 256)
            borrow = difference < 0 ? 1 : 0
        }
        signature.replaceSubrange(32..<64, with: flipped)
        signature[64] = signature[64] == 27 ? 28 : 27
        #expect(Secp256k1.recoverAddress(digest: digest, signature: signature) == .failure(.highS))
        #expect(Secp256k1.recoverAddress(digest: digest, signature: [UInt8](repeating: 0, count: 64)) == .failure(.badLength))
    }
}
