import Foundation
import Testing
import X402
@testable import X402Sidecar

/// A stored job that cannot be read back is logged with its reason, counted and kept aside: a
/// paid job never vanishes silently.
@Suite struct UndecodableJobTests {
    @Test func decodingNamesWhatIsWrong() throws {
        #expect(SettlementJob.decode("{").failureReason?.hasPrefix("not JSON") == true)
        #expect(SettlementJob.decode("[1]").failureReason == "not a JSON object")
        var text = SettlementQueueTests.job(1).encoded()
        text = text.replacingOccurrences(of: "\"payer\":", with: "\"payerX\":")
        #expect(SettlementJob.decode(text).failureReason == "missing or invalid field payer")
        let good = SettlementQueueTests.job(2)
        #expect(try SettlementJob.decode(good.encoded()).get() == good)
    }

    @Test func aBadJournalLineIsCountedAndKeptAside() async throws {
        let path = SettlementQueueTests.journal()
        do {
            let queue = try EmbeddedSettlementQueue(path: path)
            try await queue.put(SettlementQueueTests.job(1)).value
            try await queue.put(SettlementQueueTests.job(2)).value
        }
        // Damage job 2's line as a bad disk or a bad hand edit would.
        var journal = try String(contentsOfFile: path, encoding: .utf8)
        let id2 = SettlementQueueTests.job(2).id
        let lines = journal.split(separator: "\n").map { line in
            line.contains(id2) ? Substring(line.replacingOccurrences(of: "\"amount\":\"10000\"", with: "\"amount\":10000"))
                : line
        }
        journal = lines.joined(separator: "\n") + "\n"
        try journal.write(toFile: path, atomically: true, encoding: .utf8)

        let reopened = try EmbeddedSettlementQueue(path: path)
        #expect(reopened.undecodableJobs == 1)
        #expect(try await reopened.job(SettlementQueueTests.job(1).id) != nil)
        let aside = try String(contentsOfFile: path + ".undecodable", encoding: .utf8)
        #expect(aside.hasPrefix("missing or invalid field amount\tJ {"))
        #expect(aside.contains(id2))
    }
}

extension Result where Failure == SettlementJobError {
    var failureReason: String? {
        if case .failure(let error) = self { return error.reason }
        return nil
    }
}

/// Report datagrams: nginx's syslog `access_log` line and the C module's log-phase report.
@Suite struct ReportParsingTests {
    @Test func syslogAndModuleReports() {
        let syslog = ReportListener.parse("<190>Dec  2 15:00:00 x402: 0123abcd 502, 200")
        #expect(syslog == ReportListener.Report(paymentId: "0123abcd", status: 200))
        let module = ReportListener.parse("<14>x402: 0123abcd 204 bytes=1234 duration_ms=17 lease=" + String(repeating: "a", count: 32))
        #expect(module?.status == 204 && module?.bytes == 1234 && module?.durationMilliseconds == 17)
        #expect(module?.lease == String(repeating: "a", count: 32))
        #expect(ReportListener.parse("<14>x402: 0123abcd 200 lease=-")?.lease == nil)
        for bad in ["x402: id", "x402: id 99", "x402: id 600", "no tag 200", "x402: \u{7f}id 200", "x402: id abc",
                    "x402: " + String(repeating: "a", count: 65) + " 200"] {
            #expect(ReportListener.parse(bad) == nil, "\(bad)")
        }
    }
}
