import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLMetadata

/// ml-metadata 1.17.1 itself (in a Python venv the test creates or reuses) against SQLite stores.
/// These tests fail, not skip, when ml-metadata cannot be installed.
final class SQLiteMLMDCompatibilityTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "mlmd-compat-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func sqlite(_ path: String, _ sql: String) throws -> String {
        let result = try runProcess(["sqlite3", path, sql])
        XCTAssertTrue(result.succeeded, result.stderr)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testMLMDReadsAStoreWrittenBySQLiteMetadataStore() throws {
        let path = directory + "/ours.db"
        let store = try SQLiteMetadataStore(path: path)
        let written = try MLMDCompatibility.writeScenario(store)
        let readOnly = try MLMDPython.run(["dump", path, "--readonly"])
        try MLMDCompatibility.checkScenario(readOnly, written)
        let readWrite = try MLMDPython.run(["dump", path])
        try MLMDCompatibility.checkScenario(readWrite, written)
        // ml-metadata opening it for writing changed nothing we read.
        let reopened = try SQLiteMetadataStore(path: path)
        XCTAssertEqual(try reopened.executions(runID: "run-2").map(\.state), [.cached, .failed])
        let evaluation = try XCTUnwrap(try reopened.executions(runID: "run-2").last)
        XCTAssertEqual(evaluation.build?.id, written.examples.id, "the build is read back as the build")
        XCTAssertEqual(evaluation.inputs.keys.sorted(), ["model"], "and not as a declared input")
        XCTAssertEqual(try reopened.consumers(ofArtifact: written.examples.id).map(\.id), [written.evalID])
        XCTAssertEqual(try reopened.executions(runID: "run-1").first?.outputs["model"]?.size, 3_000_000_000)
    }

    func testSQLiteMetadataStoreOpensAStoreCreatedByMLMDWithoutDamage() throws {
        let path = directory + "/theirs.db"
        let before = try MLMDPython.run(["create", path])
        let tables = ["Type", "TypeProperty", "Artifact", "ArtifactProperty", "Execution", "ExecutionProperty", "Event", "EventPath", "Context", "ParentContext", "Association", "Attribution", "MLMDEnv"]
        let countsBefore = try tables.map { try sqlite(path, "SELECT count(*) FROM \($0)") }
        let store = try SQLiteMetadataStore(path: path)
        XCTAssertEqual(try sqlite(path, "SELECT count(*) FROM Artifact"), countsBefore[2], "opening adds no record")
        XCTAssertEqual(try sqlite(path, "SELECT count(*) FROM MLMDEnv"), "1")
        XCTAssertEqual(try sqlite(path, "SELECT count(*) FROM Type WHERE name LIKE 'mlmd.%'"), "9", "ml-metadata's builtin types are not seeded twice")
        let afterOpen = try MLMDPython.run(["dump", path, "--readonly"])
        MLMDCompatibility.checkMLMDRecordsUnchanged(before: before, after: afterOpen)

        let written = try MLMDCompatibility.writeScenario(store)
        for mode in [["--readonly"], []] {
            let after = try MLMDPython.run(["dump", path] + mode)
            MLMDCompatibility.checkMLMDRecordsUnchanged(before: before, after: after)
            try MLMDCompatibility.checkScenario(after, written)
        }
        // ml-metadata's rows are all still there (ours come on top).
        XCTAssertEqual(try sqlite(path, "SELECT count(*) FROM Artifact WHERE name IN ('examples-1', 'model-1')"), "2")
        XCTAssertEqual(try sqlite(path, "SELECT count(*) FROM Execution WHERE name = 'trainer-1'"), "1")
        XCTAssertEqual(try sqlite(path, "SELECT count(*) FROM Type WHERE name = 'Model'"), "1", "our Model outputs use ml-metadata's Model type")
        XCTAssertEqual(try sqlite(path, "SELECT data_type FROM TypeProperty p JOIN Type t ON t.id = p.type_id WHERE t.name = 'Model' AND p.name = 'framework'"), "3")
        XCTAssertEqual(try store.runs(pipeline: "compat", limit: 5).map(\.id), ["run-2", "run-1"])
        XCTAssertEqual(try store.pipelines().map(\.name), ["compat"], "ml-metadata's own contexts are not taken for pipelines")
        XCTAssertEqual(try store.artifacts(matching: written.model.digest.hex).map(\.id), [written.model.id])
    }

    func testEmptyStoreSchemaIsTheOneMLMDCreates() throws {
        let theirs = directory + "/theirs.db"
        let ours = directory + "/ours.db"
        _ = try MLMDPython.run(["dump", theirs])
        _ = try SQLiteMetadataStore(path: ours)
        func schema(_ path: String) throws -> [String] {
            try sqlite(path, "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
                .split(separator: "\n").map { $0.replacingOccurrences(of: "  ", with: " ").trimmingCharacters(in: .whitespaces) }
                .map { $0.replacingOccurrences(of: "CREATE TABLE IF NOT EXISTS", with: "CREATE TABLE").replacingOccurrences(of: "CREATE INDEX IF NOT EXISTS", with: "CREATE INDEX") }
        }
        let extra = MLMDSchema.sqliteExtraIndexStatements.compactMap { statement in statement.split(separator: "`").dropFirst().first.map(String.init) }
        let ourSchema = try schema(ours).filter { line in !extra.contains { line.contains(" \($0) ") } }
        XCTAssertEqual(ourSchema.map(normalize), try schema(theirs).map(normalize))
        XCTAssertEqual(
            try sqlite(ours, "SELECT name || ':' || type_kind FROM Type WHERE name LIKE 'mlmd.%' ORDER BY id"),
            try sqlite(theirs, "SELECT name || ':' || type_kind FROM Type WHERE name LIKE 'mlmd.%' ORDER BY id"))
        XCTAssertEqual(try sqlite(ours, "SELECT schema_version FROM MLMDEnv"), try sqlite(theirs, "SELECT schema_version FROM MLMDEnv"))
    }

    /// Whitespace-insensitive form of a statement.
    func normalize(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ").replacingOccurrences(of: "( ", with: "(").replacingOccurrences(of: " )", with: ")")
    }
}
