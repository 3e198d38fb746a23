import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLMetadata

/// `MySQLMetadataStore` against a real MariaDB server (`scripts/services/mariadb.sh`, installed
/// and started if needed). Each test gets its own database.
final class MySQLMetadataStoreTests: XCTestCase {
    var server: MariaDBTestServer!
    var database = ""

    override func setUpWithError() throws {
        server = try MariaDBTestServer.get()
        database = MariaDBTestServer.uniqueDatabaseName()
    }

    override func tearDownWithError() throws { server?.drop(database) }

    func makeStore(maxConnections: Int = 8) throws -> MySQLMetadataStore {
        try MySQLMetadataStore(configuration: server.configuration(database: database, maxConnections: maxConnections))
    }

    /// First column of the first row of a query on the test database, as text ("" for none).
    func sql(_ query: String) throws -> String {
        let connection = try server.adminConnection(database: database)
        defer { connection.close() }
        guard let row = try connection.query(query).first, let first = row.values.first else { return "" }
        switch first {
        case .null: return ""
        case .integer(let value): return String(value)
        case .double(let value): return value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .text(let text): return text
        case .blob(let bytes): return String(decoding: bytes, as: UTF8.self)
        }
    }

    var behaviour: StoreBehaviour {
        StoreBehaviour(makeStore: { try self.makeStore() }, sql: { try self.sql($0) })
    }

    // MARK: The shared behaviour

    func testBehaviourRunsExecutionsArtifactsAndCacheLookup() throws { try behaviour.runsExecutionsArtifactsAndCacheLookup() }
    func testBehaviourCachedExecutionsAndCacheKeyLookup() throws { try behaviour.cachedExecutionsAndCacheKeyLookup() }
    func testBehaviourArtifactsByDigestAndProducers() throws { try behaviour.artifactsByDigestAndProducers() }
    func testBehaviourPipelinesAndRuns() throws { try behaviour.pipelinesAndRuns() }
    func testBehaviourPropertyValuesRoundTrip() throws { try behaviour.propertyValuesRoundTrip() }
    func testBehaviourFailedWriteLeavesNothingHalfWritten() throws { try behaviour.failedWriteLeavesNothingHalfWritten() }

    /// Two threads and two processes write to one database at once.
    func testConcurrentWritersFromThreadsAndProcesses() throws {
        _ = try makeStore()
        let configuration = server.configuration(database: database)
        let job = WriterJob(sqlitePath: nil, mysqlDatabase: database, writer: "", runs: 6, steps: 3)
        try ConcurrentWriters.run(job: job, threads: 2, processes: 2, makeStore: { try MySQLMetadataStore(configuration: configuration) }, password: server.password)
        try behaviour.checkConcurrentResult(writers: 4, runsPerWriter: 6, stepsPerRun: 3)
    }

    /// Many stores opening one new database at once create its schema once.
    func testConcurrentOpeningOfANewDatabase() throws {
        let configuration = server.configuration(database: database)
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do { _ = try MySQLMetadataStore(configuration: configuration) } catch { failures.withLock { $0.append("\(error)") } }
        }
        XCTAssertEqual(failures.current, [])
        XCTAssertEqual(try sql("SELECT count(*) FROM MLMDEnv"), "1")
        XCTAssertEqual(try sql("SELECT count(*) FROM Type"), "13", "9 builtin types and 4 of ours, once each")
    }

    // MARK: Schema

    func testFreshStoreHasMLMDSchemaVersion10AndBuiltinTypes() throws {
        _ = try makeStore()
        XCTAssertEqual(try sql("SELECT schema_version FROM MLMDEnv"), "10")
        XCTAssertEqual(try sql("SELECT count(*) FROM Type WHERE name LIKE 'mlmd.%'"), "9")
        XCTAssertEqual(try sql("SELECT group_concat(name ORDER BY id) FROM Type WHERE name LIKE 'mlmd.%'"),
                       "mlmd.Dataset,mlmd.Model,mlmd.Metrics,mlmd.Statistics,mlmd.Train,mlmd.Transform,mlmd.Process,mlmd.Evaluate,mlmd.Deploy")
        XCTAssertEqual(try sql("SELECT type_kind FROM Type WHERE name = 'zenml.Step'"), "0")
        XCTAssertEqual(try sql("SELECT type_kind FROM Type WHERE name = 'zenml.PipelineRun'"), "2")
        XCTAssertEqual(try sql("SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()"), "utf8mb4_bin")
        _ = try makeStore()
        XCTAssertEqual(try sql("SELECT count(*) FROM MLMDEnv"), "1", "opening again changes nothing")
        XCTAssertEqual(try sql("SELECT count(*) FROM Type WHERE name = 'zenml.Step'"), "1")
    }

    func testNewerSchemaIsRefused() throws {
        _ = try makeStore()
        _ = try server.adminConnection(database: database).execute("UPDATE MLMDEnv SET schema_version = 11")
        XCTAssertThrowsError(try makeStore()) { error in
            XCTAssertTrue("\(error)".contains("schema version 11, newer than the version 10"), "\(error)")
            XCTAssertTrue("\(error)".contains("mysql://zenml@127.0.0.1:\(self.server.port)/\(self.database)"), "\(error)")
        }
        XCTAssertEqual(try sql("SELECT count(*) FROM Type WHERE name = 'zenml.Step'"), "1", "nothing was written to the newer store")
    }

    func testMissingDatabaseIsNotCreatedWhenNotAllowed() throws {
        var configuration = server.configuration(database: database)
        configuration.createDatabase = false
        XCTAssertThrowsError(try MySQLMetadataStore(configuration: configuration)) { error in
            XCTAssertTrue("\(error)".contains("the database does not exist"), "\(error)")
        }
    }

    /// ml-metadata itself creates a database; ours must have the same tables, columns and indexes.
    func testSchemaIsTheOneMLMDCreatesOnMySQL() throws {
        let theirs = MariaDBTestServer.uniqueDatabaseName("zenml_mlmd")
        defer { server.drop(theirs) }
        _ = try server.adminConnection().execute("CREATE DATABASE `\(theirs)` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        _ = try MLMDPython.run(["dump", "mysql://\(server.user)@127.0.0.1:\(server.port)/\(theirs)"], password: server.password)
        _ = try makeStore()
        func schema(_ database: String) throws -> [String] {
            let connection = try server.adminConnection(database: database)
            defer { connection.close() }
            let extra = Set(MLMDSchema.mysqlExtraIndexes.map(\.name))
            return try MLMDSchema.tableNames.sorted().map { table in
                let create = try connection.query("SHOW CREATE TABLE `\(table)`").first?.string("Create Table") ?? ""
                return create.split(separator: "\n")
                    .filter { line in !extra.contains { line.contains("`\($0)`") } }
                    .joined(separator: "\n")
                    .replacingOccurrences(of: #" AUTO_INCREMENT=\d+"#, with: "", options: .regularExpression)
            }
        }
        let ours = try schema(database)
        let mlmd = try schema(theirs)
        XCTAssertEqual(ours.count, 15)
        for (mine, reference) in zip(ours, mlmd) { XCTAssertEqual(mine, reference) }
        let types = "SELECT group_concat(concat(name, ':', type_kind) ORDER BY id) FROM Type WHERE name LIKE 'mlmd.%'"
        let theirTypes = try server.adminConnection(database: theirs).query(types).first?.values.first
        XCTAssertEqual(theirTypes, .text(try sql(types)))
    }

    // MARK: ml-metadata's MySQL client

    func testMLMDReadsAStoreWrittenByMySQLMetadataStore() throws {
        let written = try MLMDCompatibility.writeScenario(try makeStore())
        let dump = try MLMDPython.run(["dump", "mysql://\(server.user)@127.0.0.1:\(server.port)/\(database)"], password: server.password)
        try MLMDCompatibility.checkScenario(dump, written)
    }

    func testMySQLMetadataStoreOpensAStoreCreatedByMLMDWithoutDamage() throws {
        _ = try server.adminConnection().execute("CREATE DATABASE `\(database)` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        let url = "mysql://\(server.user)@127.0.0.1:\(server.port)/\(database)"
        let before = try MLMDPython.run(["create", url], password: server.password)
        let artifactsBefore = try sql("SELECT count(*) FROM Artifact")
        let store = try makeStore()
        XCTAssertEqual(try sql("SELECT count(*) FROM Artifact"), artifactsBefore)
        XCTAssertEqual(try sql("SELECT count(*) FROM Type WHERE name LIKE 'mlmd.%'"), "9")
        let written = try MLMDCompatibility.writeScenario(store)
        let after = try MLMDPython.run(["dump", url], password: server.password)
        MLMDCompatibility.checkMLMDRecordsUnchanged(before: before, after: after)
        try MLMDCompatibility.checkScenario(after, written)
        XCTAssertEqual(try store.runs(pipeline: "compat", limit: 5).map(\.id), ["run-2", "run-1"])
    }

    // MARK: Dropped connections

    /// The ids of this database's client connections other than `admin`'s.
    func storeConnectionIDs(_ admin: MariaDBConnection) throws -> [Int64] {
        try admin.int64s("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() AND COMMAND <> 'Daemon'", [database])
    }

    func testConnectionKilledBetweenTransactionsIsReplaced() throws {
        let store = try makeStore(maxConnections: 1)
        try store.startRun(Fixtures.newRun("r"))
        let admin = try server.adminConnection()
        defer { admin.close() }
        let before = try storeConnectionIDs(admin)
        XCTAssertEqual(before.count, 1, "one pooled connection")
        for id in before { try admin.execute("KILL \(id)") }
        let execution = try store.startExecution(Fixtures.newExecution("r", step: "s", key: Digest.of("k")))
        XCTAssertEqual(try store.executions(runID: "r").map(\.id), [execution])
        let after = try storeConnectionIDs(admin)
        XCTAssertEqual(after.count, 1)
        XCTAssertFalse(after.contains { before.contains($0) }, "a fresh connection")
        XCTAssertEqual(try sql("SELECT count(*) FROM Execution"), "1")
    }

    /// The connection is killed in the middle of `finishExecution`, after it updated the execution
    /// and while it waits for a lock: the transaction is rolled back by the server and run again
    /// on a new connection; the result is recorded once.
    func testConnectionKilledMidTransactionIsRetried() throws {
        let store = try makeStore(maxConnections: 1)
        try store.startRun(Fixtures.newRun("r"))
        let execution = try store.startExecution(Fixtures.newExecution("r", step: "s", key: Digest.of("k")))
        let locker = try server.adminConnection(database: database)
        let killer = try server.adminConnection(database: database)
        defer { locker.close(); killer.close() }
        try locker.execute("INSERT INTO `Type` (`name`, `type_kind`) VALUES ('LockedType', 1)")
        try locker.execute("START TRANSACTION")
        _ = try locker.query("SELECT id FROM `Type` WHERE name = 'LockedType' FOR UPDATE")

        let done = DispatchSemaphore(value: 0)
        let outcome = Locked<Result<[String: ArtifactRecord], Error>?>(nil)
        DispatchQueue.global().async {
            let result = Result {
                try store.finishExecution(id: execution, outcome: ExecutionOutcome(
                    state: .complete, endedAt: Date(), exitCode: 0, metrics: ["m": 1], outputs: ["out": Fixtures.artifact("x", type: "LockedType")]))
            }
            outcome.withLock { $0 = result }
            done.signal()
        }
        func waitingTransaction(excluding other: Int64?) throws -> Int64 {
            for _ in 0..<200 {
                // (MariaDB's INNODB_TRX does not list a transaction waiting in a locking read.)
                let waiting = try killer.int64s(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() AND INFO LIKE ?",
                    [database, "SELECT id FROM `Type` WHERE name = 'LockedType'%FOR UPDATE"])
                if let id = waiting.first, id != other { return id }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw MetadataStoreError.database("no transaction waited for the lock; the call ended with \(String(describing: outcome.current))")
        }
        let first = try waitingTransaction(excluding: nil)
        try killer.execute("KILL \(first)")
        let second = try waitingTransaction(excluding: first)
        XCTAssertNotEqual(first, second, "retried on a new connection")
        try locker.execute("ROLLBACK")
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        let outputs = try XCTUnwrap(outcome.current).get()
        XCTAssertEqual(Array(outputs.keys), ["out"])
        XCTAssertEqual(try sql("SELECT count(*) FROM Artifact"), "1", "recorded once")
        XCTAssertEqual(try sql("SELECT count(*) FROM Event WHERE type = 4"), "1")
        XCTAssertEqual(try sql("SELECT count(*) FROM ExecutionProperty WHERE name = 'm' AND is_custom_property = 1"), "1")
        XCTAssertEqual(try store.executions(runID: "r").first?.state, .complete)
    }

    /// The connection drops after `COMMIT` was sent but before its reply arrived (a proxy cuts it):
    /// the commit went through, and the retry must find that out instead of applying the write a
    /// second time (which would also fail: ML Metadata's names are unique).
    func testCommitWhoseReplyWasLostIsAppliedOnce() throws {
        let proxy = try CommitCuttingProxy(targetPort: server.port)
        defer { proxy.close() }
        var configuration = server.configuration(database: database, maxConnections: 1)
        configuration.port = proxy.port
        let store = try MySQLMetadataStore(configuration: configuration)
        try store.startRun(Fixtures.newRun("r"))

        proxy.armCommitCut()
        let id = try store.startExecution(Fixtures.newExecution("r", step: "s", key: Digest.of("k")))
        XCTAssertEqual(proxy.cutCount, 1, "the reply to COMMIT was lost")
        XCTAssertEqual(try sql("SELECT count(*) FROM Execution"), "1", "applied once")
        XCTAssertEqual(try sql("SELECT id FROM Execution"), String(id), "the id of the committed execution")

        proxy.armCommitCut()
        let artifact = Fixtures.artifact("m")
        let outputs = try store.finishExecution(id: id, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), exitCode: 0, outputs: ["m": artifact]))
        XCTAssertEqual(proxy.cutCount, 2)
        XCTAssertEqual(try sql("SELECT count(*) FROM Artifact"), "1")
        XCTAssertEqual(outputs["m"]?.digest, artifact.digest)
        XCTAssertEqual(outputs["m"].map { String($0.id) }, try sql("SELECT id FROM Artifact"))

        proxy.armCommitCut()
        let source = try XCTUnwrap(store.executions(withCacheKey: Digest.of("k"), limit: 1).first.flatMap(ReusableExecution.init))
        try store.startRun(Fixtures.newRun("r2"))
        XCTAssertEqual(proxy.cutCount, 3, "startRun is idempotent: run again")
        proxy.armCommitCut()
        let cached = try store.recordCachedExecution(Fixtures.newExecution("r2", step: "s", key: Digest.of("k")), reusing: source, at: Date())
        XCTAssertEqual(proxy.cutCount, 4)
        XCTAssertEqual(try sql("SELECT count(*) FROM Execution"), "2")
        XCTAssertEqual(try store.executions(runID: "r2").map(\.id), [cached])
        XCTAssertEqual(try store.runs(pipeline: "p", limit: 10).map(\.id), ["r2", "r"])
    }

    /// The connection drops during `COMMIT` and the server stays unreachable: the error says the
    /// change may or may not be recorded (never "nothing was recorded").
    func testLostCommitWithoutServerIsReportedAsUnknown() throws {
        let proxy = try CommitCuttingProxy(targetPort: server.port)
        defer { proxy.close() }
        var configuration = server.configuration(database: database, retry: RetryPolicy(attempts: 3, initialDelay: 0.05, maxDelay: 0.1), maxConnections: 1)
        configuration.port = proxy.port
        let store = try MySQLMetadataStore(configuration: configuration)
        try store.startRun(Fixtures.newRun("r"))
        proxy.armCommitCut()
        proxy.refuseNewConnections()
        XCTAssertThrowsError(try store.startExecution(Fixtures.newExecution("r", step: "s", key: Digest.of("k")))) { error in
            guard case MetadataStoreError.commitOutcomeUnknown = error else { return XCTFail("expected .commitOutcomeUnknown, got \(error)") }
            XCTAssertTrue("\(error)".contains("either recorded completely or not at all"), "\(error)")
        }
        XCTAssertEqual(try sql("SELECT count(*) FROM Execution"), "1", "it was in fact committed")
    }

    /// The server itself restarts between two calls (a private server on another port): the next
    /// call waits for it with backoff and succeeds.
    func testServerRestartIsRetried() throws {
        let directory = NSTemporaryDirectory() + "zenml-mariadb-restart-\(UUID().uuidString.prefix(8))"
        let environment = ["ZENML_MARIADB_PORT": "13317", "ZENML_MARIADB_DIR": directory]
        defer {
            _ = try? runProcess([MariaDBTestServer.script, "stop"], environment: environment)
            try? FileManager.default.removeItem(atPath: directory)
        }
        let started = try runProcess([MariaDBTestServer.script, "start"], environment: environment)
        XCTAssertTrue(started.succeeded, started.stderr)
        var configuration = server.configuration(database: database, retry: RetryPolicy(attempts: 12, initialDelay: 0.1, maxDelay: 1))
        configuration.port = 13317
        let store = try MySQLMetadataStore(configuration: configuration)
        try store.startRun(Fixtures.newRun("r"))
        let stopped = try runProcess([MariaDBTestServer.script, "stop"], environment: environment)
        XCTAssertTrue(stopped.succeeded, stopped.stderr)
        let restart = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            Thread.sleep(forTimeInterval: 1)
            _ = try? runProcess([MariaDBTestServer.script, "start"], environment: environment)
            restart.signal()
        }
        let began = Date()
        let execution = try store.startExecution(Fixtures.newExecution("r", step: "s", key: Digest.of("k")))
        XCTAssertGreaterThan(Date().timeIntervalSince(began), 0.5, "the call waited for the server")
        XCTAssertEqual(restart.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(try store.executions(runID: "r").map(\.id), [execution])
    }

    func testUnreachableServerFailsClearlyAfterRetrying() throws {
        var configuration = server.configuration(database: database, retry: RetryPolicy(attempts: 3, initialDelay: 0.05, maxDelay: 0.1))
        configuration.port = 1  // nothing listens there
        configuration.password = "s3cret-Pa55word"
        XCTAssertThrowsError(try MySQLMetadataStore(configuration: configuration)) { error in
            let text = "\(error)"
            guard case MetadataStoreError.unavailable(_, let attempts, _) = error else { return XCTFail("expected .unavailable, got \(text)") }
            XCTAssertEqual(attempts, 3)
            XCTAssertTrue(text.contains("mysql://zenml@127.0.0.1:1/\(self.database) could not be used (3 attempts)"), text)
            XCTAssertTrue(text.contains("Check that the database server is running"), text)
            XCTAssertFalse(text.contains("s3cret-Pa55word"), text)
        }
    }

    // MARK: Credentials

    func testWrongPasswordFailsWithoutShowingIt() throws {
        var configuration = server.configuration(database: database)
        configuration.password = "wrong-Secret-42"
        XCTAssertThrowsError(try MySQLMetadataStore(configuration: configuration)) { error in
            let text = "\(error) \(String(reflecting: error)) \(error.localizedDescription)"
            guard case MetadataStoreError.accessDenied = error else { return XCTFail("expected .accessDenied, got \(text)") }
            XCTAssertTrue(text.contains("check the user name and the password"), text)
            XCTAssertFalse(text.contains("wrong-Secret-42"), text)
        }
        XCTAssertFalse("\(configuration)".contains("wrong-Secret-42"))
        XCTAssertFalse(String(reflecting: configuration).contains("wrong-Secret-42"))
        var dumped = ""
        dump(configuration, to: &dumped)
        XCTAssertFalse(dumped.contains("wrong-Secret-42"), dumped)
        XCTAssertTrue(dumped.contains("(redacted)"), dumped)
    }

    func testConfigurationFromURL() throws {
        let configuration = try MySQLConfiguration(url: "mysql://meta@db.example:3307/zenml_meta", password: "pw")
        XCTAssertEqual(configuration.host, "db.example")
        XCTAssertEqual(configuration.port, 3307)
        XCTAssertEqual(configuration.user, "meta")
        XCTAssertEqual(configuration.database, "zenml_meta")
        XCTAssertEqual(configuration.password, "pw")
        XCTAssertEqual(configuration.description, "mysql://meta@db.example:3307/zenml_meta")
        XCTAssertThrowsError(try MySQLConfiguration(url: "mysql://meta:inline-pw@db/x", password: nil)) { error in
            XCTAssertTrue("\(error)".contains("contains a password"), "\(error)")
            XCTAssertFalse("\(error)".contains("inline-pw"), "\(error)")
        }
        XCTAssertThrowsError(try MySQLConfiguration(url: "postgres://a@b/c", password: nil))
        XCTAssertThrowsError(try MySQLConfiguration(url: "mysql://db/x", password: nil), "a user is required")
    }
}
