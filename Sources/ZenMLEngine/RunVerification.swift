import Foundation
import ZenMLCache
import ZenMLContract
import ZenMLCore
import ZenMLExecutor
import ZenMLMetadata
import ZenMLPipeline
import ZenMLTFRecord

/// Whether each step of a past run gives the same outputs when executed again.
public struct VerificationReport: Codable, Sendable {
    public enum Verdict: String, Codable, Sendable {
        /// Every output has its recorded digest (or the same TFRecord records).
        case reproducible
        /// At least one output differs.
        case differs
        /// The step failed when executed again.
        case failed
        /// The step could not be executed as recorded (its bundle, config data or inputs changed or are gone).
        case skipped
    }

    public struct Output: Codable, Sendable {
        public var name: String
        public var recorded: String
        public var actual: String
        /// Files whose content differs, is missing or is new, relative to the artifact.
        public var differingFiles: [String]
        /// For TFRecord outputs that differ as files: whether the records are the same anyway
        /// (another compression or sharding), else where the first difference is.
        public var sameRecords: Bool?
        public var firstDifferingRecord: String?
    }

    public struct Step: Codable, Sendable {
        public var name: String
        public var verdict: Verdict
        public var message: String?
        public var outputs: [Output]
    }

    public var runID: String
    public var pipeline: String
    public var steps: [Step]

    public var isReproducible: Bool { steps.allSatisfy { $0.verdict == .reproducible } }
}

extension PipelineRunner {
    /// Executes every step of a past run again, each on the inputs that run gave it (so one
    /// non-deterministic step does not make the steps after it look non-deterministic), ignoring
    /// the cache and publishing nothing, and compares the outputs with the recorded ones.
    public func verify(runID reference: String, onStep: @escaping @Sendable (String, VerificationReport.Verdict?) -> Void = { _, _ in }) async throws -> VerificationReport {
        guard let run = try metadata.run(id: reference) else { throw InspectorError.unknownRun(reference) }
        let graph = try await recordedGraph(of: run)
        let executions = try metadata.executions(runID: run.id).filter { $0.state == .complete || $0.state == .cached }
        let byStep = Dictionary(executions.map { ($0.step, $0) }, uniquingKeysWith: { _, last in last })
        let logDirectory = workspace.logsDirectory + "/verify-" + run.id + "-" + Self.makeRunID(at: Date())
        try FileTree.makeDirectory(logDirectory)
        let context = RunContext(
            runID: run.id, graph: graph, specDigest: graph.specDigest, options: RunOptions(useCache: false), logDirectory: logDirectory,
            observer: { _ in }, recordings: RecordingQueue(metadata: metadata))
        var report = VerificationReport(runID: run.id, pipeline: run.pipeline, steps: [])
        for step in graph.steps {
            guard let execution = byStep[step.name] else { continue }
            onStep(step.name, nil)
            let result = await verify(step, execution: execution, context: context)
            onStep(step.name, result.verdict)
            report.steps.append(result)
        }
        return report
    }

    /// The spec a run's pipeline version recorded, and the file it was read from.
    func recordedSpec(of run: RunRecord) throws -> (root: JSONValue, file: String) {
        guard let version = try metadata.pipelines().first(where: { $0.name == run.pipeline })?.versions.first(where: { $0.specDigest == run.specDigest }),
              let file = version.file ?? run.pipelineFile
        else {
            throw PipelineSourceError.noFile(run.pipeline)
        }
        return (version.spec, file)
    }

    /// The graph of a run's pipeline version, from the recorded spec (its bundles must still be there).
    func recordedGraph(of run: RunRecord) async throws -> PipelineGraph {
        let (root, file) = try recordedSpec(of: run)
        // Registry bundles resolve through the zenml.lock beside the pipeline file, as for runs.
        return try await BundleSources(workspace: workspace).graph(PipelineSpec.parse(YAMLDocument(merged: root, file: file, layers: []), file: file))
    }

    private func verify(_ step: ResolvedStep, execution: ExecutionRecord, context: RunContext) async -> VerificationReport.Step {
        func verdict(_ verdict: VerificationReport.Verdict, _ message: String?, _ outputs: [VerificationReport.Output] = []) -> VerificationReport.Step {
            VerificationReport.Step(name: step.name, verdict: verdict, message: message, outputs: outputs)
        }
        let fingerprint: StepFingerprint
        do {
            fingerprint = try StepFingerprint.compute(
                step: step, pipelineDirectory: context.graph.spec.directory, inputs: execution.inputs, fingerprinter: fingerprinter,
                hostEnvironment: context.options.hostEnvironment)
        } catch {
            return verdict(.skipped, "\(error)")
        }
        if fingerprint.key != execution.cacheKey {
            let changes = KeyIngredients.changes(from: execution.keyIngredients, to: fingerprint.ingredients.json)
            return verdict(.skipped, "cannot execute it as recorded: " + changes.joined(separator: "; "))
        }
        let launched: Launched
        switch await launch(step, inputs: execution.inputs, fingerprint: fingerprint, context: context, beforeStart: {}) {
        case .success(let value): launched = value
        case .failure(let report): return verdict(.failed, report.message)
        }
        defer { workDirectories.release(launched.workDirectory) }
        guard case .success = launched.result.outcome else {
            if case .failure(let failure) = launched.result.outcome { return verdict(.failed, "\(failure.description) (log: \(launched.logFile))") }
            return verdict(.failed, nil)
        }
        var outputs: [VerificationReport.Output] = []
        var allSame = true
        for (name, recorded) in execution.outputs.sorted(by: { $0.key < $1.key }) {
            let directory = StepLaunch.outputsDirectory(in: launched.workDirectory) + "/" + name
            do {
                let tree = try TreeDigest.compute(root: directory)
                var output = VerificationReport.Output(name: name, recorded: recorded.digest.description, actual: tree.digest.description, differingFiles: [])
                if tree.digest != recorded.digest {
                    if let recordedPath = try await store.localPath(of: recorded.digest) {
                        output.differingFiles = try OutputComparison.differingFiles(recordedPath, directory)
                        let records = OutputComparison.compareRecords(recordedPath, directory)
                        output.sameRecords = records.comparable ? records.firstDifference == nil : nil
                        output.firstDifferingRecord = records.firstDifference
                        if output.sameRecords != true || !output.differingFiles.allSatisfy(OutputComparison.isTFRecord) { allSame = false }
                    } else {
                        allSame = false
                        output.differingFiles = ["(the recorded artifact is no longer in the store)"]
                    }
                }
                outputs.append(output)
            } catch {
                return verdict(.failed, "cannot read output \(name): \(error)", outputs)
            }
        }
        if allSame {
            let recoded = outputs.contains { $0.sameRecords == true }
            return verdict(.reproducible, recoded ? "same records; the TFRecord files are encoded differently (compression or sharding)" : nil, outputs)
        }
        let files = outputs.flatMap { output in output.differingFiles.map { output.name + "/" + $0 } }
        return verdict(.differs, "differs in " + files.joined(separator: ", "), outputs)
    }
}

/// File- and record-level comparison of two versions of an artifact.
enum OutputComparison {
    static func isTFRecord(_ path: String) -> Bool {
        path.hasSuffix(".tfrecord") || path.hasSuffix(".tfrecord.gz") || path.hasSuffix(".tfrecord.zlib")
    }

    /// Paths whose digest, kind or presence differs.
    static func differingFiles(_ recorded: String, _ actual: String) throws -> [String] {
        func index(_ root: String) throws -> [String: String] {
            Dictionary(try TreeDigest.compute(root: root).entries.map { ($0.path, "\($0.kind)|\($0.digest?.description ?? $0.target ?? "")") },
                       uniquingKeysWith: { first, _ in first })
        }
        let before = try index(recorded), after = try index(actual)
        return Set(before.keys).union(after.keys).filter { before[$0] != after[$0] && !(before[$0]?.hasPrefix("directory") ?? false) }.sorted()
    }

    /// The TFRecord streams of an artifact: files grouped by folder and shard prefix, in shard order.
    static func streams(_ root: String) -> [String: [String]] {
        guard let entries = try? TreeDigest.compute(root: root).entries else { return [:] }
        var streams: [String: [String]] = [:]
        for entry in entries where entry.kind == .file && isTFRecord(entry.path) {
            var name = entry.path
            if let range = name.range(of: #"-\d{5}-of-\d{5}\.tfrecord"#, options: .regularExpression) {
                name = String(name[..<range.lowerBound])
            } else if let range = name.range(of: ".tfrecord") {
                name = String(name[..<range.lowerBound])
            }
            streams[name, default: []].append(root + "/" + entry.path)
        }
        return streams.mapValues { $0.sorted() }
    }

    /// Compares the records of two artifacts' TFRecord streams; `comparable` is false when either
    /// has none or they have different streams.
    static func compareRecords(_ recorded: String, _ actual: String) -> (comparable: Bool, firstDifference: String?) {
        let before = streams(recorded), after = streams(actual)
        guard !before.isEmpty, Set(before.keys) == Set(after.keys) else { return (false, nil) }
        for name in before.keys.sorted() {
            let a = ShardedReader(paths: before[name] ?? []), b = ShardedReader(paths: after[name] ?? [])
            var index = 0
            while true {
                let x: Data?, y: Data?
                do {
                    x = try a.next()
                    y = try b.next()
                } catch {
                    return (true, "\(name): record \(index) cannot be read: \(error)")
                }
                if x == nil && y == nil { break }
                if x != y {
                    if x == nil { return (true, "\(name): record \(index) is new") }
                    if y == nil { return (true, "\(name): record \(index) and later are missing") }
                    return (true, "\(name): record \(index) differs")
                }
                index += 1
            }
        }
        return (true, nil)
    }

    /// Reads the records of several TFRecord files in order, whatever their compression.
    final class ShardedReader {
        let paths: [String]
        var index = 0
        var current: TFRecordReader?

        init(paths: [String]) { self.paths = paths }

        func next() throws -> Data? {
            while index < paths.count {
                let reader = try current ?? TFRecordReader(path: paths[index])
                current = reader
                if let record = try reader.next() { return record }
                current = nil
                index += 1
            }
            return nil
        }
    }
}
