import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLMetadata

/// Checks shared by the SQLite and MySQL compatibility tests: ml-metadata's own Python client
/// (`Tests/Support/mlmd/mlmd_compat.py`) reads what our stores write, and our stores open what
/// ml-metadata wrote without damaging it.
enum MLMDCompatibility {
    /// What ``writeScenario(_:)`` recorded.
    struct Written {
        var trainID: Int64
        var cachedID: Int64
        var evalID: Int64
        var model: ArtifactRecord
        var examples: ArtifactRecord
    }

    /// Two runs of pipeline `compat`: run-1 trains (COMPLETE, outputs a model and examples);
    /// run-2 reuses the training (CACHED) and evaluates the model (FAILED, with an input event, and
    /// naming the build it ran: the examples artifact stands in for a `BundleBuild`, only the
    /// INTERNAL_INPUT event matters here).
    static func writeScenario(_ store: any MetadataStore) throws -> Written {
        let start = Date(timeIntervalSince1970: 1_763_000_000.5)
        try store.startRun(Fixtures.newRun("run-1", pipeline: "compat", spec: "compat-spec", startedAt: start))
        let train = try store.startExecution(Fixtures.newExecution("run-1", pipeline: "compat", step: "train", key: Digest.of("train-key"), startedAt: start))
        let outputs = try store.finishExecution(id: train, outcome: ExecutionOutcome(
            state: .complete, endedAt: start.addingTimeInterval(2), exitCode: 0, logURI: "/logs/train", metrics: ["accuracy": 0.875],
            outputs: [
                "model": Fixtures.artifact("model-bytes", type: "Model", properties: ["framework": "sklearn", "records": 1200], size: 3_000_000_000),
                "examples": Fixtures.artifact("examples-bytes", type: "Examples", properties: ["split": true]),
            ]))
        try store.finishRun(id: "run-1", state: .complete, endedAt: start.addingTimeInterval(3))
        let source = try XCTUnwrap(store.executions(withCacheKey: Digest.of("train-key"), limit: 1).first.flatMap(ReusableExecution.init))
        try store.startRun(Fixtures.newRun("run-2", pipeline: "compat", spec: "compat-spec", startedAt: start.addingTimeInterval(10)))
        let cached = try store.recordCachedExecution(
            Fixtures.newExecution("run-2", pipeline: "compat", step: "train", key: Digest.of("train-key"), startedAt: start.addingTimeInterval(10)),
            reusing: source, at: start.addingTimeInterval(10))
        let model = try XCTUnwrap(outputs["model"])
        let evaluation = try store.startExecution(Fixtures.newExecution(
            "run-2", pipeline: "compat", step: "eval", key: Digest.of("eval-key"), inputs: ["model": [model]], startedAt: start.addingTimeInterval(11)))
        var failed = ExecutionOutcome(state: .failed, endedAt: start.addingTimeInterval(12), exitCode: 2, message: "boom")
        failed.build = try XCTUnwrap(outputs["examples"])
        try store.finishExecution(id: evaluation, outcome: failed)
        try store.finishRun(id: "run-2", state: .failed, endedAt: start.addingTimeInterval(13))
        return Written(trainID: train, cachedID: cached, evalID: evaluation, model: model, examples: try XCTUnwrap(outputs["examples"]))
    }

    static func list(_ dump: [String: Any], _ key: String) -> [[String: Any]] { dump[key] as? [[String: Any]] ?? [] }

    static func find(_ items: [[String: Any]], id: Int64) -> [String: Any]? {
        items.first { ($0["id"] as? NSNumber)?.int64Value == id }
    }

    /// Checks ml-metadata's reading of ``writeScenario(_:)`` against what was written.
    static func checkScenario(_ dump: [String: Any], _ written: Written, file: StaticString = #filePath, line: UInt = #line) throws {
        let contexts = list(dump, "contexts")
        let executions = list(dump, "executions")
        // Only ours: the store may also hold ml-metadata's own records.
        let artifacts = list(dump, "artifacts").filter { ($0["name"] as? String)?.hasPrefix("run-") == true }
        let ourExecutions = Set([written.trainID, written.cachedID, written.evalID])
        let events = list(dump, "events").filter { ($0["execution_id"] as? NSNumber).map { ourExecutions.contains($0.int64Value) } == true }

        // Pipelines, versions and runs are contexts.
        let pipeline = try XCTUnwrap(contexts.first { $0["type"] as? String == "zenml.Pipeline" && $0["name"] as? String == "compat" }, file: file, line: line)
        let version = try XCTUnwrap(contexts.first { $0["type"] as? String == "zenml.PipelineVersion" }, file: file, line: line)
        XCTAssertEqual(version["name"] as? String, "compat@\(Digest.of("compat-spec"))", file: file, line: line)
        XCTAssertEqual(version["parents"] as? [String], ["compat"], file: file, line: line)
        XCTAssertEqual((version["properties"] as? [String: Any])?["spec_digest"] as? String, Digest.of("compat-spec").description, file: file, line: line)
        let runs = contexts.filter { $0["type"] as? String == "zenml.PipelineRun" }
        XCTAssertEqual(runs.map { $0["name"] as? String }, ["run-1", "run-2"], file: file, line: line)
        let run1 = try XCTUnwrap(runs.first, file: file, line: line)
        let run1Properties = try XCTUnwrap(run1["properties"] as? [String: Any], file: file, line: line)
        XCTAssertEqual(run1Properties["state"] as? String, "complete", file: file, line: line)
        XCTAssertEqual(run1Properties["pipeline"] as? String, "compat", file: file, line: line)
        XCTAssertEqual((run1Properties["started_at"] as? NSNumber)?.doubleValue, 1_763_000_000_500, "milliseconds since the epoch", file: file, line: line)
        XCTAssertEqual(run1Properties["git_dirty"] as? Bool, false, file: file, line: line)
        XCTAssertEqual(Set(run1["parents"] as? [String] ?? []), ["compat", "compat@\(Digest.of("compat-spec"))"], file: file, line: line)
        XCTAssertEqual((run1["executions"] as? [NSNumber])?.map(\.int64Value), [written.trainID], file: file, line: line)
        XCTAssertEqual(Set((run1["artifacts"] as? [NSNumber])?.map(\.int64Value) ?? []), [written.model.id, written.examples.id], file: file, line: line)
        XCTAssertEqual((runs.last?["properties"] as? [String: Any])?["state"] as? String, "failed", file: file, line: line)
        // The cached execution belongs to run 2, and so do the outputs it reused.
        XCTAssertEqual(Set((runs.last?["executions"] as? [NSNumber])?.map(\.int64Value) ?? []), [written.cachedID, written.evalID], file: file, line: line)
        XCTAssertEqual(Set((runs.last?["artifacts"] as? [NSNumber])?.map(\.int64Value) ?? []), [written.model.id, written.examples.id], file: file, line: line)
        XCTAssertEqual(Set((pipeline["executions"] as? [NSNumber])?.map(\.int64Value) ?? []), [written.trainID, written.cachedID, written.evalID], file: file, line: line)

        // Executions with their states and properties.
        let train = try XCTUnwrap(find(executions, id: written.trainID), file: file, line: line)
        XCTAssertEqual(train["type"] as? String, "zenml.Step", file: file, line: line)
        XCTAssertEqual(train["name"] as? String, "run-1/train", file: file, line: line)
        XCTAssertEqual(train["state"] as? String, "COMPLETE", file: file, line: line)
        let trainProperties = try XCTUnwrap(train["properties"] as? [String: Any], file: file, line: line)
        XCTAssertEqual(trainProperties["cache_key"] as? String, Digest.of("train-key").description, file: file, line: line)
        XCTAssertEqual((trainProperties["exit_code"] as? NSNumber)?.intValue, 0, file: file, line: line)
        XCTAssertEqual(trainProperties["log_uri"] as? String, "/logs/train", file: file, line: line)
        XCTAssertEqual(trainProperties["config"] as? String, #"{"k":1}"#, file: file, line: line)
        XCTAssertEqual(((train["custom"] as? [String: Any])?["accuracy"] as? NSNumber)?.doubleValue, 0.875, file: file, line: line)
        let cached = try XCTUnwrap(find(executions, id: written.cachedID), file: file, line: line)
        XCTAssertEqual(cached["state"] as? String, "CACHED", file: file, line: line)
        XCTAssertEqual(((cached["properties"] as? [String: Any])?["reused_execution_id"] as? NSNumber)?.int64Value, written.trainID, file: file, line: line)
        let evaluation = try XCTUnwrap(find(executions, id: written.evalID), file: file, line: line)
        XCTAssertEqual(evaluation["state"] as? String, "FAILED", file: file, line: line)
        XCTAssertEqual((evaluation["properties"] as? [String: Any])?["message"] as? String, "boom", file: file, line: line)

        // Artifacts with uri and properties.
        let model = try XCTUnwrap(find(artifacts, id: written.model.id), file: file, line: line)
        XCTAssertEqual(model["type"] as? String, "Model", file: file, line: line)
        XCTAssertEqual(model["uri"] as? String, written.model.uri, file: file, line: line)
        XCTAssertEqual(model["state"] as? String, "LIVE", file: file, line: line)
        XCTAssertEqual(model["name"] as? String, "run-1/train/model", file: file, line: line)
        let modelProperties = try XCTUnwrap(model["properties"] as? [String: Any], file: file, line: line)
        XCTAssertEqual(modelProperties["digest"] as? String, written.model.digest.description, file: file, line: line)
        XCTAssertEqual((modelProperties["size"] as? NSNumber)?.doubleValue, 3_000_000_000, file: file, line: line)
        XCTAssertEqual((modelProperties["file_count"] as? NSNumber)?.intValue, 1, file: file, line: line)
        let modelCustom = try XCTUnwrap(model["custom"] as? [String: Any], file: file, line: line)
        XCTAssertEqual(modelCustom["framework"] as? String, "sklearn", file: file, line: line)
        XCTAssertEqual((modelCustom["records"] as? NSNumber)?.intValue, 1200, file: file, line: line)
        let examples = try XCTUnwrap(find(artifacts, id: written.examples.id), file: file, line: line)
        XCTAssertEqual(examples["type"] as? String, "Examples", file: file, line: line)
        XCTAssertEqual((examples["custom"] as? [String: Any])?["split"] as? Bool, true, file: file, line: line)
        XCTAssertEqual(artifacts.count, 2, "a cached execution adds no artifact", file: file, line: line)

        // Lineage events.
        func event(_ execution: Int64, _ artifact: Int64) -> [String: Any]? {
            events.first { ($0["execution_id"] as? NSNumber)?.int64Value == execution && ($0["artifact_id"] as? NSNumber)?.int64Value == artifact }
        }
        XCTAssertEqual(event(written.trainID, written.model.id)?["type"] as? String, "OUTPUT", file: file, line: line)
        XCTAssertEqual(event(written.trainID, written.model.id)?["path"] as? [String], ["model"], file: file, line: line)
        XCTAssertEqual(event(written.trainID, written.examples.id)?["path"] as? [String], ["examples"], file: file, line: line)
        XCTAssertEqual(event(written.cachedID, written.model.id)?["type"] as? String, "OUTPUT", "the cached execution outputs the reused model", file: file, line: line)
        let input = try XCTUnwrap(event(written.evalID, written.model.id), file: file, line: line)
        XCTAssertEqual(input["type"] as? String, "INPUT", file: file, line: line)
        XCTAssertEqual((input["path"] as? [Any])?.first as? String, "model", file: file, line: line)
        XCTAssertEqual(((input["path"] as? [Any])?.last as? NSNumber)?.intValue, 0, file: file, line: line)
        let build = try XCTUnwrap(event(written.evalID, written.examples.id), file: file, line: line)
        XCTAssertEqual(build["type"] as? String, "INTERNAL_INPUT", file: file, line: line)
        XCTAssertEqual(build["path"] as? [String], ["build"], file: file, line: line)
        XCTAssertEqual(events.count, 6, file: file, line: line)

        // Our types, as ml-metadata sees them.
        let typeProperties = try XCTUnwrap(dump["type_properties"] as? [String: [String: String]], file: file, line: line)
        XCTAssertEqual(typeProperties["execution:zenml.Step"]?["cache_key"], "STRING", file: file, line: line)
        XCTAssertEqual(typeProperties["execution:zenml.Step"]?["started_at"], "DOUBLE", file: file, line: line)
        XCTAssertEqual(typeProperties["artifact:Model"]?["digest"], "STRING", file: file, line: line)
    }

    /// Checks that the parts of `before` (ml-metadata's own records) are unchanged in `after`.
    static func checkMLMDRecordsUnchanged(before: [String: Any], after: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        for key in ["contexts", "executions", "artifacts", "events"] {
            let old = list(before, key)
            let new = list(after, key)
            for item in old {
                let match: [String: Any]?
                if let id = item["id"] as? NSNumber {
                    match = new.first { ($0["id"] as? NSNumber) == id }
                } else {
                    match = new.first { NSDictionary(dictionary: $0).isEqual(to: item) }
                }
                XCTAssertTrue(match.map { NSDictionary(dictionary: $0).isEqual(to: item) } ?? false, "ml-metadata's \(key) record changed: \(item) -> \(String(describing: match))", file: file, line: line)
            }
        }
        let oldTypes = before["type_properties"] as? [String: [String: String]] ?? [:]
        let newTypes = after["type_properties"] as? [String: [String: String]] ?? [:]
        for (type, properties) in oldTypes {
            for (name, dataType) in properties {
                XCTAssertEqual(newTypes[type]?[name], dataType, "\(type).\(name) keeps ml-metadata's declaration", file: file, line: line)
            }
        }
    }
}
