import Foundation
import ZenMLCore

/// The state of an execution, with ML Metadata's numbers (`Execution.last_known_state`).
public enum ExecutionState: Int, Codable, Sendable, CaseIterable {
    case new = 1, running = 2, complete = 3, failed = 4, cached = 5, canceled = 6

    public var name: String {
        switch self {
        case .new: return "new"
        case .running: return "running"
        case .complete: return "complete"
        case .failed: return "failed"
        case .cached: return "cached"
        case .canceled: return "canceled"
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// The state of a run, stored as a string on the run's context.
public enum RunState: String, Codable, Sendable {
    case running, complete, failed, canceled
}

/// An artifact as recorded: its content digest, where it lives and what its producer said of it.
public struct ArtifactRecord: Codable, Sendable, Hashable {
    public var id: Int64
    public var type: String
    public var uri: String
    public var digest: Digest
    public var size: Int64
    public var fileCount: Int64
    /// Properties the producing step reported (for example `records`).
    public var properties: [String: JSONValue]
    public var createdAt: Date

    public init(id: Int64 = 0, type: String, uri: String, digest: Digest, size: Int64, fileCount: Int64, properties: [String: JSONValue], createdAt: Date) {
        self.id = id
        self.type = type
        self.uri = uri
        self.digest = digest
        self.size = size
        self.fileCount = fileCount
        self.properties = properties
        self.createdAt = createdAt
    }
}

/// One execution of one step in one run.
public struct ExecutionRecord: Codable, Sendable, Hashable {
    public var id: Int64
    public var runID: String
    public var pipeline: String
    public var step: String
    public var state: ExecutionState
    public var cacheKey: Digest?
    public var bundle: String
    public var bundleVersion: String
    public var bundleDigest: Digest?
    /// The resolved config, as canonical JSON.
    public var config: JSONValue
    /// What went into the cache key, for explaining a miss.
    public var keyIngredients: JSONValue
    public var exitCode: Int?
    public var logURI: String?
    public var message: String?
    public var startedAt: Date
    public var endedAt: Date?
    public var metrics: [String: Double]
    /// For a cached execution, the execution whose outputs it reused.
    public var reusedExecutionID: Int64?
    public var inputs: [String: [ArtifactRecord]]
    public var outputs: [String: ArtifactRecord]
    /// The step process's peak resident memory, in bytes (executions that ran a process).
    public var peakMemoryBytes: Int64? = nil
    /// The step process's user plus system CPU time, in seconds.
    public var cpuSeconds: Double? = nil
    /// Where the step ran: `{"backend": "slurm", "slurm_job_id": ..., "node": ..., "queue_wait_seconds": ...}`.
    public var backend: JSONValue = .null
    /// The `BundleBuild` artifact (the output of a `build:<bundle>` execution) whose binaries the
    /// step process ran, for a bundle with a `build:` command; recorded as an ML Metadata
    /// INTERNAL_INPUT event keyed `build`, apart from the declared inputs. A cached execution has
    /// none: it ran nothing (its reused execution has it).
    public var build: ArtifactRecord? = nil

    public var duration: TimeInterval? { endedAt.map { $0.timeIntervalSince(startedAt) } }
}

/// An execution whose outputs a step can reuse: what a cache hit needs of it, without the
/// inputs, config and key ingredients of an ``ExecutionRecord`` (a re-run of a wide pipeline
/// looks up hundreds of these).
public struct ReusableExecution: Sendable, Hashable {
    public var id: Int64
    public var runID: String
    public var step: String
    public var cacheKey: Digest
    /// Copied to the cached execution that reuses the outputs.
    public var metrics: [String: Double]
    public var outputs: [String: ArtifactRecord]

    public init(id: Int64, runID: String, step: String, cacheKey: Digest, metrics: [String: Double], outputs: [String: ArtifactRecord]) {
        self.id = id
        self.runID = runID
        self.step = step
        self.cacheKey = cacheKey
        self.metrics = metrics
        self.outputs = outputs
    }

    /// The reusable part of a complete or cached execution; nil for one without a cache key.
    public init?(_ record: ExecutionRecord) {
        guard let key = record.cacheKey else { return nil }
        self.init(id: record.id, runID: record.runID, step: record.step, cacheKey: key, metrics: record.metrics, outputs: record.outputs)
    }
}

/// A run of a pipeline.
public struct RunRecord: Codable, Sendable, Hashable {
    public var id: String
    public var pipeline: String
    public var specDigest: Digest?
    public var state: RunState
    public var startedAt: Date
    public var endedAt: Date?
    public var gitCommit: String?
    public var gitDirty: Bool?
    public var environment: JSONValue
    public var workspace: String?
    public var pipelineFile: String?
    /// `git diff HEAD` of the pipeline's work tree when it had uncommitted changes.
    public var gitDiff: String? = nil
    /// The machine and process that ran it, to tell a run in progress from one whose host died.
    public var host: String? = nil
    public var pid: Int? = nil
}

/// A pipeline and its versions.
public struct PipelineRecord: Codable, Sendable, Hashable {
    public var name: String
    public var versions: [PipelineVersionRecord]
    public var runCount: Int
    public var lastRun: RunRecord?
}

/// An immutable version of a pipeline: its spec, identified by the spec's digest.
public struct PipelineVersionRecord: Codable, Sendable, Hashable {
    public var specDigest: Digest
    public var spec: JSONValue
    public var file: String?
    public var createdAt: Date
}

/// What a run is started with.
public struct NewRun: Sendable {
    public var id: String
    public var pipeline: String
    public var specDigest: Digest
    public var spec: JSONValue
    public var pipelineFile: String
    public var startedAt: Date
    public var gitCommit: String?
    public var gitDirty: Bool?
    public var gitDiff: String?
    public var environment: JSONValue
    public var workspace: String
    public var host: String?
    public var pid: Int?

    public init(
        id: String, pipeline: String, specDigest: Digest, spec: JSONValue, pipelineFile: String, startedAt: Date, gitCommit: String?,
        gitDirty: Bool?, gitDiff: String? = nil, environment: JSONValue, workspace: String, host: String? = nil, pid: Int? = nil
    ) {
        self.host = host
        self.pid = pid
        self.gitDiff = gitDiff
        self.id = id
        self.pipeline = pipeline
        self.specDigest = specDigest
        self.spec = spec
        self.pipelineFile = pipelineFile
        self.startedAt = startedAt
        self.gitCommit = gitCommit
        self.gitDirty = gitDirty
        self.environment = environment
        self.workspace = workspace
    }
}

extension MetadataStore {
    public func finishRun(id: String, state: RunState, endedAt: Date) throws {
        try finishRun(id: id, state: state, endedAt: endedAt, environment: nil)
    }
}

/// A step satisfied from the cache: its new execution and the execution whose outputs it reuses.
public struct CacheReuse: Sendable {
    public var execution: NewExecution
    public var source: ReusableExecution

    public init(_ execution: NewExecution, reusing source: ReusableExecution) {
        self.execution = execution
        self.source = source
    }
}

extension MetadataStore {
    /// Records one step satisfied from the cache; see ``recordCachedExecutions(_:at:)``.
    public func recordCachedExecution(_ execution: NewExecution, reusing source: ReusableExecution, at date: Date) throws -> Int64 {
        guard let id = try recordCachedExecutions([CacheReuse(execution, reusing: source)], at: date).first else {
            throw MetadataStoreError.database("recording a cached execution returned no id")
        }
        return id
    }
}

/// What an execution is started with.
public struct NewExecution: Sendable {
    public var runID: String
    public var pipeline: String
    public var step: String
    public var cacheKey: Digest
    public var bundle: String
    public var bundleVersion: String
    public var bundleDigest: Digest
    public var config: JSONValue
    public var keyIngredients: JSONValue
    public var startedAt: Date
    /// Input artifacts by input name, in order.
    public var inputs: [String: [ArtifactRecord]]

    public init(runID: String, pipeline: String, step: String, cacheKey: Digest, bundle: String, bundleVersion: String, bundleDigest: Digest, config: JSONValue, keyIngredients: JSONValue, startedAt: Date, inputs: [String: [ArtifactRecord]]) {
        self.runID = runID
        self.pipeline = pipeline
        self.step = step
        self.cacheKey = cacheKey
        self.bundle = bundle
        self.bundleVersion = bundleVersion
        self.bundleDigest = bundleDigest
        self.config = config
        self.keyIngredients = keyIngredients
        self.startedAt = startedAt
        self.inputs = inputs
    }
}

/// How an execution ended.
public struct ExecutionOutcome: Sendable {
    public var state: ExecutionState
    public var endedAt: Date
    public var exitCode: Int?
    public var logURI: String?
    public var message: String?
    public var metrics: [String: Double]
    /// Output artifacts by output name; only for a complete execution.
    public var outputs: [String: ArtifactRecord]
    public var peakMemoryBytes: Int64?
    public var cpuSeconds: Double?
    public var backend: JSONValue
    /// The recorded `BundleBuild` artifact the step ran (see ``ExecutionRecord/build``); its id
    /// must be set.
    public var build: ArtifactRecord? = nil

    public init(
        state: ExecutionState, endedAt: Date, exitCode: Int? = nil, logURI: String? = nil, message: String? = nil,
        metrics: [String: Double] = [:], outputs: [String: ArtifactRecord] = [:], peakMemoryBytes: Int64? = nil, cpuSeconds: Double? = nil,
        backend: JSONValue = .null
    ) {
        self.backend = backend
        self.peakMemoryBytes = peakMemoryBytes
        self.cpuSeconds = cpuSeconds
        self.state = state
        self.endedAt = endedAt
        self.exitCode = exitCode
        self.logURI = logURI
        self.message = message
        self.metrics = metrics
        self.outputs = outputs
    }
}

/// One node of an artifact's upstream graph: the execution that produced an artifact and the
/// artifacts it read.
public struct LineageNode: Codable, Sendable, Hashable {
    public var artifact: ArtifactRecord
    public var producer: ExecutionRecord?
}

/// A metadata store problem, with what to do about it.
///
/// `path` names the store: a file path, or `mysql://USER@HOST:PORT/DATABASE` (never a password).
/// No description contains a password.
public enum MetadataStoreError: Error, CustomStringConvertible, Sendable {
    case newerSchema(path: String, found: Int, supported: Int)
    case cannotOpen(path: String, reason: String)
    case notFound(what: String)
    case database(String)
    /// The database server could not be reached, or the connection kept dropping, through every
    /// attempt; the operation changed nothing.
    case unavailable(path: String, attempts: Int, reason: String)
    /// The server refused the user name or password.
    case accessDenied(path: String, reason: String)
    /// The connection dropped while a write was committing and the store could not be reached
    /// again to find out whether the commit went through: the write is either recorded completely
    /// or not at all.
    case commitOutcomeUnknown(path: String, reason: String)
    /// Another process held the store's write lock for longer than the write would wait.
    case busy(path: String, seconds: Double)
    /// The MariaDB client library, which the MySQL store talks to the server with, could not be
    /// loaded (it is opened at first use).
    case missingClientLibrary(path: String, reason: String)

    public var description: String {
        switch self {
        case .newerSchema(let path, let found, let supported):
            return "the metadata store at \(path) uses ML Metadata schema version \(found), newer than the version \(supported) this zenml-run understands; upgrade zenml-run rather than opening it with this one"
        case .cannotOpen(let path, let reason):
            return "cannot open the metadata store at \(path): \(reason)"
        case .notFound(let what):
            return "\(what) was not found in the metadata store"
        case .database(let message):
            return "metadata store error: \(message)"
        case .unavailable(let path, let attempts, let reason):
            return "the metadata store at \(path) could not be used (\(attempts) attempt\(attempts == 1 ? "" : "s")): \(reason); nothing was recorded by this operation. Check that the database server is running and reachable, then run the command again"
        case .commitOutcomeUnknown(let path, let reason):
            return "the connection to the metadata store at \(path) dropped while a change was being committed, and the store could not be reached again to check it (\(reason)): the change is either recorded completely or not at all. Once the database server is reachable, check the run (zenml-run runs show) before repeating the command"
        case .busy(let path, let seconds):
            return "another process kept the metadata store at \(path) locked for more than \(seconds.formatted()) s (database is locked), so nothing was recorded by this operation; once it is done, run the command again, or let writes wait longer with ZENML_SQLITE_BUSY_TIMEOUT=SECONDS"
        case .accessDenied(let path, let reason):
            return "the database server refused access to the metadata store at \(path): \(reason); check the user name and the password given for it"
        case .missingClientLibrary(let path, let reason):
            return "the metadata store at \(path) needs the MariaDB client library, which could not be loaded (\(reason)); install it (Debian/Ubuntu: apt-get install libmariadb3; Fedora/RHEL: dnf install mariadb-connector-c), then run again"
        }
    }
}

/// The record of pipelines, runs, executions, artifacts and their lineage.
///
/// Implementations must make each method atomic: a failed call leaves nothing half-written.
public protocol MetadataStore: Sendable {
    /// Records a run (and the pipeline and its version, if new) as running.
    func startRun(_ run: NewRun) throws
    /// Sets a run's final state.
    /// Records how a run ended; `environment`, when given, replaces the recorded environment
    /// (facts gathered while the run went on, such as the runtimes' versions).
    func finishRun(id: String, state: RunState, endedAt: Date, environment: JSONValue?) throws
    /// Records an execution as running, linked to its inputs; returns its id.
    func startExecution(_ execution: NewExecution) throws -> Int64
    /// Records how an execution ended and, if it completed, its outputs; returns the outputs with their ids.
    @discardableResult
    func finishExecution(id: Int64, outcome: ExecutionOutcome) throws -> [String: ArtifactRecord]
    /// Records an execution that already ended, start and outcome in one transaction (a short step
    /// costs one commit instead of two).
    func recordExecution(_ execution: NewExecution, outcome: ExecutionOutcome) throws -> (id: Int64, outputs: [String: ArtifactRecord])
    /// Records steps satisfied from the cache, in one transaction: for each, a `CACHED` execution
    /// linked to the reused outputs. Returns their ids in order.
    func recordCachedExecutions(_ reuses: [CacheReuse], at date: Date) throws -> [Int64]
    /// Completed or cached executions with this cache key, newest first.
    func executions(withCacheKey key: Digest, limit: Int) throws -> [ExecutionRecord]
    /// The newest completed or cached execution of each of these cache keys that has one, in one
    /// query (a wave of ready steps is looked up together).
    func newestExecutions(withCacheKeys keys: [Digest]) throws -> [Digest: ReusableExecution]
    /// The newest execution of a pipeline's step that did not fail, if any.
    func latestExecution(pipeline: String, step: String) throws -> ExecutionRecord?
    /// Runs, newest first, optionally of one pipeline.
    func runs(pipeline: String?, limit: Int) throws -> [RunRecord]
    /// One run by id (a unique prefix is enough).
    func run(id: String) throws -> RunRecord?
    /// The runs still recorded as running that a process on `host` started.
    func runningRuns(host: String) throws -> [RunRecord]
    /// A run's executions in the order they started.
    func executions(runID: String) throws -> [ExecutionRecord]
    /// A run's complete and cached executions in the order they started, as cache sources.
    func reusableExecutions(runID: String) throws -> [ReusableExecution]
    /// The recorded ingredients of an execution's cache key (`.null` if none were recorded).
    func keyIngredients(executionID: Int64) throws -> JSONValue
    /// Every pipeline with its versions.
    func pipelines() throws -> [PipelineRecord]
    /// Artifacts by id, or by digest (a unique prefix of the hex is enough).
    func artifacts(matching reference: String) throws -> [ArtifactRecord]
    /// The execution that produced an artifact first, if recorded.
    func producer(ofArtifact id: Int64) throws -> ExecutionRecord?
    /// The executions that read an artifact, oldest first.
    func consumers(ofArtifact id: Int64) throws -> [ExecutionRecord]
    /// Records a stored copy of something a run read from outside the stores (a step bundle, a
    /// data file), as an artifact of `type` named by `key` (the digest that entered cache keys).
    /// Idempotent per type and key; returns the artifact's id.
    @discardableResult
    func recordSnapshot(_ artifact: ArtifactRecord, type: String, key: Digest) throws -> Int64
    /// The stored copy recorded for this type and key, if any.
    func snapshot(type: String, key: Digest) throws -> ArtifactRecord?
    /// What the store holds, in counts.
    func info() throws -> MetadataInfo
    /// Runs `body` so that the calls it makes on this store, from this thread, are committed
    /// together when it returns: each call stays atomic (it is undone alone if it throws), and
    /// none is visible to others or durable before the batch commits. If the commit fails, this
    /// throws and nothing in the batch was recorded. A store may commit each call on its own.
    func batched<T>(_ body: () throws -> T) throws -> T
    /// Referential problems (records pointing at missing ones, executions left RUNNING).
    func check() throws -> [String]
    /// Every row, for backup or moving between backends (`metadata export`), in one read transaction.
    func dump(_ emit: (JSONValue) throws -> Void) throws
    /// Loads a dump into a store with no executions and no artifacts, in one transaction.
    func load(_ records: [JSONValue]) throws
}
