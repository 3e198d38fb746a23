import Foundation
import ZenMLCore

/// Where a MySQL or MariaDB metadata store lives and how to reach it.
///
/// The password is supplied by the caller (the CLI reads it from an environment variable or a
/// prompt). It is never logged: ``description``, `dump` and every error leave it out.
public struct MySQLConfiguration: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var host: String
    public var port: Int
    /// A unix socket path; when set, it is used instead of `host` and `port`.
    public var socket: String?
    public var user: String
    public var password: String?
    /// The database (schema) that holds the store.
    public var database: String
    /// Create the database if it does not exist (with `utf8mb4_bin`, so names compare exactly).
    public var createDatabase: Bool
    /// Seconds to wait for a connection.
    public var connectTimeout: TimeInterval
    /// Seconds to wait for a server reply before the connection counts as lost; longer than
    /// InnoDB's lock wait timeout (50 s), so waiting for a lock is not mistaken for a lost server.
    public var readTimeout: TimeInterval
    /// How often and how patiently a transaction whose connection dropped is tried again.
    public var retry: RetryPolicy
    /// Connections kept open at most; more concurrent calls wait for one.
    public var maxConnections: Int

    public init(
        host: String = "127.0.0.1", port: Int = 3306, socket: String? = nil, user: String, password: String?, database: String,
        createDatabase: Bool = true, connectTimeout: TimeInterval = 10, readTimeout: TimeInterval = 120,
        retry: RetryPolicy = RetryPolicy(), maxConnections: Int = 8
    ) {
        self.host = host
        self.port = port
        self.socket = socket
        self.user = user
        self.password = password
        self.database = database
        self.createDatabase = createDatabase
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.retry = retry
        self.maxConnections = maxConnections
    }

    /// Reads `mysql://USER@HOST[:PORT]/DATABASE` (a password in the URL is refused: pass it separately).
    public init(url: String, password: String?) throws {
        guard let components = URLComponents(string: url), components.scheme == "mysql" || components.scheme == "mariadb",
              let host = components.host, !host.isEmpty
        else {
            throw MetadataStoreError.cannotOpen(path: url, reason: "expected a URL like mysql://USER@HOST:PORT/DATABASE")
        }
        if components.password != nil {
            throw MetadataStoreError.cannotOpen(
                path: "mysql://\(components.user ?? "")@\(host)", reason: "the URL contains a password; give the password separately (environment variable or prompt), never in the URL")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard let user = components.user, !user.isEmpty, !database.isEmpty else {
            throw MetadataStoreError.cannotOpen(path: url, reason: "the URL needs a user and a database: mysql://USER@HOST:PORT/DATABASE")
        }
        self.init(host: host, port: components.port ?? 3306, user: user, password: password, database: database)
    }

    /// `mysql://USER@HOST:PORT/DATABASE` (or `…@localhost:SOCKET/…`): never the password.
    public var description: String {
        if let socket { return "mysql://\(user)@localhost:\(socket)/\(database)" }
        return "mysql://\(user)@\(host):\(port)/\(database)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["host": host, "port": port, "socket": socket as Any, "user": user, "password": password == nil ? "(none)" : "(redacted)", "database": database])
    }

    var connectOptions: MariaDBConnectOptions {
        MariaDBConnectOptions(
            host: host, port: port, socket: socket, user: user, password: password, database: database,
            connectTimeout: connectTimeout, readTimeout: readTimeout)
    }

    /// `text` with the password (if one is set, of 4 characters or more) replaced: a last line of
    /// defence for messages that come from the server or the client library.
    func redacted(_ text: String) -> String {
        guard let password, password.count >= 4 else { return text }
        return text.replacingOccurrences(of: password, with: "(redacted)")
    }
}

/// Exponential backoff for transactions whose connection dropped or that lost a deadlock.
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var attempts: Int
    /// Seconds before the second attempt; doubled for each further one, up to `maxDelay`.
    public var initialDelay: TimeInterval
    public var maxDelay: TimeInterval

    public init(attempts: Int = 8, initialDelay: TimeInterval = 0.1, maxDelay: TimeInterval = 2) {
        self.attempts = max(1, attempts)
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    /// The pause after failed attempt number `attempt` (1-based), with ±20 % jitter so that
    /// competing processes do not retry in step.
    func delay(after attempt: Int) -> TimeInterval {
        let base = min(maxDelay, initialDelay * pow(2, Double(attempt - 1)))
        return base * Double.random(in: 0.8...1.2)
    }
}

/// The metadata store in a MySQL or MariaDB database with ML Metadata's schema (version 10),
/// exactly as ml-metadata 1.17 creates it there (``MLMDSchema``), so ml-metadata's own MySQL
/// client reads it; the records map onto ML Metadata as for SQLite (``MLMDTransaction``).
///
/// Every method is one InnoDB transaction. When the connection drops (server restarted,
/// connection killed, network error) or the server rolls the transaction back as a deadlock, the
/// transaction is run again on a fresh connection, with backoff (``RetryPolicy``). A commit whose
/// acknowledgement was lost with the connection is checked before anything is done again, so a
/// retried write is applied once. An operation that cannot complete throws a
/// ``MetadataStoreError`` and leaves nothing half-written.
public final class MySQLMetadataStore: MetadataStore, @unchecked Sendable {
    public let configuration: MySQLConfiguration
    private let pool: MariaDBConnectionPool
    private let typeIDs = TypeIDCache()

    /// Connects, creates the database if allowed and needed, and creates ML Metadata's schema in
    /// it if it has none; refuses a store of a newer schema version.
    public init(configuration: MySQLConfiguration) throws {
        self.configuration = configuration
        guard !configuration.database.isEmpty, configuration.database.count <= 64, !configuration.database.contains("\u{0}") else {
            throw MetadataStoreError.cannotOpen(path: configuration.description, reason: "a database name has 1 to 64 characters")
        }
        try MariaDBLibrary.load(for: configuration.description)
        pool = MariaDBConnectionPool(options: configuration.connectOptions, maxConnections: max(1, configuration.maxConnections))
        try prepareSchema()
    }

    /// Closes the idle connections (the store stays usable: it reconnects when needed).
    public func closeConnections() { pool.discardIdle() }

    private var location: String { configuration.description }

    // MARK: Schema

    private static func quoted(_ identifier: String) -> String { "`" + identifier.replacingOccurrences(of: "`", with: "``") + "`" }

    private func prepareSchema() throws {
        try withRetries { _ in
            var options = configuration.connectOptions
            options.database = nil
            let connection = try MariaDBConnection(options)
            defer { connection.close() }
            if configuration.createDatabase {
                try connection.execute("CREATE DATABASE IF NOT EXISTS \(Self.quoted(configuration.database)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            }
            do {
                try connection.execute("USE \(Self.quoted(configuration.database))")
            } catch let error as MariaDBError where error.code == 1049 {  // ER_BAD_DB_ERROR
                throw MetadataStoreError.cannotOpen(path: location, reason: "the database does not exist (and creating it was not allowed): \(error.message)")
            }
            // Two processes opening a new store at once must not both create it: DDL is not
            // transactional in MySQL. A named lock serializes them; the second finds it done.
            let lockName = "zenml-mlmd-" + String(configuration.database.prefix(40))
            guard try connection.int64("SELECT GET_LOCK(?, ?)", [lockName, Int(max(configuration.readTimeout - 5, 5))]) == 1 else {
                throw MetadataStoreError.unavailable(path: location, attempts: 1, reason: "another process has been creating the store's schema for too long")
            }
            defer { _ = try? connection.execute("SELECT RELEASE_LOCK(?)", [lockName]) }
            try createSchemaIfNeeded(connection)
        }
        try transaction(readOnly: false) { try $0.seedSchemaRows() }
    }

    /// Creates ml-metadata's tables and indexes that are missing (all of them in a new database),
    /// after checking the schema version of an existing store.
    private func createSchemaIfNeeded(_ connection: MariaDBConnection) throws {
        let tables = Set(try connection.query("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()").compactMap { $0.string("name") })
        let check = MLMDTransaction(connection, types: typeIDs, readOnly: true)
        let version = try check.checkSchemaVersion(location: location, envTableExists: tables.contains("MLMDEnv"))
        if version == nil, tables.contains("Type"), try connection.int64("SELECT count(*) FROM `Type`") ?? 0 > 0 {
            throw MetadataStoreError.cannotOpen(
                path: location,
                reason: "the database holds ML Metadata tables with data but no schema version (MLMDEnv); open it once with ml-metadata 1.17 to upgrade it")
        }
        for statement in MLMDSchema.mysqlCreateTableStatements { try connection.execute(statement) }
        let existing = Set(try connection.query(
            "SELECT DISTINCT table_name AS t, index_name AS i FROM information_schema.statistics WHERE table_schema = DATABASE()"
        ).map { "\($0.string("t") ?? "").\($0.string("i") ?? "")" })
        for (statement, indexes) in MLMDSchema.mysqlSecondaryIndexStatements where indexes.contains(where: { !existing.contains("\($0.table).\($0.name)") }) {
            try addIndex(connection, statement)
        }
        for index in MLMDSchema.mysqlExtraIndexes where !existing.contains("\(index.table).\(index.name)") {
            try addIndex(connection, index.statement)
        }
    }

    private func addIndex(_ connection: MariaDBConnection, _ statement: String) throws {
        do {
            try connection.execute(statement)
        } catch let error as MariaDBError where error.code == 1061 {
            // ER_DUP_KEYNAME: already there (ml-metadata ignores it too).
        }
    }

    // MARK: Transactions

    /// Runs `body` again while it fails with a lost connection or a transaction conflict, with
    /// backoff; maps the final failure to a ``MetadataStoreError``.
    private func withRetries<T>(_ body: (_ attempt: Int) throws -> T) throws -> T {
        let policy = configuration.retry
        var attempt = 1
        while true {
            do {
                return try body(attempt)
            } catch let error as MariaDBError {
                let retryable = error.isConnectionLost || error.isTransactionConflict
                if error.isConnectionLost { pool.discardIdle() }
                if retryable && attempt < policy.attempts {
                    Thread.sleep(forTimeInterval: policy.delay(after: attempt))
                    attempt += 1
                    continue
                }
                throw mapped(error, attempts: attempt)
            } catch let error as MetadataStoreError {
                throw error
            } catch {
                throw MetadataStoreError.database(configuration.redacted("\(error)"))
            }
        }
    }

    private func mapped(_ error: MariaDBError, attempts: Int) -> MetadataStoreError {
        let message = configuration.redacted(error.description)
        if error.isAccessDenied { return .accessDenied(path: location, reason: message) }
        if error.isConnectionLost || error.isTransactionConflict { return .unavailable(path: location, attempts: attempts, reason: message) }
        return .database("\(location): \(message)")
    }

    /// Runs `body` in one transaction, retried on a fresh connection when the connection drops or
    /// the server picks it as a deadlock victim.
    ///
    /// - Parameter ifCommitWasLost: for a write that is not idempotent: called, in the retried
    ///   transaction, when the previous attempt's `COMMIT` got no answer (the connection dropped
    ///   during it, so it may have been applied). It returns the operation's result if the
    ///   previous attempt did commit, or nil to run `body` again.
    private func transaction<T>(
        readOnly: Bool, ifCommitWasLost: ((MLMDTransaction) throws -> T?)? = nil, _ body: (MLMDTransaction) throws -> T
    ) throws -> T {
        var commitWasLost = false
        do {
            return try runTransaction(readOnly: readOnly, ifCommitWasLost: ifCommitWasLost, commitWasLost: &commitWasLost, body)
        } catch MetadataStoreError.unavailable(let path, _, let reason) where commitWasLost {
            throw MetadataStoreError.commitOutcomeUnknown(path: path, reason: reason)
        }
    }

    private func runTransaction<T>(
        readOnly: Bool, ifCommitWasLost: ((MLMDTransaction) throws -> T?)?, commitWasLost: inout Bool, _ body: (MLMDTransaction) throws -> T
    ) throws -> T {
        try withRetries { _ in
            let connection = try pool.checkOut()
            var healthy = true
            defer { healthy ? pool.checkIn(connection) : pool.discard(connection) }
            do {
                // Sent with the first statement of the body: no round trip of its own.
                connection.sendWithNextStatement(readOnly ? "START TRANSACTION READ ONLY" : "START TRANSACTION")
                let transaction = MLMDTransaction(connection, types: typeIDs, readOnly: readOnly)
                let result: T
                if commitWasLost, let ifCommitWasLost {
                    if let previous = try ifCommitWasLost(transaction) {
                        result = previous
                    } else {
                        commitWasLost = false  // checked: the lost commit had not been applied
                        result = try body(transaction)
                    }
                } else {
                    result = try body(transaction)
                }
                if readOnly {
                    // Nothing to make durable: the reply is read before the connection's next
                    // statement, so the caller does not wait for it.
                    try connection.sendWithoutWaiting("COMMIT")
                } else {
                    do {
                        try connection.execute("COMMIT")
                    } catch let error as MariaDBError where error.isConnectionLost {
                        commitWasLost = true
                        throw error
                    }
                }
                transaction.didCommit()
                return result
            } catch let error as MariaDBError where error.isConnectionLost {
                healthy = false
                throw error
            } catch {
                do {
                    try connection.execute("ROLLBACK")
                } catch {
                    healthy = false
                }
                throw error
            }
        }
    }

    // MARK: MetadataStore

    public func startRun(_ run: NewRun) throws {
        // Idempotent: running it twice records the run once.
        try transaction(readOnly: false) { try $0.startRun(run) }
    }

    public func finishRun(id: String, state: RunState, endedAt: Date, environment: JSONValue?) throws {
        try transaction(readOnly: false) { try $0.finishRun(id: id, state: state, endedAt: endedAt, environment: environment) }
    }

    public func startExecution(_ execution: NewExecution) throws -> Int64 {
        try transaction(
            readOnly: false, ifCommitWasLost: { try $0.executionID(runID: execution.runID, step: execution.step) }
        ) { try $0.startExecution(execution) }
    }

    @discardableResult
    public func finishExecution(id: Int64, outcome: ExecutionOutcome) throws -> [String: ArtifactRecord] {
        try transaction(
            readOnly: false,
            ifCommitWasLost: { transaction in
                // Outputs are recorded with the outcome, in the same commit.
                guard let recorded = try transaction.recordedOutcome(executionID: id), recorded.state == outcome.state,
                      outcome.outputs.isEmpty || !recorded.outputs.isEmpty
                else { return nil }
                return recorded.outputs
            }
        ) { try $0.finishExecution(id: id, outcome: outcome) }
    }

    public func recordExecution(_ execution: NewExecution, outcome: ExecutionOutcome) throws -> (id: Int64, outputs: [String: ArtifactRecord]) {
        try transaction(
            readOnly: false,
            ifCommitWasLost: { transaction in
                guard let id = try transaction.executionID(runID: execution.runID, step: execution.step),
                      let recorded = try transaction.recordedOutcome(executionID: id), recorded.state == outcome.state,
                      outcome.outputs.isEmpty || !recorded.outputs.isEmpty
                else { return nil }
                return (id, recorded.outputs)
            }
        ) { try $0.recordExecution(execution, outcome: outcome) }
    }

    public func recordCachedExecutions(_ reuses: [CacheReuse], at date: Date) throws -> [Int64] {
        guard !reuses.isEmpty else { return [] }
        return try transaction(
            readOnly: false,
            ifCommitWasLost: { transaction in
                // One transaction: either every execution was recorded or none was.
                let ids = try reuses.map { try transaction.executionID(runID: $0.execution.runID, step: $0.execution.step) }
                return ids.contains(nil) ? nil : ids.compactMap { $0 }
            }
        ) { transaction in try transaction.recordCachedExecutions(reuses, at: date) }
    }

    public func newestExecutions(withCacheKeys keys: [Digest]) throws -> [Digest: ReusableExecution] {
        guard !keys.isEmpty else { return [:] }
        return try transaction(readOnly: true) { try $0.newestExecutions(withCacheKeys: keys) }
    }

    public func reusableExecutions(runID: String) throws -> [ReusableExecution] {
        try transaction(readOnly: true) { try $0.reusableExecutions(runID: runID) }
    }

    public func keyIngredients(executionID: Int64) throws -> JSONValue {
        try transaction(readOnly: true) { try $0.keyIngredients(executionID: executionID) }
    }

    public func executions(withCacheKey key: Digest, limit: Int) throws -> [ExecutionRecord] {
        try transaction(readOnly: true) { try $0.executions(withCacheKey: key, limit: limit) }
    }

    public func latestExecution(pipeline: String, step: String) throws -> ExecutionRecord? {
        try transaction(readOnly: true) { try $0.latestExecution(pipeline: pipeline, step: step) }
    }

    public func runs(pipeline: String?, limit: Int) throws -> [RunRecord] {
        try transaction(readOnly: true) { try $0.runs(pipeline: pipeline, limit: limit) }
    }

    public func run(id: String) throws -> RunRecord? {
        try transaction(readOnly: true) { try $0.run(id: id) }
    }

    public func runningRuns(host: String) throws -> [RunRecord] {
        try transaction(readOnly: true) { try $0.runningRuns(host: host) }
    }

    public func executions(runID: String) throws -> [ExecutionRecord] {
        try transaction(readOnly: true) { try $0.executions(runID: runID) }
    }

    public func pipelines() throws -> [PipelineRecord] {
        try transaction(readOnly: true) { try $0.pipelines() }
    }

    public func artifacts(matching reference: String) throws -> [ArtifactRecord] {
        try transaction(readOnly: true) { try $0.artifacts(matching: reference) }
    }

    public func producer(ofArtifact id: Int64) throws -> ExecutionRecord? {
        try transaction(readOnly: true) { try $0.producer(ofArtifact: id) }
    }

    public func consumers(ofArtifact id: Int64) throws -> [ExecutionRecord] {
        try transaction(readOnly: true) { try $0.consumers(ofArtifact: id) }
    }

    @discardableResult
    public func recordSnapshot(_ artifact: ArtifactRecord, type: String, key: Digest) throws -> Int64 {
        // Idempotent: a lost commit is simply recorded again.
        try transaction(readOnly: false) { try $0.recordSnapshot(artifact, type: type, key: key) }
    }

    public func snapshot(type: String, key: Digest) throws -> ArtifactRecord? {
        try transaction(readOnly: true) { try $0.snapshot(type: type, key: key) }
    }

    /// Calls are committed one by one here: holding one server transaction across a run's
    /// recording jobs would hold its row locks between them, against every other client.
    public func batched<T>(_ body: () throws -> T) throws -> T { try body() }

    public func info() throws -> MetadataInfo {
        try transaction(readOnly: true) { try $0.info(backend: "mysql", location: configuration.description) }
    }

    public func check() throws -> [String] {
        try transaction(readOnly: true) { try $0.check() }
    }

    public func dump(_ emit: (JSONValue) throws -> Void) throws {
        let box = PassThroughError()
        try withoutActuallyEscaping(emit) { emit in
            try box.rethrowing { try transaction(readOnly: true) { try $0.dump { record in try box.catching { try emit(record) } } } }
        }
    }

    public func load(_ records: [JSONValue]) throws {
        let box = PassThroughError()
        try box.rethrowing { try transaction(readOnly: false) { transaction in try box.catching { try transaction.load(records) } } }
    }
}

/// Open connections to one database, handed to one transaction at a time.
final class MariaDBConnectionPool: @unchecked Sendable {
    private let options: MariaDBConnectOptions
    private let maxConnections: Int
    private let condition = NSCondition()
    private var idle: [MariaDBConnection] = []
    private var open = 0

    init(options: MariaDBConnectOptions, maxConnections: Int) {
        self.options = options
        self.maxConnections = maxConnections
    }

    /// An idle connection, or a new one; waits while `maxConnections` are in use.
    func checkOut() throws -> MariaDBConnection {
        condition.lock()
        while idle.isEmpty && open >= maxConnections { condition.wait() }
        if let connection = idle.popLast() {
            condition.unlock()
            return connection
        }
        open += 1
        condition.unlock()
        do {
            return try MariaDBConnection(options)
        } catch {
            condition.lock()
            open -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    func checkIn(_ connection: MariaDBConnection) {
        condition.lock()
        idle.append(connection)
        condition.signal()
        condition.unlock()
    }

    /// Closes a connection that is broken (or in an unknown state) instead of returning it.
    func discard(_ connection: MariaDBConnection) {
        connection.close()
        condition.lock()
        open -= 1
        condition.signal()
        condition.unlock()
    }

    /// Closes every idle connection: after one connection was lost (a server restart, say) the
    /// others are most likely dead too.
    func discardIdle() {
        condition.lock()
        let closing = idle
        idle = []
        open -= closing.count
        condition.broadcast()
        condition.unlock()
        for connection in closing { connection.close() }
    }
}
