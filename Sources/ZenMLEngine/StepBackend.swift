import Foundation
import ZenMLContract
import ZenMLCore
import ZenMLExecutor

/// Where step processes run. The engine keeps the scheduling, the cache, the work directories,
/// publishing and recording; a backend only launches a prepared step, watches it and cancels it
/// (cancelling the calling task must stop the step). The local machine is one backend, a Slurm
/// cluster another; a Kubernetes backend would be a third.
public protocol StepBackend: Sendable {
    /// A short name, recorded with each execution (`local`, `slurm`).
    var name: String { get }
    /// Whether the backend's worker stages the inputs and publishes the outputs on the node
    /// (``StepLaunch/nodeStaging``); the host then neither downloads inputs nor publishes outputs,
    /// and records what ``BackendRun/published`` reports.
    var stagesArtifactsOnNode: Bool { get }
    /// Whether a step handed to the backend waits in a scheduler's queue before it starts: it is
    /// then shown pending, not running, until the backend says it runs.
    var queuesSteps: Bool { get }
    /// Runs a prepared step to its end. `progress` receives where the step is (pending in a
    /// queue, or running) with a short detail (a job id, a queue reason, a node).
    func run(_ launch: StepLaunch, step: String, progress: @escaping @Sendable (BackendStatus) -> Void) async -> BackendRun
    /// The machines a step with these resources runs on, when they are not this one: builds are
    /// keyed by it (binaries made here may not run there). `nil`: this machine.
    func buildTarget(for resources: BundleManifest.Resources?) -> String?
    /// Runs a bundle's `build:` command on the machines a step with these resources runs on;
    /// `directory` (the build's own, on shared storage) may hold the backend's job files.
    func runBuild(_ configuration: ProcessConfiguration, in directory: String, resources: BundleManifest.Resources?, label: String) async throws -> ProcessResult
}

extension StepBackend {
    public var stagesArtifactsOnNode: Bool { false }

    public var queuesSteps: Bool { false }

    public func buildTarget(for resources: BundleManifest.Resources?) -> String? { nil }

    public func runBuild(_ configuration: ProcessConfiguration, in directory: String, resources: BundleManifest.Resources?, label: String) async throws -> ProcessResult {
        try await ProcessLauncher.run(configuration)
    }
}

/// Where a step handed to a backend is, for progress displays.
public struct BackendStatus: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        /// Waiting in the scheduler's queue.
        case pending
        /// Started on a machine.
        case running
    }

    public var phase: Phase
    /// When the step entered this phase (its submission, or its start): displays count the
    /// elapsed time from it, so a new status line does not restart the clock.
    public var since: Date
    /// What to show with it: `slurm job 12, reason Resources`, `slurm job 12 on node3`.
    public var detail: String

    public init(phase: Phase, since: Date, detail: String) {
        self.phase = phase
        self.since = since
        self.detail = detail
    }
}

/// What a backend reports about one step: its result and where and how it ran.
public struct BackendRun: Sendable {
    public var result: StepRunResult
    /// Recorded with the execution: a job id, a node, the time spent queued.
    public var details: [String: JSONValue]
    /// The outputs the worker published to the store, by name; `nil` when the host publishes them.
    public var published: [String: StoredArtifact]?
    /// The job's directory, held until the caller has recorded the execution and removes it
    /// (``HeldJobDirectory/remove()``), so that no other run adopts a result already recorded.
    public var heldJobDirectory: HeldJobDirectory?

    public init(result: StepRunResult, details: [String: JSONValue] = [:], published: [String: StoredArtifact]? = nil) {
        self.result = result
        self.details = details
        self.published = published
    }
}

/// Runs steps as child processes of `zenml-run` on this machine.
public struct LocalBackend: StepBackend {
    public var name: String { "local" }

    public init() {}

    public func run(_ launch: StepLaunch, step: String, progress: @escaping @Sendable (BackendStatus) -> Void) async -> BackendRun {
        BackendRun(result: await StepRunner.run(launch))
    }
}
