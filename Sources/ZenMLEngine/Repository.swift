import Foundation
import ZenMLCore
import ZenMLMetadata

/// What a pipeline's data and models look like, whatever language their steps were written in:
/// statistics, schemas, anomalies and evaluations read from the artifacts of a run.
///
/// An artifact offers a view when it holds the view's file (`statistics.json`, `schema.json`,
/// `anomalies.json`, `evaluation.json`) in the documented format; its type does not matter.
public struct Repository: Sendable {
    /// The kinds of view.
    public enum Kind: String, CaseIterable, Sendable, Codable {
        case statistics, schema, anomalies, evaluation

        /// The file an artifact holds for this view.
        public var fileName: String { rawValue + ".json" }

        var format: String {
            switch self {
            case .statistics: return StatisticsView.format
            case .schema: return SchemaView.format
            case .anomalies: return AnomaliesView.format
            case .evaluation: return EvaluationView.format
            }
        }
    }

    /// One view, with where it came from.
    public struct Located<Content: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
        public var step: String
        public var output: String
        public var runID: String
        public var artifact: ArtifactRecord
        public var content: Content
    }

    /// The views found in a run or an artifact.
    public struct Views: Codable, Sendable, Hashable {
        public var runID: String?
        public var pipeline: String?
        public var statistics: [Located<StatisticsView>] = []
        public var schema: [Located<SchemaView>] = []
        public var anomalies: [Located<AnomaliesView>] = []
        public var evaluation: [Located<EvaluationView>] = []

        public func isEmpty(of kind: Kind) -> Bool {
            switch kind {
            case .statistics: return statistics.isEmpty
            case .schema: return schema.isEmpty
            case .anomalies: return anomalies.isEmpty
            case .evaluation: return evaluation.isEmpty
            }
        }
    }

    public let inspector: Inspector

    public init(workspace: Workspace) throws {
        inspector = try Inspector(workspace: workspace)
    }

    /// The views of a pipeline's newest complete run.
    public func views(ofPipeline name: String, kinds: Set<Kind>) async throws -> Views {
        guard let run = try inspector.metadata.runs(pipeline: name, limit: 50).first(where: { $0.state == .complete }) else {
            throw RepositoryError.noCompleteRun(pipeline: name)
        }
        return try await views(ofRun: run.id, kinds: kinds)
    }

    /// The views of a run's outputs (including those it re-used from the cache), in step order.
    public func views(ofRun reference: String, kinds: Set<Kind>) async throws -> Views {
        let run = try inspector.run(reference)
        var views = Views(runID: run.id, pipeline: run.pipeline)
        for execution in try inspector.metadata.executions(runID: run.id) {
            for (output, artifact) in execution.outputs.sorted(by: { $0.key < $1.key }) {
                try await add(artifact, step: execution.step, output: output, runID: run.id, kinds: kinds, to: &views)
            }
        }
        return views
    }

    /// The views of one artifact (by id or digest prefix).
    public func views(ofArtifact reference: String, kinds: Set<Kind>) async throws -> Views {
        let artifact = try inspector.artifact(reference)
        let producer = try inspector.metadata.producer(ofArtifact: artifact.id)
        var views = Views(runID: producer?.runID, pipeline: producer?.pipeline)
        let output = producer?.outputs.first { $0.value.digest == artifact.digest }?.key ?? "-"
        try await add(artifact, step: producer?.step ?? "-", output: output, runID: producer?.runID ?? "-", kinds: kinds, to: &views)
        return views
    }

    private func add(_ artifact: ArtifactRecord, step: String, output: String, runID: String, kinds: Set<Kind>, to views: inout Views) async throws {
        let wanted = Kind.allCases.filter { kinds.contains($0) }.map(\.fileName)
        // Only an artifact that holds a view's file is fetched (from a bucket store, say).
        guard !(try await inspector.store.files(wanted, heldBy: artifact.digest)).isEmpty,
              let directory = try await inspector.store.localPath(of: artifact.digest) else { return }
        for kind in Kind.allCases where kinds.contains(kind) {
            let path = directory + "/" + kind.fileName
            guard (try? FileStatus.of(path))??.kind == .file else { continue }
            let data = try FileTree.read(path)
            let format = (try? JSONValue.parse(data))?["format"]?.stringValue
            guard format == kind.format else {
                throw RepositoryError.unknownFormat(file: path, found: format, expected: kind.format)
            }
            func located<T: Codable & Sendable & Hashable>(_ type: T.Type) throws -> Located<T> {
                let decoder = JSONDecoder()
                decoder.keyDecodingStrategy = .convertFromSnakeCase
                do {
                    return Located(step: step, output: output, runID: runID, artifact: artifact, content: try decoder.decode(type, from: data))
                } catch {
                    throw RepositoryError.malformed(file: path, reason: "\(error)")
                }
            }
            switch kind {
            case .statistics: views.statistics.append(try located(StatisticsView.self))
            case .schema: views.schema.append(try located(SchemaView.self))
            case .anomalies: views.anomalies.append(try located(AnomaliesView.self))
            case .evaluation: views.evaluation.append(try located(EvaluationView.self))
            }
        }
    }
}

/// Why a view could not be shown.
public enum RepositoryError: Error, CustomStringConvertible, Sendable {
    case noCompleteRun(pipeline: String)
    case unknownFormat(file: String, found: String?, expected: String)
    case malformed(file: String, reason: String)

    public var description: String {
        switch self {
        case .noCompleteRun(let pipeline):
            return "pipeline '\(pipeline)' has no complete run yet; run it, or name a run with 'zenml-run runs show RUN --statistics'"
        case .unknownFormat(let file, let found, let expected):
            return "\(file) has format \(found.map { "'\($0)'" } ?? "(none)"), but this zenml-run reads '\(expected)'; see steps/README.md for the file formats"
        case .malformed(let file, let reason):
            return "\(file) is not a valid view file: \(reason); see steps/README.md for the file formats"
        }
    }
}
