import Foundation
import ZenMLMetadata

/// Records one step execution with as few commits as possible: a step that ends within
/// ``runningRecordDelay`` is recorded once, with its outcome; a longer one is first recorded as
/// RUNNING (so other terminals see it running) and then finished. Each commit costs a
/// transaction with dozens of index pages, which was a third of a short step's host overhead.
final class ExecutionRecorder: @unchecked Sendable {
    /// How long a step runs before it is recorded as RUNNING.
    static let runningRecordDelay: UInt64 = 1_000_000_000

    private enum State {
        case pending
        case started(Int64)
        case finished
    }

    private let metadata: any MetadataStore
    private let execution: NewExecution
    private var state = State.pending
    private let lock = NSLock()
    private var timer: Task<Void, Never>?
    private var ranBuild: ArtifactRecord?

    /// The bundle build the step process ran, recorded with how it ended.
    var build: ArtifactRecord? {
        get { lock.withLock { ranBuild } }
        set { lock.withLock { ranBuild = newValue } }
    }

    init(metadata: any MetadataStore, execution: NewExecution) {
        self.metadata = metadata
        self.execution = execution
    }

    /// Records the execution as RUNNING unless it ends first.
    func startTimer() {
        timer = Task.detached { [self] in
            try? await Task.sleep(nanoseconds: Self.runningRecordDelay)
            guard !Task.isCancelled else { return }
            lock.withLock {
                guard case .pending = state else { return }
                if let id = try? metadata.startExecution(execution) { state = .started(id) }
            }
        }
    }

    /// Records how the execution ended; returns its id and its recorded outputs.
    @discardableResult
    func finish(_ outcome: ExecutionOutcome) throws -> (id: Int64, outputs: [String: ArtifactRecord]) {
        timer?.cancel()
        var outcome = outcome
        return try lock.withLock {
            if outcome.build == nil { outcome.build = ranBuild }
            switch state {
            case .started(let id):
                let outputs = try metadata.finishExecution(id: id, outcome: outcome)
                state = .finished
                return (id, outputs)
            case .pending:
                let recorded = try metadata.recordExecution(execution, outcome: outcome)
                state = .finished
                return recorded
            case .finished:
                throw MetadataStoreError.database("the execution of step \(execution.step) was already recorded as finished")
            }
        }
    }
}
