import Foundation

/// A fresh directory under the system's temporary directory, for journals and sockets.
public enum TemporaryDirectory {
    public static func make(_ prefix: String) -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.path
    }

    /// `name` inside a fresh directory.
    public static func file(_ prefix: String, _ name: String) -> String {
        make(prefix) + "/" + name
    }
}
