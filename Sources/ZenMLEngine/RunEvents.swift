import Foundation
import ZenMLExecutor
import ZenMLMetadata

/// The state of one step during a run, as progress displays show it.
public enum StepState: Sendable, Equatable {
    case waiting
    /// Handed to a backend that queues it (a Slurm job not started yet).
    case pending(since: Date, reason: String?)
    case running(since: Date, reason: String?)
    case cached(fromRun: String)
    case completed(duration: TimeInterval)
    case failed(StepFailureReport)
    case skipped(because: String)
    case canceled

    public var label: String {
        switch self {
        case .waiting: return "waiting"
        case .pending: return "pending"
        case .running: return "running"
        case .cached: return "cached"
        case .completed: return "done"
        case .failed: return "failed"
        case .skipped: return "skipped"
        case .canceled: return "canceled"
        }
    }

    /// A step just handed to `backend`: pending when the backend queues steps (it says when one
    /// starts), else running.
    static func handed(to backend: any StepBackend, reason: String?) -> StepState {
        backend.queuesSteps ? .pending(since: Date(), reason: reason) : .running(since: Date(), reason: reason)
    }

    public var isFinal: Bool {
        switch self {
        case .waiting, .pending, .running: return false
        default: return true
        }
    }
}

/// What a user needs to see about a failed step.
public struct StepFailureReport: Error, Sendable, Equatable, Codable {
    public var message: String
    public var exitCode: Int32?
    /// The last lines the step wrote on stderr.
    public var errorTail: String
    public var logFile: String?
}

/// Something that happened during a run.
public enum RunEvent: Sendable {
    case runStarted(runID: String, pipeline: String, steps: [String])
    case stepChanged(step: String, state: StepState)
    case runFinished(RunSummary)
}

/// The result of a run.
public struct RunSummary: Sendable, Codable {
    public var runID: String
    public var pipeline: String
    public var state: RunState
    public var steps: [StepSummary]
    public var duration: TimeInterval

    public struct StepSummary: Sendable, Codable {
        public var name: String
        /// `done`, `cached`, `failed`, `skipped` or `canceled`.
        public var state: String
        public var executionID: Int64?
        public var cacheKey: String?
        public var duration: TimeInterval?
        public var reason: String?
        public var failure: StepFailureReport?
        public var outputs: [String: String]
    }

    public var ran: Int { steps.filter { $0.state == "done" }.count }
    public var cached: Int { steps.filter { $0.state == "cached" }.count }
    public var failed: Int { steps.filter { $0.state == "failed" }.count }
}
