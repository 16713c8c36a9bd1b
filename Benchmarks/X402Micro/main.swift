import Foundation
// Release-mode micro-benchmarks of the decision hot path. Run: `make bench-micro`
// (`swift run -c release x402-micro [--json FILE]`). Figures are per operation, median of 7 runs.
#if canImport(Glibc)
import Glibc
#endif
import X402

func nanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Keeps results alive so the optimiser cannot drop the work.
nonisolated(unsafe) var sink: Int = 0

struct Row {
    var name: String
    var nanosPerOp: Double
}

func measure(_ name: String, iterations: Int, _ body: () -> Int) -> Row {
    for _ in 0..<max(1, iterations / 10) { sink &+= body() }  // warm-up
    var runs: [Double] = []
    for _ in 0..<7 {
        let start = nanoseconds()
        for _ in 0..<iterations { sink &+= body() }
        runs.append(Double(nanoseconds() - start) / Double(iterations))
    }
    runs.sort()
    return Row(name: name, nanosPerOp: runs[runs.count / 2])
}

// A route and a payment signed here, exactly as a client would sign it.
let payerKey = Hex.decode("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", byteCount: 32)!
let payer = Hex.encode(Secp256k1.address(privateKey: payerKey)!)
let payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
let network = KnownNetwork.find("base-sepolia")!
let option = try! PaymentOption(
    network: network.network, token: network.usdc, payTo: payTo, amount: "10000", maxTimeoutSeconds: 60)
let route = RouteRequirements(name: "bench", description: "bench", mimeType: "application/json", options: [option])
let now: Int64 = 1_767_225_600
let nonce = Keccak256.hash(Array("bench-nonce".utf8))
let signer = PaymentSigner(privateKeyHex: Hex.encode(payerKey))!
let header = signer.header(
    paying: option, resource: ResourceInfo(url: "https://api.example.com/weather", description: "bench",
                                           mimeType: "application/json"),
    now: now, nonce: nonce)
let structHash = EIP712.transferWithAuthorizationHash(
    from: Hex.decode(payer, byteCount: 20)!, to: Hex.decode(payTo, byteCount: 20)!, value: Amount.uint256("10000")!,
    validAfter: Amount.uint256(UInt64(now - 600)), validBefore: Amount.uint256(UInt64(now + 60)), nonce: nonce)
let digest = EIP712.digest(domainSeparator: option.domainSeparator, structHash: structHash)
let signature = Secp256k1.sign(digest: digest, privateKey: payerKey)!
let presented = PresentedPayment(v2Header: header)
let verifier = PaymentVerifier()
guard case .success = verifier.verify(presented, route: route, now: now) else {
    fatalError("the benchmark payment does not verify")
}

// `--emit-payments N FILE`: N distinct valid PAYMENT-SIGNATURE values for the route above, valid
// for an hour from now, one per line, for load tests that must present a fresh payment per request.
if let index = CommandLine.arguments.firstIndex(of: "--emit-payments"), index + 2 < CommandLine.arguments.count,
    let count = Int(CommandLine.arguments[index + 1])
{
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    // Overrides for a devnet: X402_EMIT_KEY, _ASSET, _PAY_TO, _AMOUNT, _CHAIN_ID, _MAX_TIMEOUT.
    let env = ProcessInfo.processInfo.environment
    let emitToken = env["X402_EMIT_ASSET"].map {
        TokenInfo(address: $0, eip712Name: "USDC", eip712Version: "2", decimals: 6, symbol: "USDC")
    } ?? network.usdc
    let emitNetwork = env["X402_EMIT_CHAIN_ID"].flatMap(UInt64.init).map { Network(chainId: $0, v1Name: "base-sepolia") }
        ?? network.network
    let live = try! PaymentOption(
        network: emitNetwork, token: emitToken, payTo: env["X402_EMIT_PAY_TO"] ?? payTo,
        amount: env["X402_EMIT_AMOUNT"] ?? "10000", maxTimeoutSeconds: Int(env["X402_EMIT_MAX_TIMEOUT"] ?? "3000")!)
    let signer = env["X402_EMIT_KEY"].flatMap { PaymentSigner(privateKeyHex: $0) } ?? signer
    guard let file = fopen(CommandLine.arguments[index + 2], "w") else { fatalError("cannot write the payments file") }
    for number in 0..<count {
        let line = signer.header(
            paying: live, resource: ResourceInfo(url: "https://api.example.com/weather", description: "bench",
                                                 mimeType: "application/json"),
            now: Int64(spec.tv_sec), nonce: Keccak256.hash(Array("load-\(spec.tv_sec)-\(number)".utf8)))
        fputs(line + "\n", file)
    }
    fclose(file)
    print("wrote \(count) payments to \(CommandLine.arguments[index + 2])")
    exit(0)
}

let input32 = [UInt8](repeating: 0xAB, count: 32)
let rows = [
    measure("keccak256 (32 B)", iterations: 200_000) { Keccak256.hash(input32)[0].hashValue },
    measure("eip712 digest (struct + final hash)", iterations: 100_000) {
        let hash = EIP712.transferWithAuthorizationHash(
            from: Hex.decode(payer, byteCount: 20)!, to: option.payToBytes, value: option.amountBytes,
            validAfter: Amount.uint256(UInt64(now - 600)), validBefore: Amount.uint256(UInt64(now + 60)), nonce: nonce)
        return Int(EIP712.digest(domainSeparator: option.domainSeparator, structHash: hash)[0])
    },
    measure("secp256k1 recovery", iterations: 5_000) {
        guard case .success(let address) = Secp256k1.recoverAddress(digest: digest, signature: signature) else { return 0 }
        return Int(address[0])
    },
    measure("decode PAYMENT-SIGNATURE (\(header.utf8.count) B)", iterations: 50_000) {
        guard case .success(let payload) = PaymentPayload.decode(header: header, expectedVersion: 2) else { return 0 }
        return payload.version
    },
    measure("challenge (v2 header + v1 body)", iterations: 50_000) {
        route.challenge(resourceURL: "https://api.example.com/weather", error: "payment required").v1Body.utf8.count
    },
    measure("full verification (decode + checks + recovery)", iterations: 5_000) {
        guard case .success(let payment) = verifier.verify(presented, route: route, now: now) else { return 0 }
        return payment.version
    },
]

print("| operation | ns/op | µs/op | ops/s (1 core) |")
print("|---|---:|---:|---:|")
for row in rows {
    let micros = row.nanosPerOp / 1000
    let perSecond = 1_000_000_000 / row.nanosPerOp
    print("| \(row.name) | \(Int(row.nanosPerOp)) | \((micros * 100).rounded() / 100) | \(Int(perSecond)) |")
}

let arguments = CommandLine.arguments
if let index = arguments.firstIndex(of: "--json"), index + 1 < arguments.count {
    var out = JSONWriter()
    out.beginArray()
    for row in rows {
        out.beginObject()
        out.field("name", row.name)
        out.field("ns_per_op", Int(row.nanosPerOp))
        out.endObject()
    }
    out.endArray()
    let path = arguments[index + 1]
    if let file = fopen(path, "w") {
        fputs(out.string + "\n", file)
        fclose(file)
    }
}
if sink == 42 { print("") }
