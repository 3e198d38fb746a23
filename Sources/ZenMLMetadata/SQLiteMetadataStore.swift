import Foundation
import GRDB
import GRDBSQLite
import ZenMLCore

/// The metadata store in one SQLite file with ML Metadata's schema (version 10).
///
/// The file is opened in WAL mode with a busy timeout, so several `zenml-run` processes can share
/// it; every method is one transaction (writes are `IMMEDIATE`, so they are serialized between
/// processes). How records map onto ML Metadata is described, and written, once for every backend
/// in ``MLMDTransaction``; ``MySQLMetadataStore`` keeps the same records in MySQL or MariaDB.
public final class SQLiteMetadataStore: MetadataStore, @unchecked Sendable {
    public let path: String
    private let busyTimeout: TimeInterval
    private let pool: DatabasePool
    private let checkpointer: WALCheckpointer
    private let typeIDs = TypeIDCache()
    /// The transaction a thread opened with ``batched(_:)``, which its calls join.
    private var batch: Batch?
    private let batchLock = NSLock()

    private struct Batch {
        let thread: pthread_t
        let db: Database
        /// The transactions of the calls made in it, told once it commits.
        var joined: [MLMDTransaction] = []
    }

    /// How long the first write waits for the checkpoint of a long WAL left by earlier commands
    /// (see ``WALCheckpointer/awaitOpeningCheckpoint(limit:)``); past it, the write goes on.
    static let openingCheckpointLimit: TimeInterval = 0.5

    /// How long a write waits for another process's transaction before it fails, by default.
    public static let defaultBusyTimeout: TimeInterval = 30

    /// Opens the store at `path`, creating the file and ML Metadata's schema if needed. A write
    /// waits up to `busyTimeout` seconds for another process's transaction to end.
    public init(path: String, busyTimeout: TimeInterval = defaultBusyTimeout) throws {
        self.path = path
        self.busyTimeout = busyTimeout
        let checkpointer = WALCheckpointer(path: path)
        self.checkpointer = checkpointer
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Checkpoints run on a thread of their own, never in a commit or a close.
            checkpointer.manage(db.sqliteConnection)
            // Statement journals (kept for multi-row INSERT OR IGNORE/REPLACE inside a transaction)
            // spill to files in /var/tmp past 64 KiB: a cached 100-step run wrote 4,900 pages
            // there, two thirds of its writes. In memory they cost no system call.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // The store grows with every run, and ML Metadata's rows for one step are spread over
            // many pages of its indexes. With SQLite's default 2 MB page cache, a cached 500-step
            // run over an 80 MB store read 200 MB in 50,000 pread calls. Mapped, pages are read
            // from the OS cache without a copy; the larger cache keeps the pages a write revisits.
            try db.execute(sql: "PRAGMA mmap_size = 1073741824")
            try db.execute(sql: "PRAGMA cache_size = -32768")
            // The WAL file is kept (empty) when the last connection closes, not deleted and made
            // again by the next command: a file created and one deleted per command, each about
            // a millisecond on ext4 after many deletions.
            var persist: CInt = 1
            _ = sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw MetadataStoreError.cannotOpen(path: path, reason: "\(error)")
        }
        try prepareSchema()
        checkpointer.checkpointIfLong()
    }

    deinit {
        try? pool.close()
        checkpointer.stop()
    }

    /// How many times the WAL was synced in the background (for tests).
    var backgroundWALSyncs: Int { checkpointer.completedSyncs }

    private func prepareSchema() throws {
        try write { transaction in
            let db = transaction.db
            let hasEnv = try db.int64("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'MLMDEnv'") ?? 0 > 0
            let version = try transaction.checkSchemaVersion(location: self.path, envTableExists: hasEnv)
            // A store already at version 10 has every table and index: skip the ~40 statements
            // that would find so, which are most of the cost of opening a store.
            if version != MLMDSchema.version {
                for statement in MLMDSchema.createStatements { try db.execute(statement) }
            }
            for statement in MLMDSchema.sqliteExtraIndexStatements { try db.execute(statement) }
            try transaction.seedSchemaRows()
        }
    }

    /// Runs `body` in one write transaction.
    private func write<T>(_ body: (MLMDTransaction) throws -> T) throws -> T {
        if let db = batchOfThisThread() {
            // Inside a batch: a savepoint keeps the call atomic; the batch commits it.
            let current = MLMDTransaction(GRDBConnection(db), types: typeIDs, readOnly: false)
            let result = try mappingErrors {
                var result: T?
                try db.inSavepoint {
                    result = try body(current)
                    return .commit
                }
                guard let result else { throw MetadataStoreError.database("a savepoint ended without a result") }
                return result
            }
            batchLock.withLock { batch?.joined.append(current) }
            return result
        }
        checkpointer.awaitOpeningCheckpoint(limit: Self.openingCheckpointLimit)
        var transaction: MLMDTransaction?
        let result = try mappingErrors {
            try pool.write { db in
                let current = MLMDTransaction(GRDBConnection(db), types: typeIDs, readOnly: false)
                transaction = current
                return try body(current)
            }
        }
        transaction?.didCommit()
        return result
    }

    /// Runs `body` in one read transaction (a snapshot of the last commit); inside a batch, in
    /// the batch's transaction.
    private func read<T>(_ body: (MLMDTransaction) throws -> T) throws -> T {
        if let db = batchOfThisThread() {
            return try mappingErrors { try body(MLMDTransaction(GRDBConnection(db), types: typeIDs, readOnly: true)) }
        }
        return try mappingErrors { try pool.read { db in try body(MLMDTransaction(GRDBConnection(db), types: typeIDs, readOnly: true)) } }
    }

    private func mappingErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as MetadataStoreError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            throw MetadataStoreError.busy(path: path, seconds: busyTimeout)
        } catch {
            throw MetadataStoreError.database("\(error)")
        }
    }

    private func batchOfThisThread() -> Database? {
        batchLock.withLock {
            guard let batch, pthread_equal(batch.thread, pthread_self()) != 0 else { return nil }
            return batch.db
        }
    }

    /// One commit for many calls: a run records its steps a few at a time, and each commit
    /// rewrote the index pages every step touches (recording was 8% of a cold chain of 100).
    public func batched<T>(_ body: () throws -> T) throws -> T {
        guard batchOfThisThread() == nil else { return try body() }
        checkpointer.awaitOpeningCheckpoint(limit: Self.openingCheckpointLimit)
        var joined: [MLMDTransaction] = []
        let result = try mappingErrors {
            try pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    batchLock.withLock { batch = Batch(thread: pthread_self(), db: db) }
                    defer { joined = batchLock.withLock { defer { batch = nil }; return batch?.joined ?? [] } }
                    result = try body()
                    return .commit
                }
                guard let result else { throw MetadataStoreError.database("a batch ended without a result") }
                return result
            }
        }
        for transaction in joined { transaction.didCommit() }
        return result
    }

    // MARK: MetadataStore

    public func startRun(_ run: NewRun) throws {
        try write { try $0.startRun(run) }
    }

    public func finishRun(id: String, state: RunState, endedAt: Date, environment: JSONValue?) throws {
        try write { try $0.finishRun(id: id, state: state, endedAt: endedAt, environment: environment) }
    }

    public func startExecution(_ execution: NewExecution) throws -> Int64 {
        try write { try $0.startExecution(execution) }
    }

    @discardableResult
    public func finishExecution(id: Int64, outcome: ExecutionOutcome) throws -> [String: ArtifactRecord] {
        try write { try $0.finishExecution(id: id, outcome: outcome) }
    }

    public func recordExecution(_ execution: NewExecution, outcome: ExecutionOutcome) throws -> (id: Int64, outputs: [String: ArtifactRecord]) {
        try write { try $0.recordExecution(execution, outcome: outcome) }
    }

    public func recordCachedExecutions(_ reuses: [CacheReuse], at date: Date) throws -> [Int64] {
        guard !reuses.isEmpty else { return [] }
        return try write { transaction in try transaction.recordCachedExecutions(reuses, at: date) }
    }

    public func newestExecutions(withCacheKeys keys: [Digest]) throws -> [Digest: ReusableExecution] {
        guard !keys.isEmpty else { return [:] }
        return try read { try $0.newestExecutions(withCacheKeys: keys) }
    }

    public func reusableExecutions(runID: String) throws -> [ReusableExecution] {
        try read { try $0.reusableExecutions(runID: runID) }
    }

    public func keyIngredients(executionID: Int64) throws -> JSONValue {
        try read { try $0.keyIngredients(executionID: executionID) }
    }

    public func executions(withCacheKey key: Digest, limit: Int) throws -> [ExecutionRecord] {
        try read { try $0.executions(withCacheKey: key, limit: limit) }
    }

    public func latestExecution(pipeline: String, step: String) throws -> ExecutionRecord? {
        try read { try $0.latestExecution(pipeline: pipeline, step: step) }
    }

    public func runs(pipeline: String?, limit: Int) throws -> [RunRecord] {
        try read { try $0.runs(pipeline: pipeline, limit: limit) }
    }

    public func run(id: String) throws -> RunRecord? {
        try read { try $0.run(id: id) }
    }

    public func runningRuns(host: String) throws -> [RunRecord] {
        try read { try $0.runningRuns(host: host) }
    }

    public func executions(runID: String) throws -> [ExecutionRecord] {
        try read { try $0.executions(runID: runID) }
    }

    public func pipelines() throws -> [PipelineRecord] {
        try read { try $0.pipelines() }
    }

    public func artifacts(matching reference: String) throws -> [ArtifactRecord] {
        try read { try $0.artifacts(matching: reference) }
    }

    public func producer(ofArtifact id: Int64) throws -> ExecutionRecord? {
        try read { try $0.producer(ofArtifact: id) }
    }

    public func consumers(ofArtifact id: Int64) throws -> [ExecutionRecord] {
        try read { try $0.consumers(ofArtifact: id) }
    }

    @discardableResult
    public func recordSnapshot(_ artifact: ArtifactRecord, type: String, key: Digest) throws -> Int64 {
        try write { try $0.recordSnapshot(artifact, type: type, key: key) }
    }

    public func snapshot(type: String, key: Digest) throws -> ArtifactRecord? {
        try read { try $0.snapshot(type: type, key: key) }
    }

    public func info() throws -> MetadataInfo {
        try read { try $0.info(backend: "sqlite", location: path) }
    }

    public func check() throws -> [String] {
        let integrity = try pool.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        return (integrity == ["ok"] ? [] : integrity.map { "SQLite: \($0)" }) + (try read { try $0.check() })
    }

    public func dump(_ emit: (JSONValue) throws -> Void) throws {
        let box = PassThroughError()
        try withoutActuallyEscaping(emit) { emit in
            try box.rethrowing { try read { try $0.dump { record in try box.catching { try emit(record) } } } }
        }
    }

    public func load(_ records: [JSONValue]) throws {
        let box = PassThroughError()
        try box.rethrowing { try write { transaction in try box.catching { try transaction.load(records) } } }
    }
}

/// A GRDB database connection, inside a transaction GRDB opened, as an ``SQLConnection``.
final class GRDBConnection: SQLConnection {
    let db: Database
    var dialect: SQLDialect { .sqlite }

    init(_ db: Database) { self.db = db }

    /// The cached statement for `sql`, with `arguments` bound, run with SQLite's own calls.
    ///
    /// Every statement here is ours, with one placeholder per argument, and nothing observes the
    /// database: GRDB's checks, value conversions and observation hooks around each execution
    /// (about a microsecond per bound value, and several per statement) were a third of
    /// recording a wave of cache hits. GRDB still prepares and caches the statements, and owns
    /// the connection and its transactions.
    private func run(_ sql: String, _ arguments: [SQLValue], row: ((OpaquePointer) -> Void)? = nil) throws {
        let handle = try db.cachedStatement(sql: sql).sqliteStatement
        // Done or failed, the statement is reset: it holds no lock or snapshot once it returns.
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        for (offset, argument) in arguments.enumerated() {
            let index = CInt(offset + 1)
            let code: CInt
            switch argument {
            case .null: code = sqlite3_bind_null(handle, index)
            case .integer(let number): code = sqlite3_bind_int64(handle, index, number)
            case .double(let number): code = sqlite3_bind_double(handle, index, number)
            case .text(let text): code = sqlite3_bind_text(handle, index, text, CInt(text.utf8.count), Self.transient)
            case .blob(let bytes) where bytes.isEmpty: code = sqlite3_bind_zeroblob(handle, index, 0)
            case .blob(let bytes): code = bytes.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, CInt($0.count), Self.transient) }
            }
            guard code == SQLITE_OK else { throw databaseError(code, sql: sql) }
        }
        while true {
            switch sqlite3_step(handle) {
            case SQLITE_DONE: return
            case SQLITE_ROW: row?(handle)
            case let code: throw databaseError(code, sql: sql)
            }
        }
    }

    private func databaseError(_ code: CInt, sql: String) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: sql)
    }

    /// SQLite's `SQLITE_TRANSIENT`: copy the bound bytes (a C macro Swift does not import).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    @discardableResult
    func execute(_ sql: String, values: [SQLValue]) throws -> Int {
        try run(sql, values)
        return Int(sqlite3_changes(db.sqliteConnection))
    }

    func query(_ sql: String, values: [SQLValue]) throws -> [SQLRow] {
        var columns: [String: Int]?
        var rows: [SQLRow] = []
        try run(sql, values) { handle in
            let count = sqlite3_column_count(handle)
            let names: [String: Int]
            if let columns {
                names = columns
            } else {
                var found: [String: Int] = [:]
                for index in 0..<count {
                    let name = String(cString: sqlite3_column_name(handle, index))
                    if found[name] == nil { found[name] = Int(index) }
                }
                columns = found
                names = found
            }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for index in 0..<count {
                switch sqlite3_column_type(handle, index) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(handle, index)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(handle, index)))
                case SQLITE_TEXT:
                    let bytes = UnsafeRawBufferPointer(start: sqlite3_column_text(handle, index), count: Int(sqlite3_column_bytes(handle, index)))
                    values.append(.text(String(decoding: bytes, as: UTF8.self)))
                case SQLITE_BLOB:
                    let bytes = UnsafeRawBufferPointer(start: sqlite3_column_blob(handle, index), count: Int(sqlite3_column_bytes(handle, index)))
                    values.append(.blob([UInt8](bytes)))
                default: values.append(.null)
                }
            }
            rows.append(SQLRow(columns: names, values: values))
        }
        return rows
    }

    var lastInsertID: Int64 { sqlite3_last_insert_rowid(db.sqliteConnection) }
}
