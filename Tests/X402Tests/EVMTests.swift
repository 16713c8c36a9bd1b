import Testing
@testable import X402

/// Transactions and ABI encodings checked against eth_account 0.14 (the same key, fields and
/// deterministic RFC 6979 signatures give byte-identical transactions).
@Suite struct EVMTests {
    let key = [UInt8](repeating: 0x11, count: 32)
    let to = [UInt8](repeating: 0x22, count: 20)

    @Test func selectorsAndTopics() {
        #expect(ABI.selector("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)")
            == ABI.transferWithAuthorizationSelector)
        #expect(ABI.selector("balanceOf(address)") == ABI.balanceOfSelector)
        #expect(ABI.selector("authorizationState(address,bytes32)") == ABI.authorizationStateSelector)
        #expect(ABI.selector("Error(string)") == ABI.errorSelector)
        #expect(Hex.encode(ABI.transferTopic) == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
    }

    @Test func legacyTransactionMatchesEthAccount() throws {
        let tx = EVMTransaction(chainId: 84532, nonce: 0, gasLimit: 21000, fees: .legacy(gasPrice: 1_000_000_000),
                                to: to, data: [])
        let signed = try #require(tx.signed(privateKey: key))
        #expect(Hex.encode(signed.raw, prefix: false) ==
            "f86680843b9aca0082520894222222222222222222222222222222222222222280808302948ba08e11864e56e00813064208508d1d0d7152f9d2878b3cba8ec4e9b4f1c82dcee6a037dea6ee87473b214c66333285d7df90f7a8b2f71f0ea6cc001c6e1bab86961d")
        #expect(Hex.encode(signed.hash, prefix: false) == "8f9012ab2fdd40f3feb7e8b1df9b1b51d3e47632b4caa7405a76173263805ec4")
    }

    @Test func eip1559TransactionMatchesEthAccount() throws {
        var data: [UInt8] = [0xE3, 0xEE, 0x16, 0x0E]
        for _ in 0..<9 { data += (0..<32).map { UInt8($0) } }
        let tx = EVMTransaction(chainId: 84532, nonce: 7, gasLimit: 90000,
                                fees: .eip1559(maxFeePerGas: 2_000_000_000, maxPriorityFeePerGas: 1_000_000), to: to, data: data)
        let signed = try #require(tx.signed(privateKey: key))
        #expect(signed.raw.count == 407)
        #expect(Hex.encode(signed.raw.prefix(40), prefix: false) ==
            "02f9019383014a3407830f4240847735940083015f90942222222222222222222222222222222222")
        #expect(Hex.encode(signed.hash, prefix: false) == "a190897c09d37f3149e7635ac69f878e92171fd68e523734f58ab9bae0b77cc4")
    }

    @Test func rlpEdgeCases() {
        #expect(RLP.encode(.bytes([])) == [0x80])
        #expect(RLP.encode(.bytes([0x7F])) == [0x7F])
        #expect(RLP.encode(.bytes([0x80])) == [0x81, 0x80])
        #expect(RLP.encode(.uint(0)) == [0x80])
        #expect(RLP.encode(.uint(1024)) == [0x82, 0x04, 0x00])
        #expect(RLP.encode(.list([])) == [0xC0])
        let long = [UInt8](repeating: 0x61, count: 56)
        #expect(RLP.encode(.bytes(long)) == [0xB8, 56] + long)
    }

    @Test func revertReasonDecodes() {
        let reason = "FiatTokenV2: authorization is used or canceled"
        var data = ABI.errorSelector + ABI.word(32) + ABI.word(UInt64(reason.utf8.count))
        var text = Array(reason.utf8)
        while text.count % 32 != 0 { text.append(0) }
        data += text
        #expect(ABI.revertReason(data) == reason)
        #expect(ABI.revertReason([0x08, 0xC3, 0x79, 0xA0]) == nil)
        #expect(ABI.revertReason(data.prefix(70).map { $0 }) == nil)
    }

    @Test func transferCalldataLayout() throws {
        let auth = Authorization(
            from: "0x" + String(repeating: "ab", count: 20), to: "0x" + String(repeating: "cd", count: 20), value: "10000",
            validAfter: "0", validBefore: "1700000000", nonce: "0x" + String(repeating: "07", count: 32))
        let signature = "0x" + String(repeating: "01", count: 32) + String(repeating: "02", count: 32) + "1b"
        let call = try #require(TransferAuthorizationCall(token: "0x" + String(repeating: "ee", count: 20),
                                                          authorization: auth, signature: signature))
        let data = call.calldata
        #expect(data.count == 4 + 9 * 32)
        #expect(Array(data[0..<4]) == [0xE3, 0xEE, 0x16, 0x0E])
        #expect(data[4 + 6 * 32 + 31] == 27)
        #expect(Array(data[(4 + 7 * 32)..<(4 + 8 * 32)]) == [UInt8](repeating: 1, count: 32))
        #expect(Array(data[(4 + 8 * 32)...]) == [UInt8](repeating: 2, count: 32))
    }
}

@Suite struct ChecksumAddressTests {
    /// The EIP-55 examples.
    @Test(arguments: [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ])
    func eip55(_ address: String) {
        #expect(Hex.checksumAddress(Hex.decode(address, byteCount: 20)!) == address)
    }
}

@Suite struct GCRATests {
    @Test func parsesRules() throws {
        #expect(try RateRule.parse("10/s burst 5").get() == RateRule(count: 10, periodMicros: 1_000_000, burst: 5))
        #expect(try RateRule.parse("1000/h").get() == RateRule(count: 1000, periodMicros: 3_600_000_000, burst: 1000))
        #expect(try RateRule.parse("5/min burst 1").get().intervalMicros == 12_000_000)
        for bad in ["10", "10/x", "ten/s", "10/s burst", "10/s burst 0", "0/s", "10/s bursts 5", "-1/s"] {
            #expect(throws: RateRule.ParseError.self, "\(bad)") { try RateRule.parse(bad).get() }
        }
    }

    /// `10/s burst 5` on a scripted timeline: five at once, then one per 100 ms.
    @Test func admitsExactlyTheAllowedCount() {
        let rule = try! RateRule.parse("10/s burst 5").get()
        var tat: Int64?
        func send(_ count: Int, at now: Int64) -> Int {
            var admitted = 0
            for _ in 0..<count {
                let outcome = GCRA.decide(tat: tat, now: now, rule: rule)
                if outcome.allowed {
                    tat = outcome.newTAT
                    admitted += 1
                }
            }
            return admitted
        }
        #expect(send(20, at: 0) == 5)
        let refused = GCRA.decide(tat: tat, now: 0, rule: rule)
        #expect(!refused.allowed && refused.retryAfterMicros == 100_000)
        #expect(send(20, at: 50_000) == 0)
        #expect(send(20, at: 100_000) == 1)
        #expect(send(20, at: 350_000) == 2)
        #expect(send(20, at: 2_000_000) == 5)  // idle: the burst is back, never more
    }
}
