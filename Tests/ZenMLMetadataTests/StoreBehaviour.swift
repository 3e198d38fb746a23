import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLMetadata

/// The behaviour every `MetadataStore` backend must show, run by ``SQLiteMetadataStoreTests`` and
/// ``MySQLMetadataStoreTests`` against their own store.
///
/// `sql` answers a query on the store's database directly (first column of the first row, as
/// text), to check what lands in ML Metadata's tables.
struct StoreBehaviour {
    let makeStore: () throws -> any MetadataStore
    let sql: (String) throws -> String

    func runsExecutionsArtifactsAndCacheLookup() throws {
        let store = try makeStore()
        let key = Digest.of("key")
        try store.startRun(Fixtures.newRun("r1"))
        let id = try store.startExecution(Fixtures.newExecution("r1", step: "train", key: key))
        XCTAssertEqual(try store.executions(withCacheKey: key, limit: 5).count, 0, "a running execution is not a cache hit")
        XCTAssertEqual(try sql("SELECT last_known_state FROM Execution WHERE id = \(id)"), "2", "RUNNING is 2 in ML Metadata")
        let artifact = Fixtures.artifact("model", properties: ["records": 3, "kind": "lr"])
        let recorded = try store.finishExecution(id: id, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), exitCode: 0, logURI: "/log", metrics: ["accuracy": 0.75], outputs: ["model": artifact]))
        XCTAssertGreaterThan(try XCTUnwrap(recorded["model"]).id, 0, "recorded outputs come back with their ids")
        try store.finishRun(id: "r1", state: .complete, endedAt: Date())

        let hits = try store.executions(withCacheKey: key, limit: 5)
        XCTAssertEqual(hits.count, 1)
        let hit = try XCTUnwrap(hits.first)
        XCTAssertEqual(hit.state, .complete)
        XCTAssertEqual(hit.exitCode, 0)
        XCTAssertEqual(hit.logURI, "/log")
        XCTAssertEqual(hit.config, ["k": 1])
        XCTAssertEqual(hit.metrics, ["accuracy": 0.75])
        XCTAssertEqual(hit.outputs["model"]?.digest, artifact.digest)
        XCTAssertEqual(hit.outputs["model"]?.uri, artifact.uri)
        XCTAssertEqual(hit.outputs["model"]?.properties, ["records": 3, "kind": "lr"])
        XCTAssertEqual(hit.outputs["model"]?.id, recorded["model"]?.id)
        XCTAssertEqual(try sql("SELECT last_known_state FROM Execution WHERE id = \(id)"), "3", "COMPLETE is 3 in ML Metadata")

        try store.startRun(Fixtures.newRun("r2"))
        let cachedID = try store.recordCachedExecution(Fixtures.newExecution("r2", step: "train", key: key), reusing: try XCTUnwrap(ReusableExecution(hit)), at: Date())
        XCTAssertEqual(try sql("SELECT last_known_state FROM Execution WHERE id = \(cachedID)"), "5", "CACHED is 5")
        let evaluation = try store.startExecution(Fixtures.newExecution("r2", step: "eval", key: Digest.of("k2"), inputs: ["model": [try XCTUnwrap(hit.outputs["model"])]]))
        try store.finishExecution(id: evaluation, outcome: ExecutionOutcome(state: .failed, endedAt: Date(), exitCode: 1, message: "boom"))
        XCTAssertEqual(try sql("SELECT last_known_state FROM Execution WHERE id = \(evaluation)"), "4", "FAILED is 4")
        XCTAssertEqual(try sql("SELECT type FROM Event WHERE execution_id = \(evaluation)"), "3", "INPUT event")
        XCTAssertEqual(try sql("SELECT step_key FROM EventPath p JOIN Event e ON e.id = p.event_id WHERE e.execution_id = \(evaluation) AND p.is_index_step = 0"), "model")
        XCTAssertEqual(try sql("SELECT step_index FROM EventPath p JOIN Event e ON e.id = p.event_id WHERE e.execution_id = \(evaluation) AND p.is_index_step = 1"), "0")

        let runTwo = try store.executions(runID: "r2")
        XCTAssertEqual(runTwo.map(\.step), ["train", "eval"])
        XCTAssertEqual(runTwo.first?.reusedExecutionID, id)
        XCTAssertEqual(runTwo.first?.state, .cached)
        XCTAssertEqual(runTwo.last?.message, "boom")
        XCTAssertEqual(runTwo.last?.inputs["model"]?.map(\.digest), [artifact.digest])
        XCTAssertEqual(try store.latestExecution(pipeline: "p", step: "train")?.id, cachedID)
        XCTAssertNil(try store.latestExecution(pipeline: "p", step: "eval"), "failed executions are not a baseline")
        XCTAssertNil(try store.latestExecution(pipeline: "other", step: "train"))
        // The previous run's sources, as a re-run reads them: complete or cached only, with what
        // reusing them needs.
        let reusable = try store.reusableExecutions(runID: "r2")
        XCTAssertEqual(reusable.map(\.id), [cachedID], "the failed eval is no source")
        XCTAssertEqual(reusable.first?.step, "train")
        XCTAssertEqual(reusable.first?.runID, "r2")
        XCTAssertEqual(reusable.first?.cacheKey, key)
        XCTAssertEqual(reusable.first?.metrics, ["accuracy": 0.75])
        XCTAssertEqual(reusable.first?.outputs, hit.outputs, "the reused outputs with their ids, digests, sizes and properties")
        XCTAssertEqual(try store.reusableExecutions(runID: "r1").map(\.id), [id])
        XCTAssertEqual(try store.keyIngredients(executionID: cachedID), ["key": [:]])
        XCTAssertEqual(try store.keyIngredients(executionID: 999_999), .null)
        XCTAssertEqual(try store.runs(pipeline: "p", limit: 10).map(\.id), ["r2", "r1"])
        XCTAssertEqual(try store.run(id: "r1")?.state, .complete)
        XCTAssertEqual(try store.run(id: "r2")?.state, .running)
        XCTAssertEqual(try store.run(id: "r1")?.gitCommit, "abc")
        XCTAssertNil(try store.run(id: "r"), "an ambiguous prefix matches nothing")
        XCTAssertEqual(try store.artifacts(matching: String(artifact.digest.hex.prefix(8))).count, 1)
        XCTAssertEqual(try store.producer(ofArtifact: try XCTUnwrap(hit.outputs["model"]?.id))?.id, id)
        let pipelines = try store.pipelines()
        XCTAssertEqual(pipelines.map(\.name), ["p"])
        XCTAssertEqual(pipelines.first?.versions.count, 1)
        XCTAssertEqual(pipelines.first?.runCount, 2)
    }

    /// Cache hits: newest first, COMPLETE and CACHED only, limited; CACHED executions share the
    /// reused artifacts instead of copying them.
    func cachedExecutionsAndCacheKeyLookup() throws {
        let store = try makeStore()
        let key = Digest.of("shared-key")
        try store.startRun(Fixtures.newRun("run-a"))
        let first = try store.startExecution(Fixtures.newExecution("run-a", step: "s", key: key))
        let outputs = try store.finishExecution(id: first, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), metrics: ["loss": 0.5], outputs: ["out": Fixtures.artifact("a")]))
        let source = try XCTUnwrap(store.executions(withCacheKey: key, limit: 1).first.flatMap(ReusableExecution.init))
        var cached: [Int64] = []
        for index in 0..<3 {
            try store.startRun(Fixtures.newRun("run-c\(index)"))
            cached.append(try store.recordCachedExecution(Fixtures.newExecution("run-c\(index)", step: "s", key: key), reusing: source, at: Date()))
        }
        try store.startRun(Fixtures.newRun("run-f"))
        let failed = try store.startExecution(Fixtures.newExecution("run-f", step: "s", key: key))
        try store.finishExecution(id: failed, outcome: ExecutionOutcome(state: .failed, endedAt: Date()))
        let running = try store.startExecution(Fixtures.newExecution("run-f", step: "t", key: key))

        let all = try store.executions(withCacheKey: key, limit: 10)
        XCTAssertEqual(all.map(\.id), cached.reversed() + [first], "newest first; failed \(failed) and running \(running) are not hits")
        XCTAssertEqual(all.first?.state, .cached)
        XCTAssertEqual(all.first?.reusedExecutionID, first)
        XCTAssertEqual(all.first?.metrics, ["loss": 0.5], "a cached execution carries the metrics it reused")
        XCTAssertEqual(all.first?.outputs["out"]?.id, outputs["out"]?.id, "the reused artifact, not a copy")
        XCTAssertEqual(try store.executions(withCacheKey: key, limit: 2).count, 2)
        XCTAssertEqual(try store.executions(withCacheKey: Digest.of("unknown"), limit: 5).count, 0)
        XCTAssertEqual(try sql("SELECT count(*) FROM Artifact"), "1", "cached executions record no new artifact")
        XCTAssertEqual(try sql("SELECT count(*) FROM Event WHERE type = 4"), "4", "one OUTPUT event per producing or reusing execution")

        // A wave of keys at once: the newest hit per key, nothing for keys without one.
        let other = Digest.of("other-key")
        try store.startRun(Fixtures.newRun("run-o"))
        let otherID = try store.startExecution(Fixtures.newExecution("run-o", step: "o", key: other))
        try store.finishExecution(id: otherID, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), outputs: ["out": Fixtures.artifact("b")]))
        let newest = try store.newestExecutions(withCacheKeys: [key, other, key, Digest.of("unknown")])
        XCTAssertEqual(newest.count, 2)
        XCTAssertEqual(newest[key]?.id, cached.last, "the newest of the key's hits")
        XCTAssertEqual(newest[other]?.id, otherID)
        XCTAssertEqual(newest[other]?.outputs["out"]?.digest, Fixtures.artifact("b").digest)
        XCTAssertEqual(newest[key]?.metrics, ["loss": 0.5])
        XCTAssertEqual(newest[key]?.outputs["out"]?.id, outputs["out"]?.id)
        XCTAssertEqual(try store.newestExecutions(withCacheKeys: []).count, 0)

        // Several reuses in one call: one execution each, in order, all in the run, each with its
        // inputs (in order), the outputs and metrics of the execution it reused.
        try store.startRun(Fixtures.newRun("run-w"))
        let waveInputs = [try XCTUnwrap(newest[key]?.outputs.values.first), try XCTUnwrap(newest[other]?.outputs["out"])]
        let wave = try store.recordCachedExecutions(
            [
                CacheReuse(Fixtures.newExecution("run-w", step: "s", key: key), reusing: try XCTUnwrap(newest[key])),
                CacheReuse(Fixtures.newExecution("run-w", step: "o", key: other, inputs: ["in": waveInputs]), reusing: try XCTUnwrap(newest[other])),
            ], at: Date())
        XCTAssertEqual(wave.count, 2)
        let recordedWave = try store.executions(runID: "run-w")
        XCTAssertEqual(recordedWave.map(\.id), wave)
        XCTAssertEqual(recordedWave.map(\.step), ["s", "o"])
        XCTAssertEqual(recordedWave.map(\.state), [.cached, .cached])
        XCTAssertEqual(recordedWave.last?.outputs["out"]?.id, newest[other]?.outputs["out"]?.id)
        XCTAssertEqual(recordedWave.last?.inputs["in"]?.map(\.id), waveInputs.map(\.id))
        XCTAssertEqual(recordedWave.first?.inputs, [:])
        XCTAssertEqual(recordedWave.map(\.reusedExecutionID), [newest[key]?.id, newest[other]?.id])
        XCTAssertEqual(recordedWave.first?.metrics, newest[key]?.metrics)
        XCTAssertEqual(recordedWave.last?.config, ["k": 1])
        XCTAssertEqual(try store.newestExecutions(withCacheKeys: [other])[other]?.id, wave.last)
        XCTAssertEqual(try store.producer(ofArtifact: try XCTUnwrap(outputs["out"]?.id))?.id, first, "the producer is the first execution that output it")

        // A wave larger than one statement's rows (executions and events go in several, and
        // their ids are told per statement); an artifact wired twice into an execution is one
        // event, under the first name it is wired by.
        try store.startRun(Fixtures.newRun("run-big"))
        let shared = try XCTUnwrap(newest[other]?.outputs["out"])
        let bigWave = try store.recordCachedExecutions(
            (0..<1_100).map { index in
                CacheReuse(
                    Fixtures.newExecution("run-big", step: "s\(index)", key: other, inputs: ["a": [shared], "b": [shared, waveInputs[0]]]),
                    reusing: try! XCTUnwrap(newest[other]))
            }, at: Date())
        XCTAssertEqual(Set(bigWave).count, 1_100)
        let recordedBig = try store.executions(runID: "run-big")
        XCTAssertEqual(recordedBig.map(\.id), bigWave)
        XCTAssertEqual(recordedBig.map(\.step), (0..<1_100).map { "s\($0)" })
        for execution in recordedBig {
            XCTAssertEqual(execution.inputs["a"]?.map(\.id), [shared.id], execution.step)
            XCTAssertEqual(execution.inputs["b"]?.map(\.id), [waveInputs[0].id], execution.step)
            XCTAssertEqual(execution.outputs["out"]?.id, shared.id, execution.step)
            XCTAssertEqual(execution.reusedExecutionID, newest[other]?.id, execution.step)
        }
        XCTAssertEqual(try sql("SELECT count(*) FROM Event WHERE execution_id >= \(bigWave[0])"), "\(3 * 1_100)")
    }

    /// Artifacts by id, full digest, `sha256:` digest and hex prefix; ambiguity returns several.
    func artifactsByDigestAndProducers() throws {
        let store = try makeStore()
        try store.startRun(Fixtures.newRun("r"))
        var digests: [Digest] = []
        var ids: [Int64] = []
        var producers: [Int64] = []
        for index in 0..<20 {
            let execution = try store.startExecution(Fixtures.newExecution("r", step: "s\(index)", key: Digest.of("k\(index)")))
            let artifact = Fixtures.artifact("content-\(index)", type: index % 2 == 0 ? "Examples" : "Model")
            let outputs = try store.finishExecution(id: execution, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), outputs: ["o": artifact]))
            digests.append(artifact.digest)
            ids.append(try XCTUnwrap(outputs["o"]?.id))
            producers.append(execution)
        }
        for (index, digest) in digests.enumerated() {
            XCTAssertEqual(try store.artifacts(matching: digest.hex).map(\.id), [ids[index]])
            XCTAssertEqual(try store.artifacts(matching: digest.description).map(\.id), [ids[index]], "sha256:HEX")
            XCTAssertEqual(try store.artifacts(matching: String(digest.hex.prefix(12)).uppercased()).map(\.id), [ids[index]], "prefix, any case")
            XCTAssertEqual(try store.producer(ofArtifact: ids[index])?.id, producers[index])
            XCTAssertEqual(try store.producer(ofArtifact: ids[index])?.step, "s\(index)")
        }
        XCTAssertEqual(try store.artifacts(matching: String(ids[3])).first?.digest, digests[3], "by id")
        XCTAssertEqual(try store.artifacts(matching: String(ids[3])).first?.type, "Model")
        XCTAssertEqual(try store.artifacts(matching: String(ids[4])).first?.type, "Examples")
        // With 20 digests, some share a first hex letter: a one-character prefix matches them all.
        // (A prefix of decimal digits is taken as an artifact id first.)
        let letter = try XCTUnwrap(digests.lazy.compactMap { $0.hex.first }.first { "abcdef".contains($0) })
        XCTAssertEqual(try store.artifacts(matching: String(letter)).count, digests.filter { $0.hex.first == letter }.count)
        XCTAssertEqual(try store.artifacts(matching: "not-hex!").count, 0)
        XCTAssertEqual(try store.artifacts(matching: "").count, 0)
        XCTAssertNil(try store.producer(ofArtifact: 999_999))
    }

    /// Pipelines with their versions and run counts; runs newest first, by pipeline, by prefix.
    func pipelinesAndRuns() throws {
        let store = try makeStore()
        let base = Date(timeIntervalSince1970: 1_760_000_000.123)
        try store.startRun(Fixtures.newRun("alpha_1", pipeline: "alpha", spec: "v1", startedAt: base))
        try store.startRun(Fixtures.newRun("alpha%2", pipeline: "alpha", spec: "v2", startedAt: base.addingTimeInterval(1)))
        try store.startRun(Fixtures.newRun("alphax3", pipeline: "alpha", spec: "v1", startedAt: base.addingTimeInterval(2)))
        try store.startRun(Fixtures.newRun("beta-1", pipeline: "beta", spec: "b1", startedAt: base.addingTimeInterval(3)))
        try store.finishRun(id: "beta-1", state: .failed, endedAt: base.addingTimeInterval(10))

        let pipelines = try store.pipelines()
        XCTAssertEqual(pipelines.map(\.name), ["alpha", "beta"])
        XCTAssertEqual(pipelines[0].versions.map(\.specDigest), [Digest.of("v1"), Digest.of("v2")])
        XCTAssertEqual(pipelines[0].versions.first?.spec, ["name": "alpha", "spec": "v1"])
        XCTAssertEqual(pipelines[0].versions.first?.file, "/alpha.yaml")
        XCTAssertEqual(pipelines[0].runCount, 3)
        XCTAssertEqual(pipelines[0].lastRun?.id, "alphax3")
        XCTAssertEqual(pipelines[1].runCount, 1)
        XCTAssertEqual(pipelines[1].lastRun?.state, .failed)
        XCTAssertEqual(pipelines[1].lastRun?.endedAt, base.addingTimeInterval(10))

        XCTAssertEqual(try store.runs(pipeline: "alpha", limit: 20).map(\.id), ["alphax3", "alpha%2", "alpha_1"])
        XCTAssertEqual(try store.runs(pipeline: "alpha", limit: 2).map(\.id), ["alphax3", "alpha%2"])
        XCTAssertEqual(try store.runs(pipeline: nil, limit: 2).map(\.id), ["beta-1", "alphax3"])
        XCTAssertEqual(try store.runs(pipeline: "gamma", limit: 2).map(\.id), [])
        // `_` and `%` in a prefix are literal characters, not patterns.
        XCTAssertEqual(try store.run(id: "alpha_")?.id, "alpha_1")
        XCTAssertEqual(try store.run(id: "alpha%")?.id, "alpha%2")
        XCTAssertEqual(try store.run(id: "alphax")?.id, "alphax3")
        XCTAssertNil(try store.run(id: "alpha"), "ambiguous")
        XCTAssertNil(try store.run(id: "ALPHA_1"), "run ids are case-sensitive")
        let run = try XCTUnwrap(store.run(id: "alpha_1"))
        XCTAssertEqual(run.startedAt, base, "milliseconds survive")
        XCTAssertEqual(run.specDigest, Digest.of("v1"))
        XCTAssertEqual(run.environment, ["os": "Linux"])
        XCTAssertEqual(run.gitDirty, false)
        XCTAssertEqual(run.pipelineFile, "/alpha.yaml")
        XCTAssertThrowsError(try store.finishRun(id: "nope", state: .complete, endedAt: Date())) { error in
            XCTAssertTrue("\(error)".contains("run nope was not found"), "\(error)")
        }
        XCTAssertThrowsError(try store.executions(runID: "nope"))
        // Runs still running, by the host that started them (the next run closes those whose process died).
        var elsewhere = Fixtures.newRun("gamma-1", pipeline: "gamma", startedAt: base.addingTimeInterval(4))
        elsewhere.host = "other-host"
        try store.startRun(elsewhere)
        var here = Fixtures.newRun("gamma-2", pipeline: "gamma", startedAt: base.addingTimeInterval(5))
        here.host = "this-host"
        try store.startRun(here)
        XCTAssertEqual(try store.runningRuns(host: "this-host").map(\.id), ["gamma-2"])
        XCTAssertEqual(try store.runningRuns(host: "other-host").map(\.id), ["gamma-1"])
        try store.finishRun(id: "gamma-2", state: .canceled, endedAt: base.addingTimeInterval(6))
        XCTAssertEqual(try store.runningRuns(host: "this-host").map(\.id), [])
        // Starting a run again (a retried call) records it once.
        try store.startRun(Fixtures.newRun("alpha_1", pipeline: "alpha", spec: "v1", startedAt: base))
        XCTAssertEqual(try store.runs(pipeline: "alpha", limit: 20).count, 3)
    }

    /// Property values survive the trip, including those MySQL's 32-bit `int_value` cannot hold.
    func propertyValuesRoundTrip() throws {
        let store = try makeStore()
        try store.startRun(Fixtures.newRun("r"))
        let execution = try store.startExecution(Fixtures.newExecution("r", step: "s", key: Digest.of("k")))
        let properties: [String: JSONValue] = [
            "small": 42, "negative": -7, "int32max": .int(Int64(Int32.max)), "wide": 3_000_000_000, "huge": .int(1 << 60),
            "fraction": 0.125, "flag": true, "off": false, "text": "naïve ☃ \"quoted\" 'single' \\ back", "list": [1, "a"],
            "object": ["b": 2, "a": 1], "nothing": .null,
        ]
        let artifact = Fixtures.artifact("big", properties: properties, size: 5_000_000_000)
        let outputs = try store.finishExecution(id: execution, outcome: ExecutionOutcome(
            state: .complete, endedAt: Date(), exitCode: 0, message: "multi\nline 'quoted'", metrics: ["nan": .nan, "inf": .infinity, "ok": 1.5], outputs: ["big": artifact]))
        let read = try XCTUnwrap(store.artifacts(matching: String(try XCTUnwrap(outputs["big"]?.id))).first)
        XCTAssertEqual(read.size, 5_000_000_000, "sizes over 2 GiB")
        var expected = properties
        expected["nothing"] = nil
        expected["list"] = .string(#"[1,"a"]"#)
        expected["object"] = .string(#"{"a":1,"b":2}"#)
        expected["huge"] = .string("1152921504606846976")  // beyond 2^53: decimal text (PropertyValueCodec)
        XCTAssertEqual(read.properties, expected)
        let record = try XCTUnwrap(store.executions(runID: "r").first)
        XCTAssertEqual(record.metrics, ["ok": 1.5], "non-finite metrics cannot be stored in MySQL and are left out")
        XCTAssertEqual(record.message, "multi\nline 'quoted'")
        XCTAssertEqual(try sql("SELECT int_value FROM ArtifactProperty WHERE name = 'small'"), "42")
        XCTAssertEqual(try sql("SELECT count(*) FROM ArtifactProperty WHERE name = 'wide' AND double_value = 3000000000 AND int_value IS NULL"), "1")
        XCTAssertEqual(try sql("SELECT count(*) FROM ArtifactProperty WHERE int_value IS NOT NULL AND (int_value > 2147483647 OR int_value < -2147483648)"), "0",
                       "no integer beyond MySQL's INT range in int_value")
    }

    /// A write interrupted by an error leaves nothing behind: not the first half of its statements.
    func failedWriteLeavesNothingHalfWritten() throws {
        let store = try makeStore()
        try store.startRun(Fixtures.newRun("r"))
        let execution = try store.startExecution(Fixtures.newExecution("r", step: "s", key: Digest.of("k")))
        try store.finishExecution(id: execution, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), exitCode: 0, outputs: ["a": Fixtures.artifact("a")]))
        let before = try counts()
        // The second finish updates the state and properties, records output "0-new", then fails on
        // output "a": an artifact named RUN/STEP/a exists (MLMD's UNIQUE(type_id, name)).
        XCTAssertThrowsError(try store.finishExecution(id: execution, outcome: ExecutionOutcome(
            state: .failed, endedAt: Date(), exitCode: 9, message: "second", metrics: ["m": 1], outputs: ["0-new": Fixtures.artifact("new"), "a": Fixtures.artifact("a2")])))
        XCTAssertEqual(try counts(), before, "nothing of the failed call was kept")
        let record = try XCTUnwrap(store.executions(runID: "r").first)
        XCTAssertEqual(record.state, .complete)
        XCTAssertEqual(record.exitCode, 0)
        XCTAssertNil(record.message)
        XCTAssertEqual(record.metrics, [:])
        XCTAssertEqual(Array(record.outputs.keys), ["a"])
        // A new artifact type registered by the failed call is not remembered either.
        XCTAssertThrowsError(try store.finishExecution(id: execution, outcome: ExecutionOutcome(
            state: .failed, endedAt: Date(), outputs: ["0-new": Fixtures.artifact("n", type: "BrandNewType"), "a": Fixtures.artifact("a3")])))
        XCTAssertEqual(try sql("SELECT count(*) FROM Type WHERE name = 'BrandNewType'"), "0")
        let other = try store.startExecution(Fixtures.newExecution("r", step: "t", key: Digest.of("k2")))
        let outputs = try store.finishExecution(id: other, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), outputs: ["x": Fixtures.artifact("x", type: "BrandNewType")]))
        XCTAssertEqual(try store.artifacts(matching: String(try XCTUnwrap(outputs["x"]?.id))).first?.type, "BrandNewType", "the store still works and registers the type")
        // An execution of an unknown run is refused before anything is written.
        XCTAssertThrowsError(try store.startExecution(Fixtures.newExecution("no-such-run", step: "s", key: Digest.of("k")))) { error in
            XCTAssertTrue("\(error)".contains("run no-such-run was not found"), "\(error)")
        }
        XCTAssertThrowsError(try store.finishExecution(id: 987_654, outcome: ExecutionOutcome(state: .complete, endedAt: Date())))
        XCTAssertEqual(try sql("SELECT count(*) FROM Execution"), "2")
    }

    func counts() throws -> [String] {
        try ["Execution", "ExecutionProperty", "Artifact", "ArtifactProperty", "Event", "EventPath", "Attribution", "Type", "TypeProperty"].map {
            "\($0)=\(try sql("SELECT count(*) FROM \($0)"))"
        } + ["state=\(try sql("SELECT group_concat(last_known_state) FROM Execution"))"]
    }

    /// What several writers recorded at the same time: every run and execution once, types and
    /// shared contexts not duplicated.
    func checkConcurrentResult(writers: Int, runsPerWriter: Int, stepsPerRun: Int) throws {
        let store = try makeStore()
        let runs = try store.runs(pipeline: "shared", limit: 100_000)
        XCTAssertEqual(runs.count, writers * runsPerWriter, "every run recorded")
        XCTAssertEqual(Set(runs.map(\.id)).count, runs.count, "no run twice")
        XCTAssertEqual(try sql("SELECT count(*) FROM Execution"), "\(writers * runsPerWriter * stepsPerRun)")
        XCTAssertEqual(try sql("SELECT count(*) FROM Artifact"), "\(writers * runsPerWriter * stepsPerRun)")
        XCTAssertEqual(try sql("SELECT count(*) FROM Event"), "\(writers * runsPerWriter * (2 * stepsPerRun - 1))")
        XCTAssertEqual(try sql("SELECT count(*) FROM Type WHERE name LIKE 'zenml.%'"), "4", "types registered once")
        XCTAssertEqual(try sql("SELECT count(*) FROM Type WHERE name = 'Model'"), "1")
        XCTAssertEqual(try sql("SELECT count(*) FROM Context WHERE name = 'shared'"), "1", "the pipeline once")
        XCTAssertEqual(try sql("SELECT count(*) FROM MLMDEnv"), "1")
        let pipelines = try store.pipelines()
        XCTAssertEqual(pipelines.first { $0.name == "shared" }?.runCount, writers * runsPerWriter)
        for run in runs {
            let executions = try store.executions(runID: run.id)
            XCTAssertEqual(executions.count, stepsPerRun, run.id)
            XCTAssertTrue(executions.allSatisfy { $0.state == .complete }, run.id)
            XCTAssertEqual(run.state, .complete)
        }
    }
}

/// What one concurrent writer does (in a thread or a child process): `runs` runs of pipeline
/// `shared`, each a chain of `steps` steps that read the previous step's output.
func writeConcurrently(store: any MetadataStore, writer: String, runs: Int, steps: Int) throws {
    for runIndex in 0..<runs {
        let runID = "\(writer)-run-\(runIndex)"
        try store.startRun(Fixtures.newRun(runID, pipeline: "shared", spec: "spec-\(runIndex % 2)"))
        var previous: ArtifactRecord?
        for step in 0..<steps {
            let key = Digest.of("\(runID)/\(step)")
            let inputs = previous.map { ["in": [$0]] } ?? [:]
            let id = try store.startExecution(Fixtures.newExecution(runID, pipeline: "shared", step: "step\(step)", key: key, inputs: inputs))
            let outputs = try store.finishExecution(id: id, outcome: ExecutionOutcome(
                state: .complete, endedAt: Date(), exitCode: 0, outputs: ["out": Fixtures.artifact("\(runID)/\(step)")]))
            previous = outputs["out"]
            _ = try store.executions(withCacheKey: key, limit: 1)
        }
        try store.finishRun(id: runID, state: .complete, endedAt: Date())
    }
}
