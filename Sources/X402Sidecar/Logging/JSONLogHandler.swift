import Logging
import X402

/// swift-log handler writing one JSON object per line: `time`, `level`, `logger`, `message`, then
/// metadata. Operators read these with `journalctl -o cat | jq` or `tail -f`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let writer: LineWriter

    public init(label: String, level: Logger.Level = .info, writer: LineWriter = .standardOutput) {
        self.label = label
        self.logLevel = level
        self.writer = writer
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.field("time", UnixClock.timestamp())
        json.field("level", event.level.rawValue)
        json.field("logger", label)
        json.field("message", event.message.description)
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted() {
            json.key(key)
            Self.write(merged[key]!, to: &json)
        }
        json.endObject()
        var bytes = json.bytes
        bytes.append(0x0A)
        writer.write(bytes)
    }

    private static func write(_ value: Logger.Metadata.Value, to json: inout JSONWriter) {
        switch value {
        case .string(let string): json.string(string)
        case .stringConvertible(let convertible): json.string(convertible.description)
        case .array(let values):
            json.beginArray()
            for element in values { write(element, to: &json) }
            json.endArray()
        case .dictionary(let dictionary):
            json.beginObject()
            for key in dictionary.keys.sorted() {
                json.key(key)
                write(dictionary[key]!, to: &json)
            }
            json.endObject()
        }
    }
}
