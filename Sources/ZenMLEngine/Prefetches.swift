import Foundation

/// Answers asked for ahead of need, each taken once: a run's git state and its pipeline's
/// previous run are started while the pipeline file is read, not after (git's two processes
/// and the read of hundreds of records were on the path of every run). Taken once, so a later
/// run asks again.
final class Prefetches<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var started: [Key: Task<Value, Never>] = [:]
    private let compute: @Sendable (Key) -> Value

    init(_ compute: @escaping @Sendable (Key) -> Value) {
        self.compute = compute
    }

    /// Starts computing the value of `key` in the background.
    func prefetch(_ key: Key) {
        let compute = self.compute
        lock.withLock {
            if started[key] == nil { started[key] = Task.detached { compute(key) } }
        }
    }

    /// The value of `key`: the prefetched one, or computed now.
    func take(_ key: Key) async -> Value {
        let compute = self.compute
        let task = lock.withLock { started.removeValue(forKey: key) } ?? Task.detached { compute(key) }
        return await task.value
    }
}
