import Foundation
import ZenMLCore
import ZenMLMetadata
import ZenMLPipeline

/// The pipelines a workspace has run, as registered in its metadata store: each name with its
/// immutable versions (one per distinct spec).
public struct RegisteredPipelines: Sendable {
    let metadata: any MetadataStore

    public init(metadata: any MetadataStore) {
        self.metadata = metadata
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
    public var resolver: BasePipelineResolver {
        let registered = self
        return { reference in
            guard let (_, version) = try registered.version(reference) else { return nil }
            guard let file = version.file else { throw PipelineSourceError.noFile(reference) }
            return BasePipeline(root: version.spec, directory: (file as NSString).deletingLastPathComponent)
        }
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
