import Foundation
import ZenMLMetadata

/// Writes a run's executions to the metadata store on a queue of its own, in the order they are
/// handed in, so the next step starts while the last one is being recorded. On a chain of short
/// steps the write was a quarter of the host's time between one step's exit and the next one's
/// start; against a MySQL server it is several round trips.
///
/// Outputs of an executed step get provisional (negative) ids at once; the job that records the
/// step learns their real ids. A step that consumes them is prepared after its producer's job was
/// queued, so when its own job runs the real ids are known. After the first job that fails, no
/// later job writes anything: the steps it names fail, and so does everything after them.
///
/// Jobs queued within ``groupWindow`` of each other are committed together (the store's
/// ``MetadataStore/batched(_:)``), each still atomic: a commit rewrote the index pages every
/// step touches, and a chain of short steps committed every few milliseconds.
final class RecordingQueue: @unchecked Sendable {
    /// What the queue did, once it has drained.
    struct Report {
        /// The recorded execution of each step.
        var executionIDs: [String: Int64] = [:]
        /// Why a step's execution could not be recorded.
        var failures: [String: String] = [:]
    }

    /// What a job works with; only valid while the job runs.
    struct Writer {
        let metadata: any MetadataStore
        fileprivate let queue: RecordingQueue

        /// `execution` with the provisional ids of its inputs replaced by recorded ones.
        func resolved(_ execution: NewExecution) throws -> NewExecution {
            var execution = execution
            for (name, artifacts) in execution.inputs {
                execution.inputs[name] = try artifacts.map { artifact in
                    guard artifact.id < 0 else { return artifact }
                    guard let id = queue.recordedIDs[artifact.id] else {
                        throw MetadataStoreError.database(
                            "input '\(name)' of step \(execution.step) comes from a step whose execution was not recorded")
                    }
                    var recorded = artifact
                    recorded.id = id
                    return recorded
                }
            }
            return execution
        }

        /// Notes a step's recorded execution and the recorded ids of the outputs it was given
        /// provisional ids for.
        func recorded(step: String, executionID: Int64, outputs: [String: ArtifactRecord] = [:], provisional: [String: ArtifactRecord] = [:]) {
            queue.report.executionIDs[step] = executionID
            for (name, artifact) in provisional {
                if let id = outputs[name]?.id { queue.recordedIDs[artifact.id] = id }
            }
        }

        /// Runs `action` once what this job wrote is committed (never, if the commit fails).
        func afterCommit(_ action: @escaping () -> Void) {
            queue.committed.append(action)
        }
    }

    private struct Job {
        var steps: [String]
        var optional: Bool
        var work: @Sendable (Writer) throws -> Void
    }

    /// How long a job waits for others to be committed with it.
    static let groupWindow: DispatchTimeInterval = .milliseconds(10)

    private let metadata: any MetadataStore
    private let queue = DispatchQueue(label: "zenml-run.recording")
    private let lock = NSLock()
    private var lastProvisionalID: Int64 = 0
    private var failed = false
    // Only touched on `queue`.
    private var recordedIDs: [Int64: Int64] = [:]
    private var report = Report()
    private var firstFailure: String?
    /// Actions for when the batch being written commits; only touched on `queue`.
    private var committed: [() -> Void] = []
    // Under `lock`.
    private var pending: [Job] = []
    private var scheduled = false

    init(metadata: any MetadataStore) {
        self.metadata = metadata
    }

    /// Whether a job has failed: nothing more will be recorded in this run.
    var hasFailed: Bool { lock.withLock { failed } }

    /// `outputs` with fresh provisional ids, until their execution is recorded.
    func provisional(_ outputs: [String: ArtifactRecord]) -> [String: ArtifactRecord] {
        lock.withLock {
            outputs.mapValues { artifact in
                lastProvisionalID -= 1
                var provisional = artifact
                provisional.id = lastProvisionalID
                return provisional
            }
        }
    }

    /// Runs `job` after every job queued before it. If it throws, `steps` fail with its error.
    /// `optional` jobs (a RUNNING record that a later job completes anyway) fail nothing. A job
    /// that is a batch already (`waits: false`, such as dozens of cache hits) is not held back
    /// for others: in a cached run the queue is the slowest part, and it sat idle for the window.
    func enqueue(steps: [String], optional: Bool = false, waits: Bool = true, _ job: @escaping @Sendable (Writer) throws -> Void) {
        let schedule: Bool = lock.withLock {
            pending.append(Job(steps: steps, optional: optional, work: job))
            defer { scheduled = true }
            return !scheduled
        }
        guard schedule else { return }
        if waits {
            queue.asyncAfter(deadline: .now() + Self.groupWindow) { [self] in commitPending() }
        } else {
            queue.async { [self] in commitPending() }
        }
    }

    /// Waits for every queued job and says what they did.
    func drain() async -> Report {
        await withCheckedContinuation { continuation in
            queue.async { [self] in
                commitPending()
                continuation.resume(returning: report)
            }
        }
    }

    /// Runs the queued jobs in one batch. On `queue`.
    private func commitPending() {
        let jobs: [Job] = lock.withLock {
            defer { pending = []; scheduled = false }
            return pending
        }
        guard !jobs.isEmpty else { return }
        let writer = Writer(metadata: metadata, queue: self)
        do {
            try metadata.batched {
                for job in jobs {
                    if let firstFailure {
                        if !job.optional { for step in job.steps { report.failures[step] = "not recorded after an earlier failure: \(firstFailure)" } }
                        continue
                    }
                    let actions = committed.count
                    do {
                        try job.work(writer)
                    } catch {
                        // What the job wrote was undone: so are the actions it left for the commit.
                        committed.removeSubrange(actions...)
                        guard !job.optional else { continue }
                        fail(job.steps, "\(error)")
                    }
                }
            }
        } catch {
            // The batch could not begin or commit: none of its jobs was recorded, even those that ran.
            committed = []
            let steps = jobs.filter { !$0.optional }.flatMap(\.steps)
            for step in steps { report.executionIDs[step] = nil }
            fail(steps.filter { report.failures[$0] == nil }, "\(error)")
            return
        }
        let actions = committed
        committed = []
        for action in actions { action() }
    }

    private func fail(_ steps: [String], _ message: String) {
        if firstFailure == nil { firstFailure = message }
        for step in steps { report.failures[step] = message }
        lock.withLock { failed = true }
    }
}

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

    private let recordings: RecordingQueue
    private let execution: NewExecution
    /// Only touched by jobs on the recording queue.
    private var state = State.pending
    private var timer: Task<Void, Never>?
    /// The bundle build the step process ran, recorded with how it ended (set before ``finish(_:)``).
    var build: ArtifactRecord?
    /// The backend's job directory (set before ``finish(_:)``): removed once the execution is
    /// written, so no later run adopts a result already recorded; if it cannot be written, let go
    /// and kept, so a later run can adopt the job's result.
    var jobDirectory: HeldJobDirectory?

    init(recordings: RecordingQueue, execution: NewExecution) {
        self.recordings = recordings
        self.execution = execution
    }

    /// Records the execution as RUNNING unless it ends first.
    func startTimer() {
        timer = Task.detached { [self] in
            try? await Task.sleep(nanoseconds: Self.runningRecordDelay)
            guard !Task.isCancelled else { return }
            recordings.enqueue(steps: [execution.step], optional: true) { [self] writer in
                guard case .pending = state else { return }
                state = .started(try writer.metadata.startExecution(writer.resolved(execution)))
            }
        }
    }

    /// Queues how the execution ended; returns its outputs with provisional ids.
    @discardableResult
    func finish(_ outcome: ExecutionOutcome) -> [String: ArtifactRecord] {
        timer?.cancel()
        var outcome = outcome
        if outcome.build == nil { outcome.build = build }
        outcome.outputs = recordings.provisional(outcome.outputs)
        let provisional = outcome.outputs, jobDirectory = jobDirectory
        recordings.enqueue(steps: [execution.step]) { [self, outcome] writer in
            switch state {
            case .started(let id):
                let outputs = try writer.metadata.finishExecution(id: id, outcome: outcome)
                writer.recorded(step: execution.step, executionID: id, outputs: outputs, provisional: provisional)
            case .pending:
                let (id, outputs) = try writer.metadata.recordExecution(writer.resolved(execution), outcome: outcome)
                writer.recorded(step: execution.step, executionID: id, outputs: outputs, provisional: provisional)
            case .finished:
                throw MetadataStoreError.database("the execution of step \(execution.step) was already recorded as finished")
            }
            state = .finished
            // Written: a later run must not adopt this job's result. A directory whose record was
            // not written (this job threw, one before it did, or the commit failed) is let go, not
            // removed, when the last reference to it goes.
            if let jobDirectory { writer.afterCommit { jobDirectory.remove() } }
        }
        return provisional
    }
}
