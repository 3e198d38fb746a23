import Foundation
import ZenMLContract
import ZenMLCore

/// A prepared step handed to a worker process on another node (`zenml-run worker JOB`): what it
/// needs to run the step under the contract, all on storage the host and the node share.
public struct WorkerJob: Codable, Sendable {
    public var bundlePath: String
    public var workDirectory: String
    public var logFile: String
    public var timeout: Double?
    public var buildPath: String?
    public var hostEnvironment: [String: String]
    /// The request the step reads on stdin (with node staging, its input paths are store URIs the
    /// worker replaces).
    public var request: StepRequest
    /// Where the worker writes its ``WorkerResult``.
    public var resultFile: String
    /// The store the worker stages inputs from and publishes outputs to; `nil`: the host does both.
    public var nodeStaging: NodeStaging?

    public init(_ launch: StepLaunch, resultFile: String) {
        nodeStaging = launch.nodeStaging
        bundlePath = launch.bundlePath
        workDirectory = launch.workDirectory
        logFile = launch.logFile
        timeout = launch.timeout
        buildPath = launch.buildPath
        hostEnvironment = launch.hostEnvironment
        request = launch.request
        self.resultFile = resultFile
    }

    /// Rebuilds the launch: the manifest from the bundle, the request from the job.
    public func launch() throws -> StepLaunch {
        let manifest = try BundleManifest.load(bundle: bundlePath)
        var launch = StepLaunch(
            bundlePath: bundlePath, manifest: manifest, request: request, workDirectory: workDirectory, logFile: logFile,
            timeout: timeout, hostEnvironment: hostEnvironment, buildPath: buildPath)
        launch.nodeStaging = nodeStaging
        return launch
    }
}

/// What a worker needs to stage a step's data on its node instead of the host: the artifact
/// store's location (never credentials: the node takes them from its own environment, as a user
/// does) and a directory named by the step's cache key, where the job's files outlive the host.
public struct NodeStaging: Codable, Sendable, Equatable {
    /// A store folder on storage the nodes share (`folder` and its `staging`, on one file system),
    /// or a bucket (`url`, `endpoint`, `region`).
    public var folder: String?
    public var staging: String?
    public var url: String?
    public var endpoint: String?
    public var region: String?
    /// The bound of the node's read-through cache of a bucket store, when the workspace sets one.
    public var cacheMaxSize: Int64?
    /// The job's files (`worker-job.json`, `job-id`, `worker-result.json`), on storage the host
    /// reads: `jobs/KEY/RUN-STEP/`, next to the directories of other jobs with the same key.
    public var jobDirectory: String
    /// Whether the host may adopt (or wait for) a job of the same key whose host died, instead of
    /// submitting one: not for a forced run (`--no-cache`, `cache: false`).
    public var adoptsEarlierJobs: Bool

    public init(
        folder: String? = nil, staging: String? = nil, url: String? = nil, endpoint: String? = nil, region: String? = nil,
        cacheMaxSize: Int64? = nil, jobDirectory: String, adoptsEarlierJobs: Bool = true
    ) {
        self.adoptsEarlierJobs = adoptsEarlierJobs
        self.folder = folder
        self.staging = staging
        self.url = url
        self.endpoint = endpoint
        self.region = region
        self.cacheMaxSize = cacheMaxSize
        self.jobDirectory = jobDirectory
    }

    /// The store as users name it (`s3://bucket/prefix`, `/shared/artifacts`).
    public var storeName: String { url ?? folder ?? "(no store)" }
}


/// What a worker reports back: the same facts as a local ``StepRunResult``.
public struct WorkerResult: Codable, Sendable {
    public var response: StepResponse?
    public var failure: StepFailure?
    public var exitCode: Int32?
    public var errorTail: String
    public var duration: TimeInterval
    public var usage: ResourceUsage?
    /// Whether the step wrote to stderr (its log file, on shared storage, exists).
    public var wroteLog: Bool
    /// The outputs the worker published, by name (only with ``NodeStaging``, only on success).
    public var published: [String: StoredArtifact]?
    /// The node the worker ran on.
    public var node: String?

    public init(_ result: StepRunResult) {
        switch result.outcome {
        case .success(let success): response = success.response
        case .failure(let failure): self.failure = failure
        }
        exitCode = result.exitCode
        errorTail = result.errorTail
        duration = result.duration
        usage = result.usage
        wroteLog = result.wroteLog
    }

    /// The result as if the step had run here.
    public var runResult: StepRunResult {
        let outcome: Result<StepSuccess, StepFailure>
        if let response {
            let process = ProcessResult(
                termination: .exited(exitCode ?? 0), standardOutput: Data(), outputLimitExceeded: false, errorTail: errorTail,
                timedOut: false, canceled: false, duration: duration, usage: usage)
            outcome = .success(StepSuccess(response: response, process: process))
        } else {
            outcome = .failure(failure ?? .lost("the worker reported neither a response nor a failure"))
        }
        return StepRunResult(outcome: outcome, exitCode: exitCode, errorTail: errorTail, duration: duration, usage: usage, wroteLog: wroteLog)
    }
}

/// A bundle's `build:` command handed to a worker on a node (`zenml-run worker --build JOB`), so
/// a compiled step is built on the kind of machine that runs it, not on the submitting host.
public struct WorkerBuild: Codable, Sendable {
    public var configuration: ProcessConfiguration
    /// Where the worker writes its ``WorkerBuildResult``.
    public var resultFile: String

    public init(_ configuration: ProcessConfiguration, resultFile: String) {
        self.configuration = configuration
        self.resultFile = resultFile
    }
}

/// How a build on a node ended.
public struct WorkerBuildResult: Codable, Sendable {
    public var exitCode: Int32?
    public var errorTail: String
    public var duration: TimeInterval
    public var timedOut: Bool
    /// The run was interrupted and the job cancelled.
    public var canceled = false
    /// Whether the build wrote to stderr (its log file, on shared storage, exists).
    public var wroteLog = false

    public init(_ result: ProcessResult) {
        exitCode = result.exitCode
        errorTail = result.errorTail
        duration = result.duration
        timedOut = result.timedOut
        wroteLog = result.wroteLog
    }

    /// A build whose job ended without the worker reporting (or was cancelled): `message` says how.
    public init(lost message: String, canceled: Bool = false) {
        exitCode = nil
        errorTail = message
        duration = 0
        timedOut = false
        self.canceled = canceled
    }

    /// The result as if the build had run here.
    public var processResult: ProcessResult {
        ProcessResult(
            termination: exitCode.map { .exited($0) } ?? .signaled(SIGKILL), standardOutput: Data(), outputLimitExceeded: false,
            errorTail: errorTail, timedOut: timedOut, canceled: canceled, duration: duration, usage: nil, wroteLog: wroteLog)
    }
}
