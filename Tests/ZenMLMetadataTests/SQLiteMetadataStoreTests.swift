import XCTest
import ZenMLCore
@testable import ZenMLMetadata

final class SQLiteMetadataStoreTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "mlmd-\(UUID().uuidString)"
        try FileTree.makeDirectory(directory)
    }

    override func tearDownWithError() throws { try FileTree.remove(directory) }

    func sqlite(_ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sqlite3", directory + "/m.db", sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func newRun(_ id: String) -> NewRun {
        NewRun(id: id, pipeline: "p", specDigest: Digest.of("spec"), spec: ["name": "p"], pipelineFile: "/p.yaml", startedAt: Date(), gitCommit: "abc", gitDirty: false, environment: ["os": "Linux"], workspace: "/w")
    }

    func newExecution(_ run: String, step: String, key: Digest, inputs: [String: [ArtifactRecord]] = [:]) -> NewExecution {
        NewExecution(runID: run, pipeline: "p", step: step, cacheKey: key, bundle: step, bundleVersion: "1", bundleDigest: Digest.of(step), config: ["k": 1], keyIngredients: ["key": [:]], startedAt: Date(), inputs: inputs)
    }

    func testFreshStoreHasMLMDSchemaVersion10AndBuiltinTypes() throws {
        _ = try SQLiteMetadataStore(path: directory + "/m.db")
        XCTAssertEqual(try sqlite("SELECT schema_version FROM MLMDEnv"), "10")
        XCTAssertEqual(try sqlite("SELECT count(*) FROM Type WHERE name LIKE 'mlmd.%'"), "9")
        XCTAssertEqual(try sqlite("SELECT type_kind FROM Type WHERE name = 'zenml.Step'"), "0")
        XCTAssertEqual(try sqlite("SELECT type_kind FROM Type WHERE name = 'zenml.PipelineRun'"), "2")
        XCTAssertEqual(try sqlite("PRAGMA journal_mode"), "wal")
        // Opening again changes nothing.
        _ = try SQLiteMetadataStore(path: directory + "/m.db")
        XCTAssertEqual(try sqlite("SELECT count(*) FROM MLMDEnv"), "1")
        XCTAssertEqual(try sqlite("SELECT count(*) FROM Type WHERE name = 'zenml.Step'"), "1")
    }

    func testNewerSchemaIsRefused() throws {
        _ = try SQLiteMetadataStore(path: directory + "/m.db")
        _ = try sqlite("UPDATE MLMDEnv SET schema_version = 11")
        XCTAssertThrowsError(try SQLiteMetadataStore(path: directory + "/m.db")) { error in
            XCTAssertTrue("\(error)".contains("schema version 11, newer than the version 10"), "\(error)")
        }
    }

    /// Closing the store leaves its WAL for the next command (checkpointing is a background
    /// thread's work, not the end of every command's): the file is kept, and what was committed
    /// is read from it by the next connection, ours or SQLite's own.
    func testClosingLeavesTheWALToTheNextCommand() throws {
        do {
            let store = try SQLiteMetadataStore(path: directory + "/m.db")
            try store.startRun(newRun("r1"))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/m.db-wal"))
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: directory + "/m.db-wal")[.size] as? Int ?? 0, 0)
        XCTAssertEqual(try sqlite("SELECT count(*) FROM Context WHERE name = 'r1'"), "1")
        XCTAssertEqual(try SQLiteMetadataStore(path: directory + "/m.db").run(id: "r1")?.id, "r1")
    }

    /// Copies of the database file alone (without its WAL): what a checkpoint has written to it.
    func runsInDatabaseFileAlone() throws -> Int {
        let copy = directory + "/copy-\(UUID().uuidString).db"
        try FileManager.default.copyItem(atPath: directory + "/m.db", toPath: copy)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sqlite3", copy, "SELECT count(*) FROM Context WHERE name LIKE 'r%'"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Int(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Waits up to 20 s for `condition`.
    func eventually(_ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// Starts runs `r0`... of pipeline `p`, each in a commit of about 12 pages (a 48 KB spec).
    func startLargeRuns(_ count: Int, in store: SQLiteMetadataStore) throws {
        var run = newRun("r0")
        run.spec = ["name": "p", "padding": .string(String(repeating: "x", count: 48_000))]
        for index in 0..<count {
            run.id = "r\(index)"
            try store.startRun(run)
        }
    }

    /// A store whose commits take the WAL past 1,000 pages has it copied into the database file
    /// while it stays open, by its own thread (no commit waits for it).
    func testALongWALIsCheckpointedInTheBackground() throws {
        let store = try SQLiteMetadataStore(path: directory + "/m.db")
        try startLargeRuns(100, in: store)
        XCTAssertTrue(try eventually { try runsInDatabaseFileAlone() > 0 }, "nothing was checkpointed into the database file")
        XCTAssertEqual(try store.runs(pipeline: "p", limit: 1000).count, 100)
    }

    /// Commits that add to the WAL have it synced as they go, so that closing has little left to
    /// sync.
    func testTheWALIsSyncedInTheBackgroundAsItGrows() throws {
        let store = try SQLiteMetadataStore(path: directory + "/m.db")
        try startLargeRuns(40, in: store)
        XCTAssertTrue(eventually { store.backgroundWALSyncs > 0 }, "40 commits of 12 pages each were not synced")
    }

    /// The frames in the WAL that its next reader would read: those written since it last
    /// started over (they carry the salt of its header).
    func liveWALFrames() throws -> Int {
        let wal = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/m.db-wal")))
        guard wal.count >= 32 else { return 0 }
        let frameSize = 24 + 4096
        var frames = 0, offset = 32
        while offset + frameSize <= wal.count, wal[(offset + 8)..<(offset + 16)] == wal[16..<24] {
            frames += 1
            offset += frameSize
        }
        return frames
    }

    /// Commands that each write a few hundred pages and end before any copy catches up do not
    /// make the WAL grow: each command's first commit starts it over, so the next command reads
    /// little of it. (Without waiting for the opening checkpoint, 40 such commands grew it to
    /// 2,300-8,900 pages, in streaks: each command copied it in full again and ended first.)
    func testTheWALStartsOverAcrossCommands() throws {
        var run = newRun("r0")
        run.spec = ["name": "p", "padding": .string(String(repeating: "x", count: 48_000))]
        var longest = 0
        for command in 0..<40 {
            do {
                let store = try SQLiteMetadataStore(path: directory + "/m.db")
                for index in 0..<30 {
                    run.id = "r\(command)-\(index)"
                    try store.startRun(run)
                }
            }
            longest = max(longest, try liveWALFrames())
        }
        XCTAssertEqual(try SQLiteMetadataStore(path: directory + "/m.db").runs(pipeline: "p", limit: 2000).count, 1200)
        XCTAssertLessThan(longest, 2000, "the WAL grew across commands")
    }

    /// The checkpointer counts the WAL's live frames without reading them all: as many as a scan
    /// of every frame finds, also once the WAL has started over inside a longer file.
    func testLiveWALFramesAreCountedByTheirSalt() throws {
        let wal = directory + "/m.db-wal"
        XCTAssertEqual(WALCheckpointer.liveFrames(wal: wal), 0, "no WAL file")
        let store = try SQLiteMetadataStore(path: directory + "/m.db")
        try startLargeRuns(20, in: store)
        XCTAssertGreaterThan(try liveWALFrames(), 200)
        XCTAssertEqual(WALCheckpointer.liveFrames(wal: wal), try liveWALFrames())
        // Copied by another connection while the store keeps the WAL file open: the next write
        // starts it over from its first frame.
        _ = try sqlite("PRAGMA wal_checkpoint(RESTART)")
        let fileFrames = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) / (24 + 4096)
        try store.startRun(newRun("after-restart"))
        XCTAssertLessThan(try liveWALFrames(), fileFrames / 2, "the WAL started over")
        XCTAssertEqual(WALCheckpointer.liveFrames(wal: wal), try liveWALFrames())
    }

    /// A command that finds a long WAL (left by commands that ended before it was copied) has it
    /// copied in the background as soon as it opens the store.
    func testOpeningAStoreWithALongWALCheckpointsIt() throws {
        _ = try SQLiteMetadataStore(path: directory + "/m.db")
        _ = try sqlite("PRAGMA wal_checkpoint(TRUNCATE)")
        // SQLite's shell, told neither to checkpoint as it writes nor when it closes.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "sqlite3", "-cmd", ".dbconfig no_ckpt_on_close on", directory + "/m.db",
            """
            PRAGMA wal_autocheckpoint = 0;
            CREATE TEMP VIEW numbers AS WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 1200) SELECT value FROM n;
            INSERT INTO Context (type_id, name) SELECT (SELECT id FROM Type WHERE name = 'zenml.PipelineRun'), 'r' || value
              FROM numbers WHERE value <= 20;
            CREATE TABLE padding (x BLOB);
            INSERT INTO padding SELECT randomblob(4000) FROM numbers;
            """,
        ]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(try runsInDatabaseFileAlone(), 0, "the shell checkpointed")
        let store = try SQLiteMetadataStore(path: directory + "/m.db")
        XCTAssertTrue(try eventually { try runsInDatabaseFileAlone() == 20 }, "the long WAL was not checkpointed")
        _ = store
    }

    /// Calls in a batch commit together: invisible to others until the batch ends, visible to
    /// the batch's own reads, and a call that throws is undone alone.
    func testABatchCommitsItsCallsTogetherAndUndoesAFailedOneAlone() throws {
        let store = try SQLiteMetadataStore(path: directory + "/m.db")
        try store.startRun(newRun("r1"))
        let key = Digest.of("k")
        let id = try store.batched { () throws -> Int64 in
            let id = try store.startExecution(newExecution("r1", step: "a", key: key))
            XCTAssertEqual(try store.executions(runID: "r1").map(\.step), ["a"], "the batch reads its own writes")
            XCTAssertEqual(try sqlite("SELECT count(*) FROM Execution"), "0", "nothing is visible before the batch commits")
            XCTAssertThrowsError(try store.finishExecution(id: 999_999, outcome: ExecutionOutcome(state: .complete, endedAt: Date())))
            try store.finishExecution(id: id, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), outputs: ["m": ArtifactRecord(type: "Model", uri: "/s/m", digest: Digest.of("m"), size: 1, fileCount: 1, properties: [:], createdAt: Date())]))
            return id
        }
        XCTAssertEqual(try sqlite("SELECT last_known_state FROM Execution WHERE id = \(id)"), "3")
        XCTAssertEqual(try store.reusableExecutions(runID: "r1").map(\.id), [id])

        struct Abandoned: Error {}
        XCTAssertThrowsError(try store.batched {
            _ = try store.startExecution(newExecution("r1", step: "b", key: key))
            throw Abandoned()
        })
        XCTAssertEqual(try store.executions(runID: "r1").map(\.step), ["a"], "a batch that throws records nothing")
    }

    var behaviour: StoreBehaviour {
        let path = directory + "/m.db"
        return StoreBehaviour(makeStore: { try SQLiteMetadataStore(path: path) }, sql: { try self.sqlite($0) })
    }

    func testBehaviourRunsExecutionsArtifactsAndCacheLookup() throws { try behaviour.runsExecutionsArtifactsAndCacheLookup() }
    func testBehaviourCachedExecutionsAndCacheKeyLookup() throws { try behaviour.cachedExecutionsAndCacheKeyLookup() }
    func testBehaviourArtifactsByDigestAndProducers() throws { try behaviour.artifactsByDigestAndProducers() }
    func testBehaviourPipelinesAndRuns() throws { try behaviour.pipelinesAndRuns() }
    func testBehaviourPropertyValuesRoundTrip() throws { try behaviour.propertyValuesRoundTrip() }
    func testBehaviourFailedWriteLeavesNothingHalfWritten() throws { try behaviour.failedWriteLeavesNothingHalfWritten() }

    /// Two threads and two processes, each with its own connection pool, write to one file.
    func testConcurrentWritersFromThreadsAndProcesses() throws {
        let path = directory + "/m.db"
        _ = try SQLiteMetadataStore(path: path)
        let job = WriterJob(sqlitePath: path, mysqlDatabase: nil, writer: "", runs: 6, steps: 3)
        try ConcurrentWriters.run(job: job, threads: 2, processes: 2, makeStore: { try SQLiteMetadataStore(path: path) })
        try behaviour.checkConcurrentResult(writers: 4, runsPerWriter: 6, stepsPerRun: 3)
    }

    func testRunsExecutionsArtifactsAndCacheLookup() throws {
        let store = try SQLiteMetadataStore(path: directory + "/m.db")
        let key = Digest.of("key")
        try store.startRun(newRun("r1"))
        let id = try store.startExecution(newExecution("r1", step: "train", key: key))
        XCTAssertEqual(try store.executions(withCacheKey: key, limit: 5).count, 0, "a running execution is not a cache hit")
        let artifact = ArtifactRecord(type: "Model", uri: "/store/x", digest: Digest.of("model"), size: 7, fileCount: 1, properties: ["records": 3, "kind": "lr"], createdAt: Date())
        try store.finishExecution(id: id, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), exitCode: 0, logURI: "/log", metrics: ["accuracy": 0.75], outputs: ["model": artifact]))
        try store.finishRun(id: "r1", state: .complete, endedAt: Date())

        let hits = try store.executions(withCacheKey: key, limit: 5)
        XCTAssertEqual(hits.count, 1)
        let hit = try XCTUnwrap(hits.first)
        XCTAssertEqual(hit.state, .complete)
        XCTAssertEqual(hit.metrics, ["accuracy": 0.75])
        XCTAssertEqual(hit.outputs["model"]?.digest, artifact.digest)
        XCTAssertEqual(hit.outputs["model"]?.properties, ["records": 3, "kind": "lr"])
        XCTAssertEqual(try sqlite("SELECT last_known_state FROM Execution WHERE id = \(id)"), "3", "COMPLETE is 3 in ML Metadata")

        try store.startRun(newRun("r2"))
        let cachedID = try store.recordCachedExecution(newExecution("r2", step: "train", key: key), reusing: try XCTUnwrap(ReusableExecution(hit)), at: Date())
        XCTAssertEqual(try sqlite("SELECT last_known_state FROM Execution WHERE id = \(cachedID)"), "5", "CACHED is 5")
        let evaluation = try store.startExecution(newExecution("r2", step: "eval", key: Digest.of("k2"), inputs: ["model": [try XCTUnwrap(hit.outputs["model"])]]))
        try store.finishExecution(id: evaluation, outcome: ExecutionOutcome(state: .failed, endedAt: Date(), exitCode: 1, message: "boom"))
        XCTAssertEqual(try sqlite("SELECT last_known_state FROM Execution WHERE id = \(evaluation)"), "4", "FAILED is 4")
        XCTAssertEqual(try sqlite("SELECT type FROM Event WHERE execution_id = \(evaluation)"), "3", "INPUT event")
        XCTAssertEqual(try sqlite("SELECT step_key FROM EventPath p JOIN Event e ON e.id = p.event_id WHERE e.execution_id = \(evaluation) AND p.is_index_step = 0"), "model")

        XCTAssertEqual(try store.executions(runID: "r2").map(\.step), ["train", "eval"])
        XCTAssertEqual(try store.executions(runID: "r2").first?.reusedExecutionID, id)
        XCTAssertEqual(try store.latestExecution(pipeline: "p", step: "train")?.id, cachedID)
        XCTAssertNil(try store.latestExecution(pipeline: "p", step: "eval"), "failed executions are not a baseline")
        XCTAssertEqual(try store.runs(pipeline: "p", limit: 10).map(\.id), ["r2", "r1"])
        XCTAssertEqual(try store.run(id: "r1")?.state, .complete)
        XCTAssertEqual(try store.run(id: "r1")?.gitCommit, "abc")
        XCTAssertNil(try store.run(id: "r"), "an ambiguous prefix matches nothing")
        XCTAssertEqual(try store.artifacts(matching: String(artifact.digest.hex.prefix(8))).count, 1)
        XCTAssertEqual(try store.producer(ofArtifact: try XCTUnwrap(hit.outputs["model"]?.id))?.id, id)
        let pipelines = try store.pipelines()
        XCTAssertEqual(pipelines.map(\.name), ["p"])
        XCTAssertEqual(pipelines.first?.versions.count, 1)
        XCTAssertEqual(pipelines.first?.runCount, 2)
    }
}
