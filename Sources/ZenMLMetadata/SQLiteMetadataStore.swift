import Foundation
import GRDB
import ZenMLCore

/// The metadata store in one SQLite file with ML Metadata's schema (version 10).
///
/// The file is opened in WAL mode with a busy timeout, so several `zenml-run` processes can share
/// it; every method is one transaction. Our concepts map onto MLMD as follows:
/// - a pipeline is a `zenml.Pipeline` context; each version of its spec a `zenml.PipelineVersion`
///   context (child of the pipeline); each run a `zenml.PipelineRun` context (child of both);
/// - each step execution is an execution of type `zenml.Step`, associated with its run and pipeline;
/// - each output is an artifact whose type is the declared output type (`Examples`, `Model`, …),
///   with the typed properties `digest`, `size` and `file_count`, and the step's reported
///   properties as custom properties; INPUT and OUTPUT events, with the input or output name as
///   the event path, link executions and artifacts.
public final class SQLiteMetadataStore: MetadataStore, @unchecked Sendable {
    public let path: String
    private let pool: DatabasePool
    private let typeIDs = TypeIDCache()

    static let pipelineType = "zenml.Pipeline"
    static let versionType = "zenml.PipelineVersion"
    static let runType = "zenml.PipelineRun"
    static let stepType = "zenml.Step"

    /// Opens the store at `path`, creating the file and ML Metadata's schema if needed.
    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw MetadataStoreError.cannotOpen(path: path, reason: "\(error)")
        }
        try prepareSchema()
    }

    private func prepareSchema() throws {
        try write { db in
            let hasEnv = try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'MLMDEnv'") ?? false
            if hasEnv, let found = try Int.fetchOne(db, sql: "SELECT max(schema_version) FROM MLMDEnv") {
                if found > MLMDSchema.version {
                    throw MetadataStoreError.newerSchema(path: self.path, found: found, supported: MLMDSchema.version)
                }
                if found < MLMDSchema.version {
                    throw MetadataStoreError.cannotOpen(path: self.path, reason: "it uses ML Metadata schema version \(found); open it once with ml-metadata 1.17 to upgrade it to version \(MLMDSchema.version)")
                }
            }
            for statement in MLMDSchema.createStatements { try db.execute(sql: statement) }
            let versionRows = try Int.fetchOne(db, sql: "SELECT count(*) FROM MLMDEnv") ?? 0
            if versionRows == 0 {
                try db.execute(sql: "INSERT INTO MLMDEnv (schema_version) VALUES (?)", arguments: [MLMDSchema.version])
            }
            for (name, kind) in MLMDSchema.builtinTypes {
                let exists = try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM Type WHERE name = ? AND type_kind = ?", arguments: [name, kind]) ?? false
                if !exists {
                    try db.execute(sql: "INSERT INTO Type (name, type_kind) VALUES (?, ?)", arguments: [name, kind])
                }
            }
            // Registered up front so that read-only transactions find every type id in the cache.
            _ = try pipelineTypeID(db)
            _ = try versionTypeID(db)
            _ = try runTypeID(db)
            _ = try stepTypeID(db)
        }
    }

    private func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.write(body)
        } catch let error as MetadataStoreError {
            throw error
        } catch {
            throw MetadataStoreError.database("\(error)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.read(body)
        } catch let error as MetadataStoreError {
            throw error
        } catch {
            throw MetadataStoreError.database("\(error)")
        }
    }

    // MARK: Types

    private func typeID(_ db: Database, name: String, kind: MLMDSchema.TypeKind, properties: [(String, MLMDSchema.PropertyType)]) throws -> Int64 {
        if let id = typeIDs[name, kind] { return id }
        let id: Int64
        if let existing = try Int64.fetchOne(db, sql: "SELECT id FROM Type WHERE name = ? AND type_kind = ? AND version IS NULL", arguments: [name, kind.rawValue]) {
            id = existing
        } else {
            try db.execute(sql: "INSERT INTO Type (name, type_kind) VALUES (?, ?)", arguments: [name, kind.rawValue])
            id = db.lastInsertedRowID
        }
        for (property, dataType) in properties {
            try db.execute(sql: "INSERT OR IGNORE INTO TypeProperty (type_id, name, data_type) VALUES (?, ?, ?)", arguments: [id, property, dataType.rawValue])
        }
        typeIDs[name, kind] = id
        return id
    }

    private func pipelineTypeID(_ db: Database) throws -> Int64 {
        try typeID(db, name: Self.pipelineType, kind: .context, properties: [])
    }

    private func versionTypeID(_ db: Database) throws -> Int64 {
        try typeID(db, name: Self.versionType, kind: .context, properties: [("pipeline", .string), ("spec_digest", .string), ("spec", .string), ("file", .string)])
    }

    private func runTypeID(_ db: Database) throws -> Int64 {
        try typeID(db, name: Self.runType, kind: .context, properties: [
            ("pipeline", .string), ("spec_digest", .string), ("state", .string), ("started_at", .int), ("ended_at", .int),
            ("git_commit", .string), ("git_dirty", .boolean), ("environment", .string), ("workspace", .string), ("pipeline_file", .string),
        ])
    }

    private func stepTypeID(_ db: Database) throws -> Int64 {
        try typeID(db, name: Self.stepType, kind: .execution, properties: [
            ("run_id", .string), ("pipeline", .string), ("step", .string), ("cache_key", .string), ("bundle", .string),
            ("bundle_version", .string), ("bundle_digest", .string), ("config", .string), ("key_ingredients", .string),
            ("exit_code", .int), ("log_uri", .string), ("message", .string), ("started_at", .int), ("ended_at", .int),
            ("reused_execution_id", .int),
        ])
    }

    private func artifactTypeID(_ db: Database, name: String) throws -> Int64 {
        try typeID(db, name: name, kind: .artifact, properties: [("digest", .string), ("size", .int), ("file_count", .int)])
    }

    // MARK: Properties

    private enum PropertyTable: String {
        case artifact = "ArtifactProperty", execution = "ExecutionProperty", context = "ContextProperty"
        var idColumn: String {
            switch self {
            case .artifact: return "artifact_id"
            case .execution: return "execution_id"
            case .context: return "context_id"
            }
        }
    }

    private func setProperty(_ db: Database, _ table: PropertyTable, id: Int64, name: String, value: JSONValue?, custom: Bool = false) throws {
        guard let value, value != .null else { return }
        let column: String
        let stored: (any DatabaseValueConvertible)?
        switch value {
        case .int(let number): column = "int_value"; stored = number
        case .double(let number): column = "double_value"; stored = number
        case .bool(let flag): column = "bool_value"; stored = flag
        case .string(let text): column = "string_value"; stored = text
        default: column = "string_value"; stored = CanonicalJSON.encode(value)
        }
        try db.execute(
            sql: "INSERT OR REPLACE INTO \(table.rawValue) (\(table.idColumn), name, is_custom_property, \(column)) VALUES (?, ?, ?, ?)",
            arguments: [id, name, custom, stored])
    }

    private struct Properties {
        var typed: [String: JSONValue] = [:]
        var custom: [String: JSONValue] = [:]
        func string(_ name: String) -> String? { typed[name]?.stringValue }
        func int(_ name: String) -> Int64? { typed[name]?.intValue }
        func json(_ name: String) -> JSONValue {
            guard let text = string(name), let value = try? JSONValue.parse(Data(text.utf8)) else { return .null }
            return value
        }
        func date(_ name: String) -> Date? { int(name).map { Date(timeIntervalSince1970: Double($0) / 1000) } }
    }

    private func properties(_ db: Database, _ table: PropertyTable, ids: [Int64]) throws -> [Int64: Properties] {
        guard !ids.isEmpty else { return [:] }
        var result: [Int64: Properties] = [:]
        let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
        let rows = try Row.fetchAll(
            db, sql: "SELECT \(table.idColumn) AS owner, name, is_custom_property, int_value, double_value, string_value, bool_value FROM \(table.rawValue) WHERE \(table.idColumn) IN (\(placeholders))",
            arguments: StatementArguments(ids))
        for row in rows {
            let owner: Int64 = row["owner"]
            let value: JSONValue
            if let number = row["int_value"] as Int64? {
                value = .int(number)
            } else if let number = row["double_value"] as Double? {
                value = .double(number)
            } else if let flag = row["bool_value"] as Bool? {
                value = .bool(flag)
            } else if let text = row["string_value"] as String? {
                value = .string(text)
            } else {
                continue
            }
            let name: String = row["name"]
            if (row["is_custom_property"] as Bool?) == true {
                result[owner, default: Properties()].custom[name] = value
            } else {
                result[owner, default: Properties()].typed[name] = value
            }
        }
        return result
    }

    private static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    // MARK: Contexts

    private func context(_ db: Database, typeID: Int64, name: String, at date: Date) throws -> (id: Int64, created: Bool) {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM Context WHERE type_id = ? AND name = ?", arguments: [typeID, name]) {
            return (id, false)
        }
        let now = Self.milliseconds(date)
        try db.execute(
            sql: "INSERT INTO Context (type_id, name, create_time_since_epoch, last_update_time_since_epoch) VALUES (?, ?, ?, ?)",
            arguments: [typeID, name, now, now])
        return (db.lastInsertedRowID, true)
    }

    private func runContextID(_ db: Database, runID: String) throws -> Int64 {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM Context WHERE type_id = ? AND name = ?", arguments: [try runTypeID(db), runID]) else {
            throw MetadataStoreError.notFound(what: "run \(runID)")
        }
        return id
    }

    // MARK: Writing

    public func startRun(_ run: NewRun) throws {
        try write { db in
            let pipeline = try context(db, typeID: try pipelineTypeID(db), name: run.pipeline, at: run.startedAt)
            let version = try context(db, typeID: try versionTypeID(db), name: "\(run.pipeline)@\(run.specDigest)", at: run.startedAt)
            if version.created {
                try setProperty(db, .context, id: version.id, name: "pipeline", value: .string(run.pipeline))
                try setProperty(db, .context, id: version.id, name: "spec_digest", value: .string(run.specDigest.description))
                try setProperty(db, .context, id: version.id, name: "spec", value: .string(CanonicalJSON.encode(run.spec)))
                try setProperty(db, .context, id: version.id, name: "file", value: .string(run.pipelineFile))
                try db.execute(sql: "INSERT OR IGNORE INTO ParentContext (context_id, parent_context_id) VALUES (?, ?)", arguments: [version.id, pipeline.id])
            }
            let runContext = try context(db, typeID: try runTypeID(db), name: run.id, at: run.startedAt)
            let values: [(String, JSONValue?)] = [
                ("pipeline", .string(run.pipeline)), ("spec_digest", .string(run.specDigest.description)),
                ("state", .string(RunState.running.rawValue)), ("started_at", .int(Self.milliseconds(run.startedAt))),
                ("git_commit", run.gitCommit.map { .string($0) }), ("git_dirty", run.gitDirty.map { .bool($0) }),
                ("environment", .string(CanonicalJSON.encode(run.environment))), ("workspace", .string(run.workspace)),
                ("pipeline_file", .string(run.pipelineFile)),
            ]
            for (name, value) in values { try setProperty(db, .context, id: runContext.id, name: name, value: value) }
            for parent in [pipeline.id, version.id] {
                try db.execute(sql: "INSERT OR IGNORE INTO ParentContext (context_id, parent_context_id) VALUES (?, ?)", arguments: [runContext.id, parent])
            }
        }
    }

    public func finishRun(id: String, state: RunState, endedAt: Date) throws {
        try write { db in
            let contextID = try runContextID(db, runID: id)
            try setProperty(db, .context, id: contextID, name: "state", value: .string(state.rawValue))
            try setProperty(db, .context, id: contextID, name: "ended_at", value: .int(Self.milliseconds(endedAt)))
            try db.execute(sql: "UPDATE Context SET last_update_time_since_epoch = ? WHERE id = ?", arguments: [Self.milliseconds(endedAt), contextID])
        }
    }

    private func insertExecution(_ db: Database, _ execution: NewExecution, state: ExecutionState, at date: Date) throws -> Int64 {
        let typeID = try stepTypeID(db)
        let now = Self.milliseconds(date)
        try db.execute(
            sql: "INSERT INTO Execution (type_id, last_known_state, name, create_time_since_epoch, last_update_time_since_epoch) VALUES (?, ?, ?, ?, ?)",
            arguments: [typeID, state.rawValue, "\(execution.runID)/\(execution.step)", now, now])
        let id = db.lastInsertedRowID
        let values: [(String, JSONValue)] = [
            ("run_id", .string(execution.runID)), ("pipeline", .string(execution.pipeline)), ("step", .string(execution.step)),
            ("cache_key", .string(execution.cacheKey.description)), ("bundle", .string(execution.bundle)),
            ("bundle_version", .string(execution.bundleVersion)), ("bundle_digest", .string(execution.bundleDigest.description)),
            ("config", .string(CanonicalJSON.encode(execution.config))),
            ("key_ingredients", .string(CanonicalJSON.encode(execution.keyIngredients))),
            ("started_at", .int(Self.milliseconds(execution.startedAt))),
        ]
        for (name, value) in values { try setProperty(db, .execution, id: id, name: name, value: value) }
        let runContext = try runContextID(db, runID: execution.runID)
        let pipelineContext = try Int64.fetchOne(db, sql: "SELECT id FROM Context WHERE type_id = ? AND name = ?", arguments: [try pipelineTypeID(db), execution.pipeline])
        for contextID in [runContext, pipelineContext].compactMap({ $0 }) {
            try db.execute(sql: "INSERT OR IGNORE INTO Association (context_id, execution_id) VALUES (?, ?)", arguments: [contextID, id])
        }
        for (name, artifacts) in execution.inputs {
            for (index, artifact) in artifacts.enumerated() {
                try insertEvent(db, artifactID: artifact.id, executionID: id, type: .input, key: name, index: index, at: now)
            }
        }
        return id
    }

    private func insertEvent(_ db: Database, artifactID: Int64, executionID: Int64, type: MLMDSchema.EventType, key: String, index: Int?, at milliseconds: Int64) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO Event (artifact_id, execution_id, type, milliseconds_since_epoch) VALUES (?, ?, ?, ?)",
            arguments: [artifactID, executionID, type.rawValue, milliseconds])
        // A second wiring of the same artifact into the same execution is one MLMD event.
        guard db.changesCount > 0 else { return }
        let eventID = db.lastInsertedRowID
        try db.execute(sql: "INSERT INTO EventPath (event_id, is_index_step, step_index, step_key) VALUES (?, 0, NULL, ?)", arguments: [eventID, key])
        if let index {
            try db.execute(sql: "INSERT INTO EventPath (event_id, is_index_step, step_index, step_key) VALUES (?, 1, ?, NULL)", arguments: [eventID, index])
        }
    }

    public func startExecution(_ execution: NewExecution) throws -> Int64 {
        try write { db in try insertExecution(db, execution, state: .running, at: execution.startedAt) }
    }

    @discardableResult
    public func finishExecution(id: Int64, outcome: ExecutionOutcome) throws -> [String: ArtifactRecord] {
        try write { db in
            var recorded: [String: ArtifactRecord] = [:]
            let now = Self.milliseconds(outcome.endedAt)
            try db.execute(sql: "UPDATE Execution SET last_known_state = ?, last_update_time_since_epoch = ? WHERE id = ?", arguments: [outcome.state.rawValue, now, id])
            try setProperty(db, .execution, id: id, name: "ended_at", value: .int(now))
            try setProperty(db, .execution, id: id, name: "exit_code", value: outcome.exitCode.map { .int(Int64($0)) })
            try setProperty(db, .execution, id: id, name: "log_uri", value: outcome.logURI.map { .string($0) })
            try setProperty(db, .execution, id: id, name: "message", value: outcome.message.map { .string($0) })
            for (name, value) in outcome.metrics {
                try setProperty(db, .execution, id: id, name: name, value: .double(value), custom: true)
            }
            let contexts = try Int64.fetchAll(db, sql: "SELECT context_id FROM Association WHERE execution_id = ?", arguments: [id])
            let executionName = try String.fetchOne(db, sql: "SELECT name FROM Execution WHERE id = ?", arguments: [id]) ?? "\(id)"
            for (outputName, artifact) in outcome.outputs.sorted(by: { $0.key < $1.key }) {
                let typeID = try artifactTypeID(db, name: artifact.type)
                let created = Self.milliseconds(artifact.createdAt)
                try db.execute(
                    sql: "INSERT INTO Artifact (type_id, uri, state, name, create_time_since_epoch, last_update_time_since_epoch) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [typeID, artifact.uri, MLMDSchema.ArtifactState.live.rawValue, "\(executionName)/\(outputName)", created, created])
                let artifactID = db.lastInsertedRowID
                var withID = artifact
                withID.id = artifactID
                recorded[outputName] = withID
                try setProperty(db, .artifact, id: artifactID, name: "digest", value: .string(artifact.digest.description))
                try setProperty(db, .artifact, id: artifactID, name: "size", value: .int(artifact.size))
                try setProperty(db, .artifact, id: artifactID, name: "file_count", value: .int(artifact.fileCount))
                for (name, value) in artifact.properties {
                    try setProperty(db, .artifact, id: artifactID, name: name, value: value, custom: true)
                }
                try insertEvent(db, artifactID: artifactID, executionID: id, type: .output, key: outputName, index: nil, at: now)
                for contextID in contexts {
                    try db.execute(sql: "INSERT OR IGNORE INTO Attribution (context_id, artifact_id) VALUES (?, ?)", arguments: [contextID, artifactID])
                }
            }
            return recorded
        }
    }

    public func recordCachedExecution(_ execution: NewExecution, reusing source: ExecutionRecord, at date: Date) throws -> Int64 {
        try write { db in
            let id = try insertExecution(db, execution, state: .cached, at: date)
            let now = Self.milliseconds(date)
            try setProperty(db, .execution, id: id, name: "ended_at", value: .int(now))
            try setProperty(db, .execution, id: id, name: "reused_execution_id", value: .int(source.id))
            for (name, value) in source.metrics {
                try setProperty(db, .execution, id: id, name: name, value: .double(value), custom: true)
            }
            let contexts = try Int64.fetchAll(db, sql: "SELECT context_id FROM Association WHERE execution_id = ?", arguments: [id])
            for (outputName, artifact) in source.outputs {
                try insertEvent(db, artifactID: artifact.id, executionID: id, type: .output, key: outputName, index: nil, at: now)
                for contextID in contexts {
                    try db.execute(sql: "INSERT OR IGNORE INTO Attribution (context_id, artifact_id) VALUES (?, ?)", arguments: [contextID, artifact.id])
                }
            }
            return id
        }
    }

    // MARK: Reading

    private func loadArtifacts(_ db: Database, ids: [Int64]) throws -> [Int64: ArtifactRecord] {
        guard !ids.isEmpty else { return [:] }
        let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
        let rows = try Row.fetchAll(
            db, sql: "SELECT a.id, a.uri, a.create_time_since_epoch, t.name AS type FROM Artifact a JOIN Type t ON t.id = a.type_id WHERE a.id IN (\(placeholders))",
            arguments: StatementArguments(ids))
        let props = try properties(db, .artifact, ids: ids)
        var result: [Int64: ArtifactRecord] = [:]
        for row in rows {
            let id: Int64 = row["id"]
            let values = props[id] ?? Properties()
            let created: Int64 = row["create_time_since_epoch"]
            result[id] = ArtifactRecord(
                id: id, type: row["type"], uri: row["uri"] ?? "",
                digest: values.string("digest").flatMap { Digest($0) } ?? Digest.of(""),
                size: values.int("size") ?? 0, fileCount: values.int("file_count") ?? 0, properties: values.custom,
                createdAt: Date(timeIntervalSince1970: Double(created) / 1000))
        }
        return result
    }

    private func loadExecutions(_ db: Database, ids: [Int64]) throws -> [ExecutionRecord] {
        guard !ids.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
        let rows = try Row.fetchAll(db, sql: "SELECT id, last_known_state, create_time_since_epoch FROM Execution WHERE id IN (\(placeholders))", arguments: StatementArguments(ids))
        let props = try properties(db, .execution, ids: ids)
        let eventRows = try Row.fetchAll(
            db, sql: """
                SELECT e.id AS event_id, e.execution_id, e.artifact_id, e.type,
                       (SELECT step_key FROM EventPath p WHERE p.event_id = e.id AND p.is_index_step = 0 LIMIT 1) AS step_key,
                       (SELECT step_index FROM EventPath p WHERE p.event_id = e.id AND p.is_index_step = 1 LIMIT 1) AS step_index
                FROM Event e WHERE e.execution_id IN (\(placeholders))
                """, arguments: StatementArguments(ids))
        let artifacts = try loadArtifacts(db, ids: Array(Set(eventRows.map { $0["artifact_id"] as Int64 })))
        var inputs: [Int64: [String: [(Int, ArtifactRecord)]]] = [:]
        var outputs: [Int64: [String: ArtifactRecord]] = [:]
        for event in eventRows {
            let executionID: Int64 = event["execution_id"]
            guard let artifact = artifacts[event["artifact_id"]] else { continue }
            let key: String = event["step_key"] ?? ""
            let type: Int = event["type"]
            if type == MLMDSchema.EventType.input.rawValue {
                inputs[executionID, default: [:]][key, default: []].append((event["step_index"] ?? 0, artifact))
            } else if type == MLMDSchema.EventType.output.rawValue {
                outputs[executionID, default: [:]][key] = artifact
            }
        }
        var records: [ExecutionRecord] = []
        for row in rows {
            let id: Int64 = row["id"]
            let values = props[id] ?? Properties()
            let created: Int64 = row["create_time_since_epoch"]
            var metrics: [String: Double] = [:]
            for (name, value) in values.custom { if let number = value.doubleValue { metrics[name] = number } }
            records.append(
                ExecutionRecord(
                    id: id, runID: values.string("run_id") ?? "", pipeline: values.string("pipeline") ?? "",
                    step: values.string("step") ?? "", state: ExecutionState(rawValue: row["last_known_state"] ?? 0) ?? .new,
                    cacheKey: values.string("cache_key").flatMap { Digest($0) }, bundle: values.string("bundle") ?? "",
                    bundleVersion: values.string("bundle_version") ?? "", bundleDigest: values.string("bundle_digest").flatMap { Digest($0) },
                    config: values.json("config"), keyIngredients: values.json("key_ingredients"),
                    exitCode: values.int("exit_code").map { Int($0) }, logURI: values.string("log_uri"), message: values.string("message"),
                    startedAt: values.date("started_at") ?? Date(timeIntervalSince1970: Double(created) / 1000), endedAt: values.date("ended_at"),
                    metrics: metrics, reusedExecutionID: values.int("reused_execution_id"),
                    inputs: (inputs[id] ?? [:]).mapValues { $0.sorted { $0.0 < $1.0 }.map(\.1) }, outputs: outputs[id] ?? [:]))
        }
        let order = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
        return records.sorted { (order[$0.id] ?? 0) < (order[$1.id] ?? 0) }
    }

    public func executions(withCacheKey key: Digest, limit: Int) throws -> [ExecutionRecord] {
        try read { db in
            let ids = try Int64.fetchAll(
                db, sql: """
                    SELECT e.id FROM ExecutionProperty p JOIN Execution e ON e.id = p.execution_id
                    WHERE p.name = 'cache_key' AND p.is_custom_property = 0 AND p.string_value = ? AND e.last_known_state IN (3, 5)
                    ORDER BY e.id DESC LIMIT ?
                    """, arguments: [key.description, limit])
            return try loadExecutions(db, ids: ids)
        }
    }

    public func latestExecution(pipeline: String, step: String) throws -> ExecutionRecord? {
        try read { db in
            let ids = try Int64.fetchAll(
                db, sql: """
                    SELECT e.id FROM ExecutionProperty s
                    JOIN ExecutionProperty p ON p.execution_id = s.execution_id AND p.name = 'pipeline' AND p.is_custom_property = 0 AND p.string_value = ?
                    JOIN Execution e ON e.id = s.execution_id
                    WHERE s.name = 'step' AND s.is_custom_property = 0 AND s.string_value = ? AND e.last_known_state IN (3, 5)
                    ORDER BY e.id DESC LIMIT 1
                    """, arguments: [pipeline, step])
            return try loadExecutions(db, ids: ids).first
        }
    }

    private func loadRuns(_ db: Database, contextIDs: [Int64]) throws -> [RunRecord] {
        guard !contextIDs.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: contextIDs.count).joined(separator: ",")
        let rows = try Row.fetchAll(db, sql: "SELECT id, name FROM Context WHERE id IN (\(placeholders))", arguments: StatementArguments(contextIDs))
        let props = try properties(db, .context, ids: contextIDs)
        let names = Dictionary(uniqueKeysWithValues: rows.map { ($0["id"] as Int64, $0["name"] as String) })
        return contextIDs.compactMap { id in
            guard let name = names[id] else { return nil }
            let values = props[id] ?? Properties()
            return RunRecord(
                id: name, pipeline: values.string("pipeline") ?? "", specDigest: values.string("spec_digest").flatMap { Digest($0) },
                state: RunState(rawValue: values.string("state") ?? "") ?? .running,
                startedAt: values.date("started_at") ?? Date(timeIntervalSince1970: 0), endedAt: values.date("ended_at"),
                gitCommit: values.string("git_commit"), gitDirty: values.typed["git_dirty"]?.boolValue,
                environment: values.json("environment"), workspace: values.string("workspace"), pipelineFile: values.string("pipeline_file"))
        }
    }

    public func runs(pipeline: String?, limit: Int) throws -> [RunRecord] {
        try read { db in
            let typeID = try runTypeID(db)
            let ids: [Int64]
            if let pipeline {
                ids = try Int64.fetchAll(
                    db, sql: """
                        SELECT c.id FROM Context c JOIN ContextProperty p ON p.context_id = c.id AND p.name = 'pipeline' AND p.is_custom_property = 0
                        WHERE c.type_id = ? AND p.string_value = ? ORDER BY c.id DESC LIMIT ?
                        """, arguments: [typeID, pipeline, limit])
            } else {
                ids = try Int64.fetchAll(db, sql: "SELECT id FROM Context WHERE type_id = ? ORDER BY id DESC LIMIT ?", arguments: [typeID, limit])
            }
            return try loadRuns(db, contextIDs: ids)
        }
    }

    public func run(id: String) throws -> RunRecord? {
        try read { db in
            let typeID = try runTypeID(db)
            if let exact = try Int64.fetchOne(db, sql: "SELECT id FROM Context WHERE type_id = ? AND name = ?", arguments: [typeID, id]) {
                return try loadRuns(db, contextIDs: [exact]).first
            }
            let matches = try Int64.fetchAll(db, sql: "SELECT id FROM Context WHERE type_id = ? AND name LIKE ? ESCAPE '\\' LIMIT 2", arguments: [typeID, Self.likePrefix(id)])
            return matches.count == 1 ? try loadRuns(db, contextIDs: matches).first : nil
        }
    }

    static func likePrefix(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
    }

    public func executions(runID: String) throws -> [ExecutionRecord] {
        try read { db in
            let contextID = try runContextID(db, runID: runID)
            let ids = try Int64.fetchAll(db, sql: "SELECT execution_id FROM Association WHERE context_id = ? ORDER BY execution_id", arguments: [contextID])
            return try loadExecutions(db, ids: ids)
        }
    }

    public func pipelines() throws -> [PipelineRecord] {
        try read { db in
            let pipelineType = try pipelineTypeID(db)
            let versionType = try versionTypeID(db)
            let runType = try runTypeID(db)
            let pipelineRows = try Row.fetchAll(db, sql: "SELECT id, name FROM Context WHERE type_id = ? ORDER BY name", arguments: [pipelineType])
            var records: [PipelineRecord] = []
            for row in pipelineRows {
                let id: Int64 = row["id"]
                let name: String = row["name"]
                let versionRows = try Row.fetchAll(
                    db, sql: "SELECT c.id, c.create_time_since_epoch FROM Context c JOIN ParentContext pc ON pc.context_id = c.id WHERE pc.parent_context_id = ? AND c.type_id = ? ORDER BY c.id",
                    arguments: [id, versionType])
                let versionProps = try properties(db, .context, ids: versionRows.map { $0["id"] })
                let versions = versionRows.compactMap { versionRow -> PipelineVersionRecord? in
                    let values = versionProps[versionRow["id"]] ?? Properties()
                    guard let digest = values.string("spec_digest").flatMap({ Digest($0) }) else { return nil }
                    let created: Int64 = versionRow["create_time_since_epoch"]
                    return PipelineVersionRecord(specDigest: digest, spec: values.json("spec"), file: values.string("file"), createdAt: Date(timeIntervalSince1970: Double(created) / 1000))
                }
                let runIDs = try Int64.fetchAll(
                    db, sql: "SELECT c.id FROM Context c JOIN ParentContext pc ON pc.context_id = c.id WHERE pc.parent_context_id = ? AND c.type_id = ? ORDER BY c.id DESC",
                    arguments: [id, runType])
                records.append(PipelineRecord(name: name, versions: versions, runCount: runIDs.count, lastRun: try loadRuns(db, contextIDs: Array(runIDs.prefix(1))).first))
            }
            return records
        }
    }

    public func artifacts(matching reference: String) throws -> [ArtifactRecord] {
        try read { db in
            var ids: [Int64] = []
            if let number = Int64(reference) {
                ids = try Int64.fetchAll(db, sql: "SELECT id FROM Artifact WHERE id = ?", arguments: [number])
            }
            if ids.isEmpty {
                let hex = reference.hasPrefix("sha256:") ? String(reference.dropFirst(7)) : reference
                guard !hex.isEmpty, hex.allSatisfy(\.isHexDigit) else { return [] }
                ids = try Int64.fetchAll(
                    db, sql: "SELECT artifact_id FROM ArtifactProperty WHERE name = 'digest' AND is_custom_property = 0 AND string_value >= ? AND string_value < ? ORDER BY artifact_id",
                    arguments: ["sha256:" + hex.lowercased(), "sha256:" + hex.lowercased() + "\u{7f}"])
            }
            let artifacts = try loadArtifacts(db, ids: ids)
            return ids.compactMap { artifacts[$0] }
        }
    }

    public func producer(ofArtifact id: Int64) throws -> ExecutionRecord? {
        try read { db in
            let ids = try Int64.fetchAll(db, sql: "SELECT execution_id FROM Event WHERE artifact_id = ? AND type = ? ORDER BY execution_id LIMIT 1", arguments: [id, MLMDSchema.EventType.output.rawValue])
            return try loadExecutions(db, ids: ids).first
        }
    }
}

/// Type ids by (name, kind), remembered per store so each type is looked up once.
private final class TypeIDCache: @unchecked Sendable {
    private var values: [String: Int64] = [:]
    private let lock = NSLock()

    subscript(name: String, kind: MLMDSchema.TypeKind) -> Int64? {
        get { lock.withLock { values["\(kind.rawValue)/\(name)"] } }
        set { lock.withLock { values["\(kind.rawValue)/\(name)"] = newValue } }
    }
}
