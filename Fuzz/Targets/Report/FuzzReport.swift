import FuzzSupport
import X402Sidecar

/// Nginx's report datagrams (`<PRI>… x402: PAYMENT_ID STATUS[, STATUS…] [bytes=N] [duration_ms=N]
/// [lease=JTI] [slot=ID]`), which anything that can write to the report socket can send. What is
/// accepted is bounded and printable, and the report written back in the module's own format
/// parses to the same report.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    // As the listener reads a datagram: at most its 2048-byte buffer, repaired to UTF-8.
    let message = String(decoding: bytes.prefix(2048), as: UTF8.self)
    guard let report = ReportListener.parse(message) else { return 0 }
    require((100...599).contains(report.status), "status \(report.status) accepted")
    require(!report.paymentId.isEmpty && report.paymentId.utf8.count <= 64, "payment id of a bad length")
    require(report.paymentId.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "payment id is not printable ASCII")
    for value in [report.lease, report.slot].compactMap({ $0 }) {
        require(!value.isEmpty && value != "-" && value.count <= 64, "lease or slot \(value.debugDescription)")
    }
    var line = "<14>x402: \(report.paymentId) \(report.status)"
    if let bytes = report.bytes { line += " bytes=\(bytes)" }
    if let duration = report.durationMilliseconds { line += " duration_ms=\(duration)" }
    if let lease = report.lease { line += " lease=\(lease)" }
    if let slot = report.slot { line += " slot=\(slot)" }
    require(ReportListener.parse(line) == report, "\(line.debugDescription) parses to another report")
    return 0
}

@main
enum FuzzReport {
    static func main() { runFuzzer(testOneInput) }
}
