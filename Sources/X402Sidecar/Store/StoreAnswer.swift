/// How a store answers one call of the decision path.
///
/// An in-process store decides in place (a table lookup under a lock, an append to a journal
/// without fsync) and answers `.ready`: the caller may be an event loop, and the request is
/// decided without a task hop. A store that must wait — a network round trip, an fsync — answers
/// `.suspending` with the work to await, and the caller runs it on a task. The store declares
/// which it is per call, so callers need neither a second synchronous copy of each operation nor
/// a downcast to find out.
public enum StoreAnswer<Value: Sendable>: Sendable {
    /// Decided already (success or the store's error).
    case ready(Result<Value, any Error>)
    /// Decided once this work finishes; never run it on an event loop.
    case suspending(@Sendable () async throws -> Value)

    /// Runs `body` in place and captures its result or error.
    @inlinable
    public static func now(_ body: () throws -> Value) -> StoreAnswer {
        do { return .ready(.success(try body())) } catch { return .ready(.failure(error)) }
    }

    /// The answer, awaiting the work when there is some (for callers that are on a task anyway).
    @inlinable
    public var value: Value {
        get async throws {
            switch self {
            case .ready(let result): return try result.get()
            case .suspending(let work): return try await work()
            }
        }
    }
}
