import Foundation
import ZenMLArtifacts
import ZenMLCore
import ZenMLMetadata

/// Read-only views of a workspace's records, for the CLI's listings.
public struct Inspector: Sendable {
    public let metadata: any MetadataStore
    public let store: any ArtifactStore

    public init(workspace: Workspace) throws {
        guard workspace.exists else {
            throw InspectorError.noWorkspace(workspace.root)
        }
        metadata = try workspace.openMetadataStore()
        store = try workspace.openArtifactStore()
    }

    /// A run by id or unique prefix.
    public func run(_ reference: String) throws -> RunRecord {
        guard let run = try metadata.run(id: reference) else { throw InspectorError.unknownRun(reference) }
        return run
    }

    /// One artifact by id or digest prefix.
    public func artifact(_ reference: String) throws -> ArtifactRecord {
        let matches = try metadata.artifacts(matching: reference)
        let digests = Set(matches.map(\.digest))
        guard let first = matches.first else { throw InspectorError.unknownArtifact(reference) }
        guard digests.count == 1 else { throw InspectorError.ambiguousArtifact(reference, digests.count) }
        return first
    }

    /// The upstream graph of an artifact: its producer, that producer's inputs (and the bundle
    /// build it ran, for a compiled step) and so on.
    public func lineage(ofArtifact artifact: ArtifactRecord) throws -> LineageGraph {
        var graph = LineageGraph(roots: [artifact.digest.description])
        var queue = [artifact]
        var seen = Set<Digest>()
        while let current = queue.popLast() {
            guard seen.insert(current.digest).inserted else { continue }
            graph.artifacts[current.digest.description] = current
            // The first OUTPUT event is the execution that made the artifact; cached executions come later.
            guard let producer = try metadata.producer(ofArtifact: current.id) else { continue }
            graph.producers[current.digest.description] = producer
            for artifacts in producer.inputs.values { queue.append(contentsOf: artifacts) }
            if let build = producer.build { queue.append(build) }
        }
        return graph
    }

    /// Everything made from an artifact: the executions that read it, their outputs, the
    /// executions that read those, and so on. Cached executions count (they reused the outputs).
    public func downstream(ofArtifact artifact: ArtifactRecord) throws -> DownstreamGraph {
        var graph = DownstreamGraph(root: artifact)
        var queue = [artifact]
        var seenArtifacts = Set<Int64>()
        var seenExecutions = Set<Int64>()
        while !queue.isEmpty {
            let current = queue.removeFirst()
            guard seenArtifacts.insert(current.id).inserted else { continue }
            for consumer in try metadata.consumers(ofArtifact: current.id) where seenExecutions.insert(consumer.id).inserted {
                graph.executions.append(consumer)
                queue.append(contentsOf: consumer.outputs.values.sorted { $0.id < $1.id })
            }
        }
        return graph
    }

    /// The upstream graph of everything a run produced.
    public func lineage(ofRun run: RunRecord) throws -> LineageGraph {
        let executions = try metadata.executions(runID: run.id)
        let consumed = Set(executions.flatMap { $0.inputs.values.flatMap { $0.map(\.digest) } + [$0.build?.digest].compactMap { $0 } })
        let finals = executions.flatMap { $0.outputs.values }.filter { !consumed.contains($0.digest) }
        var graph = LineageGraph(roots: [])
        for artifact in finals.sorted(by: { $0.id < $1.id }) {
            let sub = try lineage(ofArtifact: artifact)
            graph.roots.append(artifact.digest.description)
            graph.artifacts.merge(sub.artifacts) { first, _ in first }
            graph.producers.merge(sub.producers) { first, _ in first }
        }
        // Report each artifact with the execution of this run that produced or reused it.
        for execution in executions {
            for artifact in execution.outputs.values where graph.producers[artifact.digest.description] != nil {
                graph.producers[artifact.digest.description] = execution
            }
        }
        return graph
    }
}

/// Artifacts and the executions that made them, keyed by digest.
public struct LineageGraph: Sendable, Codable {
    /// The artifacts asked about.
    public var roots: [String]
    public var artifacts: [String: ArtifactRecord] = [:]
    public var producers: [String: ExecutionRecord] = [:]
}

public enum InspectorError: Error, CustomStringConvertible {
    case noWorkspace(String)
    case unknownRun(String)
    case unknownArtifact(String)
    case ambiguousArtifact(String, Int)

    public var description: String {
        switch self {
        case .noWorkspace(let path): return "no zenml-run workspace at or above \(path); run a pipeline or 'zenml-run init' first"
        case .unknownRun(let id): return "no run '\(id)' (or the prefix matches several); list runs with 'zenml-run runs list'"
        case .unknownArtifact(let reference): return "no artifact '\(reference)'; give an artifact id or a digest prefix, as shown by 'zenml-run runs show RUN'"
        case .ambiguousArtifact(let reference, let count): return "'\(reference)' matches \(count) artifacts; give more digits"
        }
    }
}

/// The executions that used an artifact, directly or through other artifacts, in discovery order.
public struct DownstreamGraph: Sendable, Codable {
    public var root: ArtifactRecord
    public var executions: [ExecutionRecord] = []
}
