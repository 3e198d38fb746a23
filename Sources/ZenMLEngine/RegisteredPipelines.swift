import Foundation
import ZenMLCore
import ZenMLMetadata
import ZenMLPipeline

/// The pipelines a workspace has run, as registered in its metadata store: each name with its
/// immutable versions (one per distinct spec).
public struct RegisteredPipelines: Sendable {
    let metadata: any MetadataStore
    /// The workspace reading them: a base registered from another member's checkout is read from
    /// the same place in this one.
    let workspaceRoot: String?

    public init(metadata: any MetadataStore, workspaceRoot: String? = nil) {
        self.metadata = metadata
        self.workspaceRoot = workspaceRoot
    }

    /// A registered pipeline version by reference: `NAME` (its newest version) or `NAME@VERSION`,
    /// where VERSION is a prefix of the spec digest (as `pipelines show` prints it).
    public func version(_ reference: String) throws -> (pipeline: PipelineRecord, version: PipelineVersionRecord)? {
        let parts = reference.split(separator: "@", maxSplits: 1).map(String.init)
        guard let name = parts.first, let pipeline = try metadata.pipelines().first(where: { $0.name == name }) else { return nil }
        guard parts.count == 2 else { return pipeline.versions.last.map { (pipeline, $0) } }
        let prefix = parts[1].hasPrefix("sha256:") ? String(parts[1].dropFirst(7)) : parts[1]
        let matches = pipeline.versions.filter { $0.specDigest.hex.hasPrefix(prefix.lowercased()) }
        guard matches.count <= 1 else { throw PipelineSourceError.ambiguousVersion(reference, count: matches.count) }
        return matches.first.map { (pipeline, $0) }
    }

    /// Resolves `base:` references to registered pipelines.
    ///
    /// A base's relative `uses:` and data paths start from its registered file's folder, found in
    /// this workspace (``localFile(_:of:version:)``). A teammate whose checkout is elsewhere (or who
    /// has none) has no such file: the base is then the version's newest complete run with every
    /// bundle and data file pinned to the copies the stores keep (what `pipelines export` writes),
    /// so a copy reads the same bytes, keeps the base's cache keys, and needs no checkout at the
    /// path of whoever registered it.
    public var resolver: BasePipelineResolver {
        let registered = self
        return { reference in
            guard let (pipeline, version) = try registered.version(reference) else { return nil }
            guard let file = version.file else { throw PipelineSourceError.noFile(reference) }
            let local = registered.localFile(file, of: reference, version: version)
            let directory = (local as NSString).deletingLastPathComponent
            if (try? FileStatus.of(local, followingLinks: true)) == nil,
               let run = try registered.metadata.runs(pipeline: pipeline.name, limit: 100)
                   .first(where: { $0.specDigest == version.specDigest && $0.state == .complete }) {
                return BasePipeline(root: try registered.pinnedSpec(of: run, spec: version.spec), directory: directory)
            }
            return BasePipeline(root: version.spec, directory: directory)
        }
    }

    /// A run's pipeline spec with every bundle and data file that the stores keep a copy of
    /// pinned by digest (`sha256:…`, see ``SourceSnapshots``): the digests that entered its cache
    /// keys, so that the pinned spec keeps them. Steps the run did not execute (`--only`) are left
    /// out, and so is `base:` (the spec is already composed).
    func pinnedSpec(of run: RunRecord, spec: JSONValue) throws -> JSONValue {
        let executions = Dictionary(try metadata.executions(runID: run.id).map { ($0.step, $0) }, uniquingKeysWith: { _, last in last })
        guard var root = spec.objectValue, var steps = root["steps"]?.objectValue else {
            throw PipelineSourceError.noFile(run.pipeline)
        }
        for (name, value) in steps {
            guard var step = value.objectValue, let execution = executions[name] else {
                steps.removeValue(forKey: name)
                continue
            }
            if let digest = execution.bundleDigest, try metadata.snapshot(type: SourceSnapshots.bundleType, key: digest) != nil {
                step["uses"] = .string(digest.description)
            }
            var config = step["config"]?.objectValue ?? [:]
            let keyConfig = execution.keyIngredients["key"]?["config"]?.objectValue ?? [:]
            for key in (execution.keyIngredients["external_paths"]?.objectValue ?? [:]).keys {
                if let text = keyConfig[key]?.stringValue, let digest = Digest(text),
                   try metadata.snapshot(type: SourceSnapshots.dataType, key: digest) != nil {
                    config[key] = .string(digest.description)
                }
            }
            if !config.isEmpty { step["config"] = .object(config) }
            steps[name] = .object(step)
        }
        root["steps"] = .object(steps)
        root.removeValue(forKey: "base")
        return .object(root)
    }

    /// Where a registered pipeline file is in this workspace. The store records the path in the
    /// checkout of whoever ran it (`/home/alice/project/pipelines/a.yaml`); a teammate sharing the
    /// store has the project elsewhere, so the path is moved from the workspace the run recorded
    /// to this one when the file is there (`/home/bob/src/project/pipelines/a.yaml`).
    func localFile(_ file: String, of reference: String, version: PipelineVersionRecord) -> String {
        guard let workspaceRoot, let name = reference.split(separator: "@").first.map(String.init),
            let runs = try? metadata.runs(pipeline: name, limit: 100),
            let registering = runs.first(where: { $0.specDigest == version.specDigest && $0.pipelineFile == file })?.workspace,
            registering != workspaceRoot, file.hasPrefix(registering + "/")
        else { return file }
        let moved = workspaceRoot + file.dropFirst(registering.count)
        return (try? FileStatus.of(moved)?.kind) == .file ? moved : file
    }

    /// Reads a pipeline file, whose `base:` may name a pipeline registered here.
    public func load(_ path: String) throws -> PipelineGraph {
        try PipelineGraph.resolve(PipelineSpec.load(path, resolveBase: resolver))
    }

}

/// Why a registered pipeline could not serve as a base.
public enum PipelineSourceError: Error, CustomStringConvertible, Sendable {
    case ambiguousVersion(String, count: Int)
    case noFile(String)

    public var description: String {
        switch self {
        case .ambiguousVersion(let reference, let count):
            return "'\(reference)' matches \(count) versions; give more digits of the version (see 'zenml-run pipelines show NAME')"
        case .noFile(let reference):
            return "pipeline '\(reference)' was registered without its file's location, so its relative bundle paths cannot be found"
        }
    }
}
