import Foundation
import ZenMLArtifacts
import ZenMLCache
import ZenMLContract
import ZenMLCore
import ZenMLExecutor
import ZenMLMetadata
import ZenMLPipeline

/// How to run a pipeline.
public struct RunOptions: Sendable {
    /// Steps run at the same time, at most.
    public var jobs: Int
    /// `false` runs every step even when a cached result exists (`--no-cache`).
    public var useCache: Bool
    /// Run only these steps and what they need upstream (`--only`); empty for all.
    public var only: [String]
    /// The environment steps take `PATH`, `HOME` and their declared variables from.
    public var hostEnvironment: [String: String]
    /// Where step processes run.
    public var backend: any StepBackend

    public init(
        jobs: Int = ProcessInfo.processInfo.activeProcessorCount, useCache: Bool = true, only: [String] = [],
        hostEnvironment: [String: String] = ProcessInfo.processInfo.environment, backend: any StepBackend = LocalBackend()
    ) {
        self.backend = backend
        self.jobs = max(1, jobs)
        self.useCache = useCache
        self.only = only
        self.hostEnvironment = hostEnvironment
    }
}

/// Runs pipelines in a workspace: schedules the DAG, consults the cache, runs steps under the
/// contract, publishes their outputs and records everything in the metadata store.
public final class PipelineRunner: Sendable {
    public let workspace: Workspace
    let metadata: any MetadataStore
    /// The pipelines registered in this workspace, which pipeline files may copy with `base:`.
    public var registered: RegisteredPipelines { RegisteredPipelines(metadata: metadata, workspaceRoot: workspace.root) }
    let store: any ArtifactStore
    let fingerprinter: Fingerprinter
    let builder: BundleBuilder
    let workDirectories: WorkDirectoryPool
    let pythonRuntimes: PythonRuntimes
    /// By the pipeline file's folder.
    let gitStates = Prefetches<String, GitState?> { GitState.of(directory: $0) }
    /// Pipeline files parsed, by absolute path (nil: unreadable or invalid, which loading says).
    let documents = Prefetches<String, YAMLDocument?> { try? YAMLDocument(contentsOf: $0) }
    /// By pipeline name.
    let previousRuns: Prefetches<String, PreviousRun>

    /// Opens the workspace's stores (creating them if needed). `pipeline`: a pipeline file that
    /// ``load(_:update:locked:forRun:note:)`` will read, parsed meanwhile (opening the stores
    /// reads SQLite's WAL; both take a few milliseconds).
    public init(workspace: Workspace, readingAhead pipeline: String? = nil) throws {
        if let pipeline { documents.prefetch(FileTree.absolute(pipeline, relativeTo: FileTree.currentDirectory)) }
        // The store is opened once, below; opening it here too ran its schema check twice per run.
        try workspace.createDirectories()
        self.workspace = workspace
        let metadata = try workspace.openMetadataStore()
        self.metadata = metadata
        self.previousRuns = Prefetches { PreviousRun(metadata: metadata, pipeline: $0) }
        self.store = try workspace.openArtifactStore()
        (store as? LocalArtifactStore)?.removeAbandonedStaging()
        (store as? RemoteArtifactStore)?.cache.removeAbandonedStaging()
        self.fingerprinter = Fingerprinter(statCache: StatCache(file: workspace.statCachePath))
        self.builder = BundleBuilder(metadata: metadata, store: store)
        self.workDirectories = WorkDirectoryPool(store: store)
        self.pythonRuntimes = PythonRuntimes(root: workspace.stateDirectory + "/venvs")
    }

    /// Records as interrupted the runs still marked running whose process on this machine is
    /// gone (killed with SIGKILL, or the machine lost power), so they do not stay "running".
    func closeAbandonedRuns() {
        guard let runs = try? metadata.runningRuns(host: HostEnvironment.hostName) else { return }
        for run in runs {
            guard let pid = run.pid, kill(pid_t(pid), 0) != 0, errno == ESRCH else { continue }
            try? metadata.finishRun(id: run.id, state: .canceled, endedAt: Date())
        }
    }

    /// A new run id: UTC time and a random suffix, sortable and unique enough to type a prefix of.
    static func makeRunID(at date: Date) -> String {
        // With the C library's calendar: a DateFormatter (ICU) took over a millisecond to set up.
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var utc = tm()
        gmtime_r(&seconds, &utc)
        var stamp = [CChar](repeating: 0, count: 16)
        strftime(&stamp, stamp.count, "%Y%m%d-%H%M%S", &utc)
        let suffix = String(UInt32.random(in: 0...0xff_ffff), radix: 16)
        return CStrings.string(from: stamp) + "-" + String(repeating: "0", count: 6 - suffix.count) + suffix
    }

    /// Runs a validated pipeline. Cancelling the calling task stops running steps, publishes nothing
    /// partial and records the run as canceled.
    public func run(_ graph: PipelineGraph, options: RunOptions, observer: @escaping @Sendable (RunEvent) -> Void = { _ in }) async throws -> RunSummary {
        let started = Date()
        let runID = Self.makeRunID(at: started)
        let selected: Set<String> = options.only.isEmpty ? Set(graph.steps.map(\.name)) : graph.upstreamClosure(of: options.only)
        for name in options.only where graph[step: name] == nil {
            throw FingerprintError(message: "--only \(name): the pipeline has no step '\(name)' (steps: \(graph.steps.map(\.name).joined(separator: ", ")))")
        }
        let steps = graph.steps.filter { selected.contains($0.name) }
        // The previous run and git, started when the file was read, overlap with snapshotting
        // the sources and hashing the spec.
        try await snapshotSources(
            of: steps, pipelineDirectory: graph.spec.directory, dataLimit: SourceSnapshots.dataLimit(options.hostEnvironment))
        closeAbandonedRuns()
        let specDigest = graph.specDigest
        let previousRun = await previousRuns.take(graph.spec.name)
        let git = await gitStates.take(graph.spec.directory)
        try metadata.startRun(
            NewRun(
                id: runID, pipeline: graph.spec.name, specDigest: specDigest, spec: graph.spec.document.root,
                pipelineFile: graph.spec.file, startedAt: started, gitCommit: git?.commit, gitDirty: git?.dirty, gitDiff: git?.diff,
                environment: HostEnvironment.current.json, workspace: workspace.root,
                host: HostEnvironment.hostName, pid: Int(getpid())))
        observer(.runStarted(runID: runID, pipeline: graph.spec.name, steps: steps.map(\.name)))
        let logDirectory = workspace.logsDirectory + "/" + runID
        try FileTree.makeDirectory(logDirectory)

        let recordings = RecordingQueue(metadata: metadata)
        let context = RunContext(
            runID: runID, graph: graph, specDigest: specDigest, options: options, logDirectory: logDirectory, observer: observer,
            recordings: recordings, previousRun: previousRun, runtimes: RuntimeVersions(path: options.hostEnvironment["PATH"] ?? "/usr/bin:/bin"))
        var results: [String: StepResult] = [:]
        var remaining = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, Set($0.dependencies).intersection(selected)) })
        // Who waits on whom, so that a step's end looks only at its own dependents, not at every
        // remaining step (500 × 500 set lookups in a fan of 500).
        var dependents: [String: [String]] = [:]
        for (name, dependencies) in remaining {
            for dependency in dependencies { dependents[dependency, default: []].append(name) }
        }
        let order = Dictionary(uniqueKeysWithValues: steps.enumerated().map { ($1.name, $0) })
        var ready = steps.filter { remaining[$0.name]?.isEmpty == true }.map(\.name)
        for name in ready { remaining[name] = nil }

        await withTaskGroup(of: (String, StepResult).self) { group in
            var running = 0
            // Misses of the cache, in pipeline order, waiting for a free job slot.
            var waiting: [PreparedStep] = []
            func finished(_ name: String, _ result: StepResult) {
                results[name] = result
                if result.succeeded {
                    var released: [String] = []
                    for other in dependents[name] ?? [] where remaining[other]?.remove(name) != nil {
                        if remaining[other]?.isEmpty == true { released.append(other) }
                    }
                    for other in released { remaining[other] = nil }
                    ready = Self.merged(ready, released.sorted { (order[$0] ?? 0) < (order[$1] ?? 0) }) { (order[$0] ?? 0) < (order[$1] ?? 0) }
                } else {
                    // Everything downstream of a failure is skipped; independent steps go on.
                    var blocked = [name]
                    while let source = blocked.popLast() {
                        for other in dependents[source] ?? [] where remaining[other] != nil {
                            remaining[other] = nil
                            let reason = result.state == .canceled ? StepState.canceled : .skipped(because: "'\(source)' did not succeed")
                            results[other] = StepResult(state: reason)
                            observer(.stepChanged(step: other, state: reason))
                            blocked.append(other)
                        }
                    }
                }
            }
            // Ready steps are fingerprinted and looked up in the cache in waves (one query each);
            // hits release their dependents into a later wave at once, misses wait for a job
            // slot. Hits are recorded a batch at a time, so the recording queue writes one batch
            // while the next wave is looked up.
            var reuses: [CacheReuse] = []
            func recordReuses() {
                guard !reuses.isEmpty else { return }
                let batch = reuses, recordedAt = Date()
                reuses = []
                recordings.enqueue(steps: batch.map(\.execution.step), waits: false) { writer in
                    let resolved = try batch.map { CacheReuse(try writer.resolved($0.execution), reusing: $0.source) }
                    let ids = try writer.metadata.recordCachedExecutions(resolved, at: recordedAt)
                    for (reuse, id) in zip(batch, ids) { writer.recorded(step: reuse.execution.step, executionID: id) }
                }
            }
            func resolveReady() async {
                while !ready.isEmpty, !Task.isCancelled {
                    let wave = Array(ready.prefix(Self.waveLimit))
                    ready.removeFirst(wave.count)
                    var prepared: [PreparedStep] = []
                    for name in wave {
                        guard let step = graph[step: name] else { continue }
                        var inputs: [String: [ArtifactRecord]] = [:]
                        for (inputName, references) in step.inputs {
                            inputs[inputName] = references.compactMap { results[$0.step]?.outputs[$0.output] }
                        }
                        switch prepare(step, inputs: inputs, context: context) {
                        case .success(let step): prepared.append(step)
                        case .failure(let failure): finished(name, failure.result)
                        }
                    }
                    var missed: [PreparedStep] = []
                    do {
                        let sources = try await cachedSources(for: prepared, previousRun: context.previousRun)
                        for step in prepared {
                            guard let source = sources[step.name] else {
                                missed.append(step)
                                continue
                            }
                            reuses.append(CacheReuse(step.execution, reusing: source))
                            observer(.stepChanged(step: step.name, state: .cached(fromRun: source.runID)))
                            finished(step.name, StepResult(state: .cached(fromRun: source.runID), outputs: source.outputs, cacheKey: step.fingerprint.key))
                        }
                    } catch {
                        for step in prepared {
                            if step.usesCache {
                                finished(step.name, fail(step.name, "cannot consult the cache: \(error)", context: context, key: step.fingerprint.key))
                            } else {
                                missed.append(step)
                            }
                        }
                    }
                    waiting = Self.merged(waiting, missed) { (order[$0.name] ?? 0) < (order[$1.name] ?? 0) }
                    if reuses.count >= Self.recordingBatch { recordReuses() }
                }
                recordReuses()
            }
            func launchWaiting() {
                if recordings.hasFailed {
                    // Nothing more can be recorded: a step started now could never be complete.
                    for step in waiting { finished(step.name, StepResult(state: .skipped(because: "the metadata store failed"))) }
                    waiting.removeAll()
                    return
                }
                while running < options.jobs, !waiting.isEmpty, !Task.isCancelled {
                    let step = waiting.removeFirst()
                    running += 1
                    group.addTask { (step.name, await self.run(step, context: context)) }
                }
            }
            await resolveReady()
            launchWaiting()
            while let (name, result) = await group.next() {
                running -= 1
                finished(name, result)
                await resolveReady()
                launchWaiting()
            }
        }
        let canceled = Task.isCancelled
        let recorded = await recordings.drain()
        for (name, id) in recorded.executionIDs { results[name]?.executionID = id }
        // A step that failed or was canceled stays so; one that succeeded is not complete unrecorded.
        for (name, message) in recorded.failures.sorted(by: { $0.key < $1.key }) where results[name]?.succeeded == true {
            results[name] = fail(name, "cannot record the execution: \(message)", context: context, key: results[name]?.cacheKey)
        }
        for step in steps where results[step.name] == nil {
            let state: StepState = recorded.failures.isEmpty ? .canceled : .skipped(because: "the metadata store failed")
            results[step.name] = StepResult(state: state)
            observer(.stepChanged(step: step.name, state: state))
        }
        try? fingerprinter.save()
        workDirectories.drain()
        if results.values.contains(where: { if case .completed = $0.state { return true } else { return false } }) {
            try? store.flush()
        }
        let failed = results.values.contains { if case .failed = $0.state { return true } else { return false } }
        let state: RunState = canceled || results.values.contains { $0.state == .canceled } ? .canceled : failed ? .failed : .complete
        let ended = Date()
        // The runtimes' versions were asked while the steps ran (a `python3 --version` through a
        // version manager's shim can take 150 ms); they join the recorded environment now.
        let runtimes = await context.runtimes.versions()
        var environment: JSONValue?
        if !runtimes.isEmpty, var facts = HostEnvironment.current.json.objectValue {
            facts["runtimes"] = .object(runtimes.mapValues { .string($0) })
            environment = .object(facts)
        }
        try metadata.finishRun(id: runID, state: state, endedAt: ended, environment: environment)
        let summary = RunSummary(
            runID: runID, pipeline: graph.spec.name, state: state,
            steps: steps.map { step in
                let result = results[step.name] ?? StepResult(state: .canceled)
                var duration: TimeInterval?
                var failure: StepFailureReport?
                if case .completed(let seconds) = result.state { duration = seconds }
                if case .failed(let report) = result.state { failure = report }
                var reason: String?
                if case .skipped(let because) = result.state { reason = because } else { reason = result.reason }
                return RunSummary.StepSummary(
                    name: step.name, state: result.state.label, executionID: result.executionID, cacheKey: result.cacheKey?.description,
                    duration: duration, reason: reason, failure: failure, outputs: result.outputs.mapValues { $0.digest.description })
            },
            duration: ended.timeIntervalSince(started))
        observer(.runFinished(summary))
        return summary
    }

    /// The executions of a pipeline's latest run, looked up once when a run starts: a re-run
    /// finds most cache hits, and the reasons the other steps run, among them, not with queries
    /// per step (a chain of cached steps made one lookup per step, one after the other).
    struct PreviousRun: Sendable {
        /// The step's complete or cached execution in that run.
        var executions: [String: ReusableExecution] = [:]
        /// Whether the pipeline has run in this store; when not, no step has run in it either.
        var pipelineRan = false

        init() {}

        init(metadata: any MetadataStore, pipeline: String) {
            guard let run = try? metadata.runs(pipeline: pipeline, limit: 1).first else { return }
            pipelineRan = true
            for execution in (try? metadata.reusableExecutions(runID: run.id)) ?? [] {
                executions[execution.step] = execution
            }
        }

        /// The step's execution in that run if it had this cache key: then it is the newest with
        /// the key, found without a query.
        func execution(of step: String, withKey key: Digest) -> ReusableExecution? {
            executions[step].flatMap { $0.cacheKey == key ? $0 : nil }
        }
    }

    /// The most steps looked up in one query.
    static let waveLimit = 100
    /// How many cache hits wait to be recorded together: a chain finds one hit per wave, and
    /// recording them a few dozen at a time overlaps the writes with the lookups that follow
    /// (all at the end left them to be written after the last lookup).
    static let recordingBatch = 25

    /// Two lists in order, merged in order: a step's completion releases a few steps into a
    /// ready list that, in a wide fan-out, holds hundreds (re-sorting it each time was quadratic).
    static func merged<Element>(_ first: [Element], _ second: [Element], by before: (Element, Element) -> Bool) -> [Element] {
        guard !second.isEmpty else { return first }
        var result: [Element] = []
        result.reserveCapacity(first.count + second.count)
        var i = 0, j = 0
        while i < first.count, j < second.count {
            if before(second[j], first[i]) { result.append(second[j]); j += 1 } else { result.append(first[i]); i += 1 }
        }
        result += first[i...]
        result += second[j...]
        return result
    }

    struct RunContext: Sendable {
        var runID: String
        var graph: PipelineGraph
        /// The pipeline's version, hashed once per run (the spec can be large).
        var specDigest: Digest
        var options: RunOptions
        var logDirectory: String
        var observer: @Sendable (RunEvent) -> Void
        /// Where executions are recorded, in the order steps end.
        var recordings: RecordingQueue
        /// What the pipeline's latest run did before this one.
        var previousRun = PreviousRun()
        /// The versions of the interpreters and compilers of the steps that run.
        var runtimes = RuntimeVersions(path: "")
    }

    struct StepResult: Sendable {
        var state: StepState
        var outputs: [String: ArtifactRecord] = [:]
        var executionID: Int64?
        var cacheKey: Digest?
        var reason: String?

        var succeeded: Bool {
            switch state {
            case .completed, .cached: return true
            default: return false
            }
        }
    }

    private func fail(_ step: String, _ message: String, context: RunContext, key: Digest? = nil) -> StepResult {
        let state = StepState.failed(StepFailureReport(message: message, exitCode: nil, errorTail: "", logFile: nil))
        context.observer(.stepChanged(step: step, state: state))
        return StepResult(state: state, cacheKey: key)
    }

    /// A step whose inputs are known and whose cache key is computed: ready to be looked up in
    /// the cache, or run.
    struct PreparedStep: Sendable {
        var step: ResolvedStep
        var inputs: [String: [ArtifactRecord]]
        var fingerprint: StepFingerprint
        var execution: NewExecution
        var name: String { step.name }
        var usesCache: Bool
    }

    /// A step that failed before it could be looked up or run.
    struct PreparationFailure: Error {
        var result: StepResult
    }

    /// Computes a step's cache key and the execution that will record it.
    private func prepare(_ step: ResolvedStep, inputs: [String: [ArtifactRecord]], context: RunContext) -> Result<PreparedStep, PreparationFailure> {
        let graph = context.graph
        let fingerprint: StepFingerprint
        do {
            fingerprint = try StepFingerprint.compute(
                step: step, pipelineDirectory: graph.spec.directory, inputs: inputs, fingerprinter: fingerprinter,
                hostEnvironment: context.options.hostEnvironment)
        } catch {
            return .failure(PreparationFailure(result: fail(step.name, "\(error)", context: context)))
        }
        let execution = NewExecution(
            runID: context.runID, pipeline: graph.spec.name, step: step.name, cacheKey: fingerprint.key, bundle: step.manifest.name,
            bundleVersion: step.manifest.version, bundleDigest: fingerprint.ingredients.action.bundleDigest, config: .object(step.config),
            keyIngredients: fingerprint.ingredients.json, startedAt: Date(), inputs: inputs)
        return .success(
            PreparedStep(
                step: step, inputs: inputs, fingerprint: fingerprint, execution: execution,
                usesCache: context.options.useCache && step.cache))
    }

    /// The executions whose outputs the steps of a wave can reuse, by step. Steps without one
    /// must run.
    private func cachedSources(for wave: [PreparedStep], previousRun: PreviousRun) async throws -> [String: ReusableExecution] {
        let candidates = wave.filter(\.usesCache)
        guard !candidates.isEmpty else { return [:] }
        var newest: [Digest: ReusableExecution] = [:]
        var unknown: [Digest] = []
        for step in candidates {
            let key = step.fingerprint.key
            if let earlier = previousRun.execution(of: step.name, withKey: key) { newest[key] = earlier } else { unknown.append(key) }
        }
        if !unknown.isEmpty {
            newest.merge(try metadata.newestExecutions(withCacheKeys: unknown)) { known, _ in known }
        }
        let candidatesByKey = newest
        // Checking that outputs are still in the store is a walk of a folder, or a request to a
        // bucket: a few at a time.
        return try await withThrowingTaskGroup(of: (String, ReusableExecution?).self) { group in
            var sources: [String: ReusableExecution] = [:]
            for (index, step) in candidates.enumerated() {
                if index >= 16, let (name, source) = try await group.next() { sources[name] = source }
                group.addTask {
                    let key = step.fingerprint.key
                    return (step.name, try await self.cachedExecution(for: key, newest: candidatesByKey[key], outputs: Set(step.step.manifest.outputs.keys)))
                }
            }
            for try await (name, source) in group { sources[name] = source }
            return sources
        }
    }

    /// Runs a step the cache did not satisfy. Never throws: every problem becomes the step's failure.
    private func run(_ prepared: PreparedStep, context: RunContext) async -> StepResult {
        let graph = context.graph
        let step = prepared.step, inputs = prepared.inputs, fingerprint = prepared.fingerprint, key = fingerprint.key
        var newExecution = prepared.execution
        newExecution.startedAt = Date()
        let reason = missReasons(
            step: step, spec: graph.spec, ingredients: fingerprint.ingredients, useCache: context.options.useCache, previousRun: context.previousRun)
            .joined(separator: "; ")
        if Task.isCancelled {
            context.observer(.stepChanged(step: step.name, state: .canceled))
            return StepResult(state: .canceled, cacheKey: key)
        }

        // A bundle's Python environment (python: {requirements:}) is made once per requirements
        // digest; what it resolved to is recorded with the execution, not keyed on.
        if step.manifest.pythonRequirements != nil {
            do {
                let runtime = try await pythonRuntime(for: step, context: context)
                if case .object(var ingredients) = newExecution.keyIngredients {
                    ingredients["runtime"] = runtime.description
                    newExecution.keyIngredients = .object(ingredients)
                }
            } catch {
                return fail(step.name, "\(error)", context: context, key: key)
            }
        }
        let recorder = ExecutionRecorder(recordings: context.recordings, execution: newExecution)
        await context.runtimes.note(step.manifest)
        var launched: Launched
        var attempt = 1
        while true {
            switch await launch(step, inputs: inputs, fingerprint: fingerprint, context: context, beforeStart: {
                recorder.startTimer()
                context.observer(.stepChanged(step: step.name, state: .handed(to: context.options.backend, reason: reason)))
            }) {
            case .success(let value): launched = value
            case .failure(let report):
                context.observer(.stepChanged(step: step.name, state: .failed(report)))
                return StepResult(state: .failed(report), cacheKey: key)
            }
            // `retries:` gives a failed step more attempts; an interrupted run or a step that
            // damaged its input is not retried.
            guard case .failure(let failure) = launched.result.outcome, attempt <= step.retries, failure != .canceled, !Task.isCancelled
            else { break }
            if case .modifiedInput = failure { break }
            workDirectories.release(launched.workDirectory)
            launched.jobDirectory?.remove()
            attempt += 1
            let again = "attempt \(attempt) of \(step.retries + 1) after: \(failure)"
            context.observer(.stepChanged(step: step.name, state: .handed(to: context.options.backend, reason: again)))
        }
        if attempt > 1 { launched.details["attempts"] = .int(Int64(attempt)) }
        recorder.build = launched.build
        recorder.jobDirectory = launched.jobDirectory
        let workDirectory = launched.workDirectory, result = launched.result
        // A step that wrote nothing to stderr has no log.
        let logFile = result.wroteLog ? launched.logFile : nil
        defer { workDirectories.release(workDirectory) }
        switch result.outcome {
        case .success(let success):
            do {
                var outputs: [String: ArtifactRecord] = [:]
                let now = Date()
                for (name, spec) in step.manifest.outputs.sorted(by: { $0.key < $1.key }) {
                    let stored: StoredArtifact
                    if let published = launched.published {
                        stored = try await verifiedPublished(published, output: name)
                    } else {
                        stored = try await store.publish(stagedDirectory: StepLaunch.outputsDirectory(in: workDirectory) + "/" + name)
                    }
                    outputs[name] = ArtifactRecord(
                        type: spec.type, uri: stored.uri, digest: stored.digest, size: stored.size, fileCount: stored.fileCount,
                        properties: success.response.outputs[name] ?? [:], createdAt: now)
                }
                // Only now, with every output published, is the execution complete.
                let recorded = recorder.finish(
                    ExecutionOutcome(
                        state: .complete, endedAt: Date(), exitCode: result.exitCode.map(Int.init), logURI: logFile,
                        message: success.response.message, metrics: success.response.metrics, outputs: outputs,
                        peakMemoryBytes: result.usage?.peakMemoryBytes, cpuSeconds: result.usage?.cpuSeconds, backend: .object(launched.details)))
                context.observer(.stepChanged(step: step.name, state: .completed(duration: result.duration)))
                return StepResult(state: .completed(duration: result.duration), outputs: recorded, cacheKey: key, reason: reason)
            } catch {
                recorder.finish(ExecutionOutcome(state: .failed, endedAt: Date(), exitCode: result.exitCode.map(Int.init), logURI: logFile, message: "\(error)"))
                return fail(step.name, "cannot publish the outputs: \(error)", context: context, key: key)
            }
        case .failure(let failure):
            let state: ExecutionState = failure == .canceled ? .canceled : .failed
            recorder.finish(
                ExecutionOutcome(
                    state: state, endedAt: Date(), exitCode: result.exitCode.map(Int.init), logURI: logFile, message: failure.description,
                    peakMemoryBytes: result.usage?.peakMemoryBytes, cpuSeconds: result.usage?.cpuSeconds, backend: .object(launched.details)))
            if case .modifiedInput(let path) = failure {
                // The artifact no longer has its digest: take it out of the store so no cache hit reuses it.
                try? FileTree.remove(path)
            }
            if failure == .canceled {
                context.observer(.stepChanged(step: step.name, state: .canceled))
                return StepResult(state: .canceled, cacheKey: key)
            }
            let report = StepFailureReport(message: failure.description, exitCode: result.exitCode, errorTail: result.errorTail, logFile: logFile)
            context.observer(.stepChanged(step: step.name, state: .failed(report)))
            return StepResult(state: .failed(report), cacheKey: key)
        }
    }

    func pythonRuntime(for step: ResolvedStep, context: RunContext) async throws -> PythonRuntimes.Environment {
        try await pythonRuntimes.environment(
            bundlePath: step.bundlePath, manifest: step.manifest, hostEnvironment: context.options.hostEnvironment,
            logFile: context.logDirectory + "/python-\(step.manifest.name).log")
    }

    /// A step process that ran, successfully or not, in a work directory the caller releases.
    struct Launched {
        var result: StepRunResult
        var workDirectory: String
        var logFile: String
        /// Where it ran: the backend's details (job id, node, queue wait).
        var details: [String: JSONValue]
        /// The outputs the backend's worker published (``StepBackend/stagesArtifactsOnNode``).
        var published: [String: StoredArtifact]? = nil
        /// The job's directory (under one named by cache key), removed once the execution is
        /// recorded (``ExecutionRecorder/jobDirectory``).
        var jobDirectory: HeldJobDirectory? = nil
        /// The recorded build the process ran, for a bundle with a `build:` command.
        var build: ArtifactRecord? = nil
    }

    /// Builds the bundle if it has a `build:` command, writes the request and runs the step
    /// process on `inputs`. `beforeStart` runs once everything is ready, just before the process.
    func launch(
        _ step: ResolvedStep, inputs: [String: [ArtifactRecord]], fingerprint: StepFingerprint, context: RunContext,
        beforeStart: () -> Void
    ) async -> Result<Launched, StepFailureReport> {
        let graph = context.graph
        let key = fingerprint.key
        let bundleDigest = fingerprint.ingredients.action.bundleDigest
        func failure(_ message: String) -> Result<Launched, StepFailureReport> {
            .failure(StepFailureReport(message: message, exitCode: nil, errorTail: "", logFile: nil))
        }
        var build: BundleBuilder.Output?
        if step.manifest.build != nil {
            do {
                build = try await builder.output(
                    bundlePath: step.bundlePath, manifest: step.manifest, bundleDigest: bundleDigest, runID: context.runID,
                    pipeline: graph.spec.name, logDirectory: context.logDirectory, hostEnvironment: context.options.hostEnvironment,
                    backend: context.options.backend, resources: step.resources)
            } catch let failure as BundleBuilder.Failure {
                return .failure(StepFailureReport(message: failure.message, exitCode: nil, errorTail: failure.errorTail, logFile: failure.logFile))
            } catch {
                return failure("cannot build the bundle: \(error)")
            }
        }
        // The bundle's Python environment (made once; here only looked up again, see execute()).
        var hostEnvironment = context.options.hostEnvironment
        if step.manifest.pythonRequirements != nil {
            do {
                hostEnvironment = PythonRuntimes.environment(hostEnvironment, with: try await pythonRuntime(for: step, context: context))
            } catch {
                return failure("\(error)")
            }
        }
        let workDirectory: String
        do {
            workDirectory = try workDirectories.acquire()
        } catch {
            return failure("cannot prepare the step: \(error)")
        }
        let logFile = context.logDirectory + "/" + step.name + ".log"
        let request: StepRequest
        let stagesOnNode = context.options.backend.stagesArtifactsOnNode
        var nodeStaging: NodeStaging?
        do {
            if stagesOnNode {
                var staging = try workspace.nodeStaging(for: key, run: context.runID, step: step.name)
                // A forced run (`--no-cache`, `cache: false`) adopts no earlier job's result.
                staging.adoptsEarlierJobs = context.options.useCache && step.cache
                nodeStaging = staging
            }
            let outputs = StepLaunch.outputsDirectory(in: workDirectory)
            let scratch = StepLaunch.scratchDirectory(in: workDirectory)
            var outputDirectories: [String: StepRequest.OutputDirectory] = [:]
            for (name, spec) in step.manifest.outputs {
                try FileTree.makeDirectory(outputs + "/" + name)
                outputDirectories[name] = StepRequest.OutputDirectory(path: outputs + "/" + name, type: spec.type)
            }
            var requestInputs: [String: [StepRequest.InputArtifact]] = [:]
            for (name, artifacts) in inputs {
                var resolved: [StepRequest.InputArtifact] = []
                for artifact in artifacts {
                    if stagesOnNode {
                        // The worker fetches it on the node and puts its local path in the request.
                        resolved.append(StepRequest.InputArtifact(path: artifact.uri, type: artifact.type, digest: artifact.digest.description, properties: artifact.properties))
                        continue
                    }
                    guard let path = try await store.localPath(of: artifact.digest) else { throw ArtifactStoreError.missing(artifact.digest) }
                    resolved.append(StepRequest.InputArtifact(path: path, type: artifact.type, digest: artifact.digest.description, properties: artifact.properties))
                }
                requestInputs[name] = resolved
            }
            request = StepRequest(
                pipeline: .init(name: graph.spec.name, version: context.specDigest.description), run: .init(id: context.runID),
                step: .init(name: step.name, bundle: step.manifest.name, bundleVersion: step.manifest.version, bundleDigest: bundleDigest.description, cacheKey: key.description),
                config: fingerprint.requestConfig, inputs: requestInputs, outputs: outputDirectories, scratch: scratch,
                seed: StepAction.seed(for: key))
        } catch {
            workDirectories.release(workDirectory)
            return failure("cannot prepare the step: \(error)")
        }
        beforeStart()
        var launch = StepLaunch(
            bundlePath: step.bundlePath, manifest: step.manifest, request: request, workDirectory: workDirectory, logFile: logFile,
            timeout: step.timeout, hostEnvironment: hostEnvironment, buildPath: build?.path)
        launch.resources = step.resources
        launch.nodeStaging = nodeStaging
        let backend = context.options.backend
        let ran = await backend.run(launch, step: step.name) { status in
            let state: StepState
            switch status.phase {
            case .pending: state = .pending(since: status.since, reason: status.detail)
            case .running: state = .running(since: status.since, reason: status.detail)
            }
            context.observer(.stepChanged(step: step.name, state: state))
        }
        var details = ran.details
        details["backend"] = .string(backend.name)
        return .success(
            Launched(
                result: ran.result, workDirectory: workDirectory, logFile: logFile, details: details, published: ran.published,
                jobDirectory: ran.heldJobDirectory, build: build?.artifact))
    }

    /// A completed or cached execution with this key whose outputs are all still in the store; the
    /// step's execution in the previous run, when it had the key, is looked at without a query.
    func cachedExecution(for key: Digest, step: String, previousRun: PreviousRun, outputs: Set<String>) async throws -> ReusableExecution? {
        let newest = try previousRun.execution(of: step, withKey: key) ?? metadata.newestExecutions(withCacheKeys: [key])[key]
        return try await cachedExecution(for: key, newest: newest, outputs: outputs)
    }

    /// As above, with the newest execution with the key already looked up (with its wave).
    func cachedExecution(for key: Digest, newest: ReusableExecution?, outputs: Set<String>) async throws -> ReusableExecution? {
        // Every cached re-run adds an execution with the same key: the newest, looked up with its
        // wave, is nearly always intact; older ones are loaded only when it is not.
        guard let newest else { return nil }
        if try await isReusable(newest, outputs: outputs) { return newest }
        for candidate in try metadata.executions(withCacheKey: key, limit: 5).dropFirst().compactMap(ReusableExecution.init) {
            if try await isReusable(candidate, outputs: outputs) { return candidate }
        }
        return nil
    }

    private func isReusable(_ candidate: ReusableExecution, outputs: Set<String>) async throws -> Bool {
        guard Set(candidate.outputs.keys) == outputs else { return false }
        for artifact in candidate.outputs.values {
            let stored = StoredArtifact(digest: artifact.digest, uri: artifact.uri, size: artifact.size, fileCount: artifact.fileCount)
            guard try await store.isIntact(stored) else { return false }
        }
        return true
    }

    /// Why a step runs (it has no cache hit), compared with its latest successful execution in
    /// this pipeline, or for a copy that never ran it, in the pipeline it copies. `run` shows
    /// these while the step runs; `status` lists them.
    func missReasons(step: ResolvedStep, spec: PipelineSpec, ingredients: KeyIngredients, useCache: Bool, previousRun: PreviousRun? = nil) -> [String] {
        if !useCache { return ["--no-cache"] }
        if !step.cache { return ["cache: false"] }
        let base = spec.document.root["base"]?.stringValue.flatMap { $0.split(separator: "@").first.map(String.init) }
        for pipeline in [spec.name] + [base].compactMap({ $0 }) {
            let latest: JSONValue?
            if pipeline == spec.name, let previousRun, previousRun.executions[step.name] != nil || !previousRun.pipelineRan {
                latest = try? previousRun.executions[step.name].map { try metadata.keyIngredients(executionID: $0.id) }
            } else {
                latest = (try? metadata.latestExecution(pipeline: pipeline, step: step.name))?.keyIngredients
            }
            guard let previous = latest else { continue }
            let changes = ingredients.changes(since: previous)
            guard !changes.isEmpty else { return ["outputs of the previous run are missing from the store"] }
            return pipeline == spec.name ? changes : ["vs pipeline \(pipeline): " + changes[0]] + changes.dropFirst()
        }
        return ["never ran in this workspace"]
    }
}
