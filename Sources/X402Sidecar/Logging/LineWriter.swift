#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes whole lines to a file descriptor with one `write(2)` each, so lines from different
/// threads never interleave (journald and `tail -f` see one JSON object per line).
public struct LineWriter: Sendable {
    public let fd: Int32

    public static let standardOutput = LineWriter(fd: 1)
    public static let standardError = LineWriter(fd: 2)

    public init(fd: Int32) { self.fd = fd }

    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // A log sink that fails must not take the decision path down with it.
                }
                offset += written
            }
        }
    }
}
