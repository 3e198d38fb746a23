import Foundation
import ZenMLCore

/// How zenml-run's records map onto ML Metadata, written once for every SQL backend.
///
/// One instance lives for one transaction of a store (``SQLiteMetadataStore``,
/// ``MySQLMetadataStore``), which owns the transaction: begins it, commits it, rolls it back and
/// retries it. The mapping:
/// - a pipeline is a `zenml.Pipeline` context; each version of its spec a `zenml.PipelineVersion`
///   context (child of the pipeline); each run a `zenml.PipelineRun` context (child of both);
/// - each step execution is an execution of type `zenml.Step` named `RUN/STEP`, associated with
///   its run and pipeline contexts;
/// - each output is an artifact whose type is the declared output type (`Examples`, `Model`, …),
///   named `RUN/STEP/OUTPUT`, with the typed properties `digest`, `size` and `file_count`, and the
///   step's reported properties as custom properties; INPUT and OUTPUT events, with the input or
///   output name (and, for inputs, the index) as the event path, link executions and artifacts;
///   artifacts are attributed to the contexts of the execution that produced or reused them;
/// - property values follow ``PropertyValueCodec``; times are milliseconds since the epoch.
final class MLMDTransaction {
    let db: any SQLConnection
    private let knownTypes: TypeIDCache
    /// Types registered by this transaction: they join `knownTypes` only once it commits.
    private(set) var registeredTypes: [TypeIDCache.Key: Int64] = [:]
    private let readOnly: Bool

    static let pipelineType = "zenml.Pipeline"
    static let versionType = "zenml.PipelineVersion"
    static let runType = "zenml.PipelineRun"
    static let stepType = "zenml.Step"

    init(_ db: any SQLConnection, types: TypeIDCache, readOnly: Bool) {
        self.db = db
        self.knownTypes = types
        self.readOnly = readOnly
    }

    /// Call after the transaction committed: remembers the types it registered.
    func didCommit() { knownTypes.merge(registeredTypes) }

    // MARK: Schema

    /// Checks `MLMDEnv` (ML Metadata's schema version); `location` names the store in errors.
    /// Returns the version found, or nil for a store without one (a new, empty database).
    @discardableResult
    func checkSchemaVersion(location: String, envTableExists: Bool) throws -> Int? {
        guard envTableExists, let found = try db.int64("SELECT max(schema_version) FROM `MLMDEnv`") else { return nil }
        if found > MLMDSchema.version {
            throw MetadataStoreError.newerSchema(path: location, found: Int(found), supported: MLMDSchema.version)
        }
        if found < MLMDSchema.version {
            throw MetadataStoreError.cannotOpen(
                path: location,
                reason: "it uses ML Metadata schema version \(found); open it once with ml-metadata 1.17 to upgrade it to version \(MLMDSchema.version)")
        }
        return Int(found)
    }

    /// Records the schema version if the store has none, and seeds ml-metadata's nine `mlmd.*`
    /// types and zenml-run's own types. Idempotent.
    func seedSchemaRows() throws {
        let versions = try db.int64s("SELECT schema_version FROM `MLMDEnv`" + db.dialect.lockingRead)
        if versions.isEmpty {
            try db.execute("INSERT INTO `MLMDEnv` (`schema_version`) VALUES (?)", [MLMDSchema.version])
        }
        for (name, kind) in MLMDSchema.builtinTypes {
            let exists = try db.int64("SELECT id FROM `Type` WHERE name = ? AND type_kind = ? AND version IS NULL" + db.dialect.lockingRead, [name, kind]) != nil
            if !exists {
                try db.execute("INSERT INTO `Type` (`name`, `type_kind`) VALUES (?, ?)", [name, kind])
            }
        }
        // Registered up front so that read-only transactions find every type id in the cache.
        _ = try pipelineTypeID()
        _ = try versionTypeID()
        _ = try runTypeID()
        _ = try stepTypeID()
    }

    // MARK: Types

    private func typeID(name: String, kind: MLMDSchema.TypeKind, properties: [(String, MLMDSchema.PropertyType)]) throws -> Int64 {
        let key = TypeIDCache.Key(name: name, kind: kind)
        if let id = knownTypes[key] ?? registeredTypes[key] { return id }
        let lookup = "SELECT id FROM `Type` WHERE name = ? AND type_kind = ? AND version IS NULL ORDER BY id LIMIT 1"
        let id: Int64
        if readOnly {
            guard let existing = try db.int64(lookup, [name, kind.rawValue]) else {
                throw MetadataStoreError.database("the type \(name) is missing from the store; open it once for writing to register it")
            }
            id = existing
        } else if let existing = try db.int64(lookup + db.dialect.lockingRead, [name, kind.rawValue]) {
            id = existing
        } else {
            try db.execute("INSERT INTO `Type` (`name`, `type_kind`) VALUES (?, ?)", [name, kind.rawValue])
            id = db.lastInsertID
        }
        if !readOnly {
            // A property that an existing type (ml-metadata's or a user's) already declares keeps
            // its declaration.
            for (property, dataType) in properties {
                try db.execute("\(db.dialect.insertIgnoringDuplicates) `TypeProperty` (`type_id`, `name`, `data_type`) VALUES (?, ?, ?)", [id, property, dataType.rawValue])
            }
        }
        registeredTypes[key] = id
        return id
    }

    func pipelineTypeID() throws -> Int64 {
        try typeID(name: Self.pipelineType, kind: .context, properties: [])
    }

    func versionTypeID() throws -> Int64 {
        try typeID(name: Self.versionType, kind: .context, properties: [("pipeline", .string), ("spec_digest", .string), ("spec", .string), ("file", .string)])
    }

    func runTypeID() throws -> Int64 {
        try typeID(name: Self.runType, kind: .context, properties: [
            ("pipeline", .string), ("spec_digest", .string), ("state", .string), ("started_at", .double), ("ended_at", .double),
            ("git_commit", .string), ("git_dirty", .boolean), ("environment", .string), ("workspace", .string), ("pipeline_file", .string),
            ("git_diff", .string), ("host", .string), ("pid", .int),
        ])
    }

    func stepTypeID() throws -> Int64 {
        try typeID(name: Self.stepType, kind: .execution, properties: [
            ("run_id", .string), ("pipeline", .string), ("step", .string), ("cache_key", .string), ("bundle", .string),
            ("bundle_version", .string), ("bundle_digest", .string), ("config", .string), ("key_ingredients", .string),
            ("exit_code", .int), ("log_uri", .string), ("message", .string), ("started_at", .double), ("ended_at", .double),
            ("reused_execution_id", .int), ("peak_memory_bytes", .int), ("cpu_seconds", .double), ("backend", .string),
        ])
    }

    func artifactTypeID(name: String) throws -> Int64 {
        try typeID(name: name, kind: .artifact, properties: [("digest", .string), ("size", .double), ("file_count", .int)])
    }

    // MARK: Properties

    enum PropertyTable: String {
        case artifact = "ArtifactProperty", execution = "ExecutionProperty", context = "ContextProperty"
        var idColumn: String {
            switch self {
            case .artifact: return "artifact_id"
            case .execution: return "execution_id"
            case .context: return "context_id"
            }
        }
    }

    /// Sets (replaces) properties of one node in one statement; values that are not stored
    /// (see ``PropertyValueCodec``) are skipped.
    func setProperties(_ table: PropertyTable, id: Int64, _ values: [(name: String, value: JSONValue?)], custom: Bool = false) throws {
        var rows = RowBatch(Self.propertyInsert(table, dialect: db.dialect), width: 7)
        Self.appendProperties(id: id, values, custom: custom, to: &rows)
        try rows.flush(db)
    }

    static func propertyInsert(_ table: PropertyTable, dialect: SQLDialect) -> String {
        "\(dialect.insertOrReplace) `\(table.rawValue)` (`\(table.idColumn)`, `name`, `is_custom_property`, `int_value`, `double_value`, `string_value`, `bool_value`)"
    }

    static func appendProperties(id: Int64, _ values: [(name: String, value: JSONValue?)], custom: Bool, to rows: inout RowBatch) {
        for (name, value) in values {
            guard let value, let columns = PropertyValueCodec.encode(value) else { continue }
            rows.append(.integer(id), .text(name), custom.sqlValue, columns.int.sqlValue, columns.double.sqlValue, columns.string.sqlValue, columns.bool.sqlValue)
        }
    }

    struct Properties {
        var typed: [String: JSONValue] = [:]
        var custom: [String: JSONValue] = [:]
        func string(_ name: String) -> String? { typed[name]?.stringValue }
        func int(_ name: String) -> Int64? { typed[name]?.intValue }
        func double(_ name: String) -> Double? { typed[name]?.doubleValue }
        func json(_ name: String) -> JSONValue {
            guard let text = string(name), let value = try? JSONValue.parse(Data(text.utf8)) else { return .null }
            return value
        }
        func date(_ name: String) -> Date? { int(name).map { Date(timeIntervalSince1970: Double($0) / 1000) } }
        /// The numeric custom properties: an execution's metrics.
        var metrics: [String: Double] { custom.compactMapValues(\.doubleValue) }
    }

    func properties(_ table: PropertyTable, ids: [Int64]) throws -> [Int64: Properties] {
        guard !ids.isEmpty else { return [:] }
        return Self.properties(
            byOwner: try db.query(
                "SELECT `\(table.idColumn)` AS owner, name, is_custom_property, int_value, double_value, string_value, bool_value FROM `\(table.rawValue)` WHERE `\(table.idColumn)` IN (\(sqlPlaceholders(ids.count)))",
                ids))
    }

    /// An artifact from its row's columns and its properties.
    static func artifact(id: Int64, type: String?, uri: String?, created: Int64?, properties: Properties?) -> ArtifactRecord {
        let values = properties ?? Properties()
        return ArtifactRecord(
            id: id, type: type ?? "", uri: uri ?? "", digest: values.string("digest").flatMap { Digest($0) } ?? Digest.of(""),
            size: values.int("size") ?? 0, fileCount: values.int("file_count") ?? 0, properties: values.custom,
            createdAt: date(milliseconds: created ?? 0))
    }

    /// Property rows (`owner`, `name`, `is_custom_property` and the value columns) by owner.
    static func properties(byOwner rows: [SQLRow]) -> [Int64: Properties] {
        var result: [Int64: Properties] = [:]
        for row in rows {
            guard let owner = row.int64("owner"), let name = row.string("name"), let value = PropertyValueCodec.decode(row) else { continue }
            if row.bool("is_custom_property") == true {
                result[owner, default: Properties()].custom[name] = value
            } else {
                result[owner, default: Properties()].typed[name] = value
            }
        }
        return result
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    static func date(milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    // MARK: Contexts

    private func context(typeID: Int64, name: String, at date: Date) throws -> (id: Int64, created: Bool) {
        if let id = try db.int64("SELECT id FROM `Context` WHERE type_id = ? AND name = ?" + db.dialect.lockingRead, [typeID, name]) {
            return (id, false)
        }
        let now = Self.milliseconds(date)
        try db.execute(
            "INSERT INTO `Context` (`type_id`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) VALUES (?, ?, ?, ?)",
            [typeID, name, now, now])
        return (db.lastInsertID, true)
    }

    private func runContextID(runID: String) throws -> Int64 {
        guard let id = try db.int64("SELECT id FROM `Context` WHERE type_id = ? AND name = ?", [try runTypeID(), runID]) else {
            throw MetadataStoreError.notFound(what: "run \(runID)")
        }
        return id
    }

    private func linkParent(context: Int64, parent: Int64) throws {
        try db.execute("\(db.dialect.insertIgnoringDuplicates) `ParentContext` (`context_id`, `parent_context_id`) VALUES (?, ?)", [context, parent])
    }

    // MARK: Writing

    func startRun(_ run: NewRun) throws {
        let pipeline = try context(typeID: try pipelineTypeID(), name: run.pipeline, at: run.startedAt)
        let version = try context(typeID: try versionTypeID(), name: "\(run.pipeline)@\(run.specDigest)", at: run.startedAt)
        if version.created {
            try setProperties(.context, id: version.id, [
                ("pipeline", .string(run.pipeline)), ("spec_digest", .string(run.specDigest.description)),
                ("spec", .string(CanonicalJSON.encode(run.spec))), ("file", .string(run.pipelineFile)),
            ])
            try linkParent(context: version.id, parent: pipeline.id)
        }
        let runContext = try context(typeID: try runTypeID(), name: run.id, at: run.startedAt)
        try setProperties(.context, id: runContext.id, [
            ("pipeline", .string(run.pipeline)), ("spec_digest", .string(run.specDigest.description)),
            ("state", .string(RunState.running.rawValue)), ("started_at", .int(Self.milliseconds(run.startedAt))),
            ("git_commit", run.gitCommit.map { .string($0) }), ("git_dirty", run.gitDirty.map { .bool($0) }),
            ("environment", .string(CanonicalJSON.encode(run.environment))), ("workspace", .string(run.workspace)),
            ("pipeline_file", .string(run.pipelineFile)), ("git_diff", run.gitDiff.map { .string($0) }),
            ("host", run.host.map { .string($0) }), ("pid", run.pid.map { .int(Int64($0)) }),
        ])
        for parent in [pipeline.id, version.id] { try linkParent(context: runContext.id, parent: parent) }
    }

    func finishRun(id: String, state: RunState, endedAt: Date, environment: JSONValue? = nil) throws {
        let contextID = try runContextID(runID: id)
        try setProperties(.context, id: contextID, [("state", .string(state.rawValue)), ("ended_at", .int(Self.milliseconds(endedAt)))])
        if let environment { try setProperties(.context, id: contextID, [("environment", .string(CanonicalJSON.encode(environment)))]) }
        try db.execute("UPDATE `Context` SET last_update_time_since_epoch = ? WHERE id = ?", [Self.milliseconds(endedAt), contextID])
        if state != .complete {
            // A run that ended early (or whose host died) leaves no execution RUNNING.
            try db.execute(
                "UPDATE `Execution` SET last_known_state = ?, last_update_time_since_epoch = ? WHERE last_known_state = ? AND id IN (SELECT execution_id FROM `Association` WHERE context_id = ?)",
                [ExecutionState.canceled.rawValue, Self.milliseconds(endedAt), ExecutionState.running.rawValue, contextID])
        }
    }

    static func executionName(runID: String, step: String) -> String { "\(runID)/\(step)" }

    /// The contexts an execution of this run and pipeline is associated with. `Association` has no
    /// index on `execution_id` alone in ML Metadata's schema: asking it which contexts an
    /// execution has scans the table.
    private func executionContexts(runID: String, pipeline: String) throws -> [Int64] {
        let runContext = try runContextID(runID: runID)
        let pipelineContext = try db.int64("SELECT id FROM `Context` WHERE type_id = ? AND name = ?", [try pipelineTypeID(), pipeline])
        return [runContext, pipelineContext].compactMap { $0 }
    }

    /// Rows that nothing reads back before the transaction ends: they wait there and go in a few
    /// multi-row statements. Executions and artifacts are inserted at once, because their ids are
    /// needed; events go in with the rest, their paths once their ids are known.
    private struct PendingRows {
        var executionProperties: RowBatch
        var artifactProperties: RowBatch
        var associations: RowBatch
        var attributions: RowBatch
        private var events = RowBatch("INSERT INTO `Event` (`artifact_id`, `execution_id`, `type`, `milliseconds_since_epoch`)", width: 4)
        /// Each event's path: its input or output name, and its index among the input's artifacts.
        private var eventPaths: [(key: String, index: Int?)] = []
        /// (artifact, execution, type) of each event, which ML Metadata keeps unique.
        private var wired: Set<[Int64]> = []

        init(_ dialect: SQLDialect) {
            executionProperties = RowBatch(MLMDTransaction.propertyInsert(.execution, dialect: dialect), width: 7)
            artifactProperties = RowBatch(MLMDTransaction.propertyInsert(.artifact, dialect: dialect), width: 7)
            associations = RowBatch("\(dialect.insertIgnoringDuplicates) `Association` (`context_id`, `execution_id`)", width: 2)
            attributions = RowBatch("\(dialect.insertIgnoringDuplicates) `Attribution` (`context_id`, `artifact_id`)", width: 2)
        }

        /// An event and its path. A second wiring of the same artifact into the same execution is
        /// one ML Metadata event, under the first name it was wired by.
        mutating func addEvent(artifactID: Int64, executionID: Int64, type: MLMDSchema.EventType, key: String, index: Int?, at milliseconds: Int64) {
            guard wired.insert([artifactID, executionID, Int64(type.rawValue)]).inserted else { return }
            events.append(.integer(artifactID), .integer(executionID), .integer(Int64(type.rawValue)), .integer(milliseconds))
            eventPaths.append((key, index))
        }

        func flush(_ db: any SQLConnection) throws {
            var paths = RowBatch("INSERT INTO `EventPath` (`event_id`, `is_index_step`, `step_index`, `step_key`)", width: 4)
            for (eventID, path) in zip(try events.insert(db), eventPaths) {
                paths.append(.integer(eventID), false.sqlValue, .null, .text(path.key))
                if let index = path.index { paths.append(.integer(eventID), true.sqlValue, index.sqlValue, .null) }
            }
            for batch in [executionProperties, artifactProperties, associations, attributions, paths] { try batch.flush(db) }
        }
    }

    private func insertExecution(
        _ execution: NewExecution, state: ExecutionState, at date: Date, contexts: [Int64], pending: inout PendingRows
    ) throws -> Int64 {
        let now = Self.milliseconds(date)
        var rows = Self.executionRows()
        try appendExecution(execution, state: state, at: now, to: &rows)
        guard let id = try rows.insert(db).first else { throw MetadataStoreError.database("inserting an execution returned no id") }
        Self.appendStartRows(of: execution, id: id, contexts: contexts, at: now, to: &pending)
        return id
    }

    private static func executionRows() -> RowBatch {
        RowBatch("INSERT INTO `Execution` (`type_id`, `last_known_state`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`)", width: 5)
    }

    /// An execution's own row, `RUN/STEP` in `state`.
    private func appendExecution(_ execution: NewExecution, state: ExecutionState, at now: Int64, to rows: inout RowBatch) throws {
        let name = Self.executionName(runID: execution.runID, step: execution.step)
        rows.append(.integer(try stepTypeID()), .integer(Int64(state.rawValue)), .text(name), .integer(now), .integer(now))
    }

    /// What an execution starts with besides its own row: its properties, contexts and inputs.
    private static func appendStartRows(of execution: NewExecution, id: Int64, contexts: [Int64], at now: Int64, to pending: inout PendingRows) {
        appendProperties(id: id, typedProperties(of: execution), custom: false, to: &pending.executionProperties)
        for contextID in contexts { pending.associations.append(.integer(contextID), .integer(id)) }
        for (name, artifacts) in execution.inputs.sorted(by: { $0.key < $1.key }) {
            for (index, artifact) in artifacts.enumerated() {
                pending.addEvent(artifactID: artifact.id, executionID: id, type: .input, key: name, index: index, at: now)
            }
        }
    }

    private static func typedProperties(of execution: NewExecution) -> [(name: String, value: JSONValue?)] {
        [
            ("run_id", .string(execution.runID)), ("pipeline", .string(execution.pipeline)), ("step", .string(execution.step)),
            ("cache_key", .string(execution.cacheKey.description)), ("bundle", .string(execution.bundle)),
            ("bundle_version", .string(execution.bundleVersion)), ("bundle_digest", .string(execution.bundleDigest.description)),
            ("config", .string(CanonicalJSON.encode(execution.config))),
            ("key_ingredients", .string(CanonicalJSON.encode(execution.keyIngredients))),
            ("started_at", .int(Self.milliseconds(execution.startedAt))),
        ]
    }

    func startExecution(_ execution: NewExecution) throws -> Int64 {
        var pending = PendingRows(db.dialect)
        let contexts = try executionContexts(runID: execution.runID, pipeline: execution.pipeline)
        let id = try insertExecution(execution, state: .running, at: execution.startedAt, contexts: contexts, pending: &pending)
        try pending.flush(db)
        return id
    }

    /// An execution that already ended, recorded in one go (start and outcome): its name and
    /// contexts are known, not read back.
    func recordExecution(_ execution: NewExecution, outcome: ExecutionOutcome) throws -> (id: Int64, outputs: [String: ArtifactRecord]) {
        var pending = PendingRows(db.dialect)
        let contexts = try executionContexts(runID: execution.runID, pipeline: execution.pipeline)
        let id = try insertExecution(execution, state: .running, at: execution.startedAt, contexts: contexts, pending: &pending)
        let outputs = try finish(
            id: id, name: Self.executionName(runID: execution.runID, step: execution.step), contexts: contexts, outcome: outcome, pending: &pending)
        try pending.flush(db)
        return (id, outputs)
    }

    /// Records the outcome of an execution started by an earlier transaction.
    func finishExecution(id: Int64, outcome: ExecutionOutcome) throws -> [String: ArtifactRecord] {
        guard let executionName = try db.query("SELECT name FROM `Execution` WHERE id = ?", [id]).first?.string("name") else {
            throw MetadataStoreError.notFound(what: "execution \(id)")
        }
        let contexts: [Int64]
        if outcome.outputs.isEmpty {
            contexts = []
        } else {
            let recorded = try properties(.execution, ids: [id])[id] ?? Properties()
            contexts = try executionContexts(runID: recorded.string("run_id") ?? "", pipeline: recorded.string("pipeline") ?? "")
        }
        var pending = PendingRows(db.dialect)
        let outputs = try finish(id: id, name: executionName, contexts: contexts, outcome: outcome, pending: &pending)
        try pending.flush(db)
        return outputs
    }

    private func finish(
        id: Int64, name executionName: String, contexts: [Int64], outcome: ExecutionOutcome, pending: inout PendingRows
    ) throws -> [String: ArtifactRecord] {
        var recorded: [String: ArtifactRecord] = [:]
        let now = Self.milliseconds(outcome.endedAt)
        try db.execute("UPDATE `Execution` SET last_known_state = ?, last_update_time_since_epoch = ? WHERE id = ?", [outcome.state.rawValue, now, id])
        Self.appendProperties(id: id, [
            ("ended_at", .int(now)), ("exit_code", outcome.exitCode.map { .int(Int64($0)) }),
            ("log_uri", outcome.logURI.map { .string($0) }), ("message", outcome.message.map { .string($0) }),
            ("peak_memory_bytes", outcome.peakMemoryBytes.map { .int($0) }), ("cpu_seconds", outcome.cpuSeconds.map { .double($0) }),
            ("backend", outcome.backend == .null ? nil : .string(CanonicalJSON.encode(outcome.backend))),
        ], custom: false, to: &pending.executionProperties)
        Self.appendProperties(
            id: id, outcome.metrics.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) }, custom: true, to: &pending.executionProperties)
        for (outputName, artifact) in outcome.outputs.sorted(by: { $0.key < $1.key }) {
            let typeID = try artifactTypeID(name: artifact.type)
            let created = Self.milliseconds(artifact.createdAt)
            try db.execute(
                "INSERT INTO `Artifact` (`type_id`, `uri`, `state`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) VALUES (?, ?, ?, ?, ?, ?)",
                [typeID, artifact.uri, MLMDSchema.ArtifactState.live.rawValue, "\(executionName)/\(outputName)", created, created])
            let artifactID = db.lastInsertID
            var withID = artifact
            withID.id = artifactID
            recorded[outputName] = withID
            Self.appendProperties(id: artifactID, [
                ("digest", .string(artifact.digest.description)), ("size", .int(artifact.size)), ("file_count", .int(artifact.fileCount)),
            ], custom: false, to: &pending.artifactProperties)
            Self.appendProperties(
                id: artifactID, artifact.properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, custom: true, to: &pending.artifactProperties)
            pending.addEvent(artifactID: artifactID, executionID: id, type: .output, key: outputName, index: nil, at: now)
            for contextID in contexts { pending.attributions.append(.integer(contextID), .integer(artifactID)) }
        }
        if let build = outcome.build {
            pending.addEvent(artifactID: build.id, executionID: id, type: .internalInput, key: "build", index: nil, at: now)
        }
        return recorded
    }

    /// Records steps satisfied from the cache, each as a CACHED execution with the outputs of the
    /// execution it reused. All rows go in a few multi-row statements, the executions included
    /// where the backend tells their ids (see ``RowBatch/insert(_:)``).
    func recordCachedExecutions(_ reuses: [CacheReuse], at date: Date) throws -> [Int64] {
        let now = Self.milliseconds(date)
        var executions = Self.executionRows()
        for reuse in reuses { try appendExecution(reuse.execution, state: .cached, at: now, to: &executions) }
        let ids = try executions.insert(db)

        var pending = PendingRows(db.dialect)
        var contextsOfRun: [[String]: [Int64]] = [:]
        for (reuse, id) in zip(reuses, ids) {
            let execution = reuse.execution, source = reuse.source
            let contexts: [Int64]
            if let known = contextsOfRun[[execution.runID, execution.pipeline]] {
                contexts = known
            } else {
                contexts = try executionContexts(runID: execution.runID, pipeline: execution.pipeline)
                contextsOfRun[[execution.runID, execution.pipeline]] = contexts
            }
            Self.appendStartRows(of: execution, id: id, contexts: contexts, at: now, to: &pending)
            Self.appendProperties(id: id, [("ended_at", .int(now)), ("reused_execution_id", .int(source.id))], custom: false, to: &pending.executionProperties)
            Self.appendProperties(
                id: id, source.metrics.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) }, custom: true, to: &pending.executionProperties)
            for (outputName, artifact) in source.outputs.sorted(by: { $0.key < $1.key }) {
                pending.addEvent(artifactID: artifact.id, executionID: id, type: .output, key: outputName, index: nil, at: now)
                for contextID in contexts { pending.attributions.append(.integer(contextID), .integer(artifact.id)) }
            }
        }
        try pending.flush(db)
        return ids
    }

    // MARK: Checking what a lost commit did

    /// The id of the execution `RUN/STEP`, if recorded (to tell whether a start whose commit was
    /// lost with the connection went through).
    func executionID(runID: String, step: String) throws -> Int64? {
        try db.int64("SELECT id FROM `Execution` WHERE type_id = ? AND name = ?", [try stepTypeID(), Self.executionName(runID: runID, step: step)])
    }

    /// The state of an execution and the outputs it recorded, if it exists.
    func recordedOutcome(executionID id: Int64) throws -> (state: ExecutionState?, outputs: [String: ArtifactRecord])? {
        guard let execution = try loadExecutions(ids: [id]).first else { return nil }
        return (execution.state, execution.outputs)
    }

    // MARK: Reading

    func loadArtifacts(ids: [Int64]) throws -> [Int64: ArtifactRecord] {
        guard !ids.isEmpty else { return [:] }
        let rows = try db.query(
            "SELECT a.id, a.uri, a.create_time_since_epoch, t.name AS type FROM `Artifact` a JOIN `Type` t ON t.id = a.type_id WHERE a.id IN (\(sqlPlaceholders(ids.count)))",
            ids)
        let props = try properties(.artifact, ids: ids)
        var result: [Int64: ArtifactRecord] = [:]
        for row in rows {
            guard let id = row.int64("id") else { continue }
            result[id] = Self.artifact(
                id: id, type: row.string("type"), uri: row.string("uri"), created: row.int64("create_time_since_epoch"), properties: props[id])
        }
        return result
    }

    /// Execution records by id, in the order of `ids`, with two independent queries sent together
    /// (one round trip on MySQL): the executions with their events and artifacts, and the
    /// properties of both.
    func loadExecutions(ids: [Int64]) throws -> [ExecutionRecord] {
        guard !ids.isEmpty else { return [] }
        let placeholders = sqlPlaceholders(ids.count), values = ids.map(SQLValue.integer)
        let results = try db.queries([
            (
                """
                SELECT x.id, x.last_known_state, x.create_time_since_epoch, e.id AS event_id, e.execution_id, e.artifact_id, e.type,
                       p.is_index_step, p.step_index, p.step_key,
                       a.uri, a.create_time_since_epoch AS artifact_created, t.name AS artifact_type
                FROM `Execution` x
                LEFT JOIN `Event` e ON e.execution_id = x.id
                LEFT JOIN `EventPath` p ON p.event_id = e.id
                LEFT JOIN `Artifact` a ON a.id = e.artifact_id
                LEFT JOIN `Type` t ON t.id = a.type_id
                WHERE x.id IN (\(placeholders))
                """, values
            ),
            (
                """
                SELECT 0 AS kind, execution_id AS owner, name, is_custom_property, int_value, double_value, string_value, bool_value
                FROM `ExecutionProperty` WHERE execution_id IN (\(placeholders))
                UNION ALL
                SELECT 1, ap.artifact_id, ap.name, ap.is_custom_property, ap.int_value, ap.double_value, ap.string_value, ap.bool_value
                FROM `Event` v JOIN `ArtifactProperty` ap ON ap.artifact_id = v.artifact_id WHERE v.execution_id IN (\(placeholders))
                """, values + values
            ),
        ])
        let joined = results[0]
        var rows: [SQLRow] = []
        var seen = Set<Int64>()
        for row in joined { if let id = row.int64("id"), seen.insert(id).inserted { rows.append(row) } }
        guard !rows.isEmpty else { return [] }
        // One row per event path step: an event's key is its first key step, its index its first
        // index step (zenml-run writes at most one of each).
        var eventRows: [SQLRow] = []
        var eventPosition: [Int64: Int] = [:]
        var stepKeys: [Int64: String] = [:]
        var stepIndexes: [Int64: Int64] = [:]
        for row in joined {
            guard let eventID = row.int64("event_id"), row.string("artifact_type") != nil else { continue }
            if eventPosition[eventID] == nil {
                eventPosition[eventID] = eventRows.count
                eventRows.append(row)
            }
            if row.int64("is_index_step") == 1 {
                if stepIndexes[eventID] == nil, let index = row.int64("step_index") { stepIndexes[eventID] = index }
            } else if row.int64("is_index_step") == 0 {
                if stepKeys[eventID] == nil, let key = row.string("step_key") { stepKeys[eventID] = key }
            }
        }
        let executionProps = Self.properties(byOwner: results[1].filter { $0.int64("kind") == 0 })
        let artifactProps = Self.properties(byOwner: results[1].filter { $0.int64("kind") != 0 })
        var inputs: [Int64: [String: [(Int64, ArtifactRecord)]]] = [:]
        var outputs: [Int64: [String: ArtifactRecord]] = [:]
        var builds: [Int64: ArtifactRecord] = [:]
        for event in eventRows {
            guard let executionID = event.int64("execution_id"), let artifactID = event.int64("artifact_id") else { continue }
            let artifact = Self.artifact(
                id: artifactID, type: event.string("artifact_type"), uri: event.string("uri"), created: event.int64("artifact_created"),
                properties: artifactProps[artifactID])
            let eventID = event.int64("event_id") ?? 0
            let key = stepKeys[eventID] ?? ""
            let type = event.int64("type")
            if type == Int64(MLMDSchema.EventType.input.rawValue) {
                inputs[executionID, default: [:]][key, default: []].append((stepIndexes[eventID] ?? 0, artifact))
            } else if type == Int64(MLMDSchema.EventType.output.rawValue) {
                outputs[executionID, default: [:]][key] = artifact
            } else if type == Int64(MLMDSchema.EventType.internalInput.rawValue) && key == "build" {
                builds[executionID] = artifact
            }
        }
        var records: [Int64: ExecutionRecord] = [:]
        for row in rows {
            guard let id = row.int64("id") else { continue }
            let values = executionProps[id] ?? Properties()
            records[id] = ExecutionRecord(
                id: id, runID: values.string("run_id") ?? "", pipeline: values.string("pipeline") ?? "",
                step: values.string("step") ?? "", state: ExecutionState(rawValue: Int(row.int64("last_known_state") ?? 0)) ?? .new,
                cacheKey: values.string("cache_key").flatMap { Digest($0) }, bundle: values.string("bundle") ?? "",
                bundleVersion: values.string("bundle_version") ?? "", bundleDigest: values.string("bundle_digest").flatMap { Digest($0) },
                config: values.json("config"), keyIngredients: values.json("key_ingredients"),
                exitCode: values.int("exit_code").map { Int($0) }, logURI: values.string("log_uri"), message: values.string("message"),
                startedAt: values.date("started_at") ?? Self.date(milliseconds: row.int64("create_time_since_epoch") ?? 0), endedAt: values.date("ended_at"),
                metrics: values.metrics, reusedExecutionID: values.int("reused_execution_id"),
                inputs: (inputs[id] ?? [:]).mapValues { $0.sorted { $0.0 < $1.0 }.map(\.1) }, outputs: outputs[id] ?? [:],
                peakMemoryBytes: values.int("peak_memory_bytes"), cpuSeconds: values.double("cpu_seconds"), backend: values.json("backend"),
                build: builds[id])
        }
        return ids.compactMap { records[$0] }
    }

    /// Completed (3) or cached (5) executions with this cache key, newest first.
    func executions(withCacheKey key: Digest, limit: Int) throws -> [ExecutionRecord] {
        let ids = try db.int64s(
            """
            SELECT e.id FROM `ExecutionProperty` p JOIN `Execution` e ON e.id = p.execution_id
            WHERE p.name = 'cache_key' AND p.is_custom_property = 0 AND p.string_value = ? AND e.last_known_state IN (3, 5)
            ORDER BY e.id DESC LIMIT ?
            """, [key.description, limit])
        return try loadExecutions(ids: ids)
    }

    func newestExecutions(withCacheKeys keys: [Digest]) throws -> [Digest: ReusableExecution] {
        var newest: [Digest: ReusableExecution] = [:]
        // Bounded lists keep each statement under the servers' limits on bound parameters.
        let distinct = Array(Set(keys.map(\.description))).sorted()
        for start in stride(from: 0, to: distinct.count, by: 500) {
            let chunk = Array(distinct[start..<min(start + 500, distinct.count)])
            let ids = try db.int64s(
                """
                SELECT MAX(e.id) FROM `ExecutionProperty` p JOIN `Execution` e ON e.id = p.execution_id
                WHERE p.name = 'cache_key' AND p.is_custom_property = 0 AND p.string_value IN (\(sqlPlaceholders(chunk.count)))
                  AND e.last_known_state IN (3, 5)
                GROUP BY p.string_value
                """, chunk.map { $0 as any SQLValueConvertible })
            for execution in try loadReusable(ids: ids) { newest[execution.cacheKey] = execution }
        }
        return newest
    }

    /// The complete or cached executions of a run, as reusable sources, in the order they started.
    func reusableExecutions(runID: String) throws -> [ReusableExecution] {
        let ids = try db.int64s(
            """
            SELECT s.execution_id FROM `Association` s JOIN `Execution` e ON e.id = s.execution_id
            WHERE s.context_id = ? AND e.last_known_state IN (3, 5) ORDER BY s.execution_id
            """, [try runContextID(runID: runID)])
        return try loadReusable(ids: ids)
    }

    /// What reusing these executions' outputs needs: their identity, metrics and outputs, read
    /// with three narrow queries (a full load also reads and parses every input, config and set
    /// of key ingredients, which for the previous run of a 500-step pipeline took most of the
    /// time of a cached re-run).
    private func loadReusable(ids: [Int64]) throws -> [ReusableExecution] {
        guard !ids.isEmpty else { return [] }
        let placeholders = sqlPlaceholders(ids.count), values = ids.map(SQLValue.integer)
        let output = MLMDSchema.EventType.output.rawValue
        let results = try db.queries([
            (
                """
                SELECT execution_id AS owner, name, is_custom_property, int_value, double_value, string_value, bool_value
                FROM `ExecutionProperty`
                WHERE execution_id IN (\(placeholders)) AND (is_custom_property = 1 OR name IN ('run_id', 'step', 'cache_key'))
                """, values
            ),
            (
                """
                SELECT e.execution_id, e.artifact_id, p.step_key, a.uri, a.create_time_since_epoch AS created, t.name AS type
                FROM `Event` e
                JOIN `EventPath` p ON p.event_id = e.id AND p.is_index_step = 0
                JOIN `Artifact` a ON a.id = e.artifact_id
                JOIN `Type` t ON t.id = a.type_id
                WHERE e.execution_id IN (\(placeholders)) AND e.type = \(output)
                """, values
            ),
            (
                """
                SELECT ap.artifact_id AS owner, ap.name, ap.is_custom_property, ap.int_value, ap.double_value, ap.string_value, ap.bool_value
                FROM `Event` e JOIN `ArtifactProperty` ap ON ap.artifact_id = e.artifact_id
                WHERE e.execution_id IN (\(placeholders)) AND e.type = \(output)
                """, values
            ),
        ])
        let executionProps = Self.properties(byOwner: results[0])
        let artifactProps = Self.properties(byOwner: results[2])
        var outputs: [Int64: [String: ArtifactRecord]] = [:]
        for row in results[1] {
            guard let executionID = row.int64("execution_id"), let artifactID = row.int64("artifact_id"), let key = row.string("step_key") else { continue }
            outputs[executionID, default: [:]][key] = Self.artifact(
                id: artifactID, type: row.string("type"), uri: row.string("uri"), created: row.int64("created"), properties: artifactProps[artifactID])
        }
        return ids.compactMap { id in
            guard let values = executionProps[id], let key = values.string("cache_key").flatMap({ Digest($0) }) else { return nil }
            return ReusableExecution(
                id: id, runID: values.string("run_id") ?? "", step: values.string("step") ?? "", cacheKey: key, metrics: values.metrics,
                outputs: outputs[id] ?? [:])
        }
    }

    /// The ingredients of an execution's cache key, as recorded (to say why a step runs again).
    func keyIngredients(executionID: Int64) throws -> JSONValue {
        let rows = try db.query(
            "SELECT string_value FROM `ExecutionProperty` WHERE execution_id = ? AND name = 'key_ingredients' AND is_custom_property = 0",
            [executionID])
        guard let text = rows.first?.string("string_value"), let value = try? JSONValue.parse(Data(text.utf8)) else { return .null }
        return value
    }

    func latestExecution(pipeline: String, step: String) throws -> ExecutionRecord? {
        let ids = try db.int64s(
            """
            SELECT e.id FROM `ExecutionProperty` s
            JOIN `ExecutionProperty` p ON p.execution_id = s.execution_id AND p.name = 'pipeline' AND p.is_custom_property = 0 AND p.string_value = ?
            JOIN `Execution` e ON e.id = s.execution_id
            WHERE s.name = 'step' AND s.is_custom_property = 0 AND s.string_value = ? AND e.last_known_state IN (3, 5)
            ORDER BY e.id DESC LIMIT 1
            """, [pipeline, step])
        return try loadExecutions(ids: ids).first
    }

    private func loadRuns(contextIDs: [Int64]) throws -> [RunRecord] {
        guard !contextIDs.isEmpty else { return [] }
        let rows = try db.query("SELECT id, name FROM `Context` WHERE id IN (\(sqlPlaceholders(contextIDs.count)))", contextIDs)
        let props = try properties(.context, ids: contextIDs)
        var names: [Int64: String] = [:]
        for row in rows { if let id = row.int64("id"), let name = row.string("name") { names[id] = name } }
        return contextIDs.compactMap { id in
            guard let name = names[id] else { return nil }
            let values = props[id] ?? Properties()
            return RunRecord(
                id: name, pipeline: values.string("pipeline") ?? "", specDigest: values.string("spec_digest").flatMap { Digest($0) },
                state: RunState(rawValue: values.string("state") ?? "") ?? .running,
                startedAt: values.date("started_at") ?? Date(timeIntervalSince1970: 0), endedAt: values.date("ended_at"),
                gitCommit: values.string("git_commit"), gitDirty: values.typed["git_dirty"]?.boolValue,
                environment: values.json("environment"), workspace: values.string("workspace"), pipelineFile: values.string("pipeline_file"),
                gitDiff: values.string("git_diff"), host: values.string("host"), pid: values.int("pid").map { Int($0) })
        }
    }

    func runs(pipeline: String?, limit: Int) throws -> [RunRecord] {
        let typeID = try runTypeID()
        let ids: [Int64]
        if let pipeline {
            ids = try db.int64s(
                """
                SELECT c.id FROM `Context` c JOIN `ContextProperty` p ON p.context_id = c.id AND p.name = 'pipeline' AND p.is_custom_property = 0
                WHERE c.type_id = ? AND p.string_value = ? ORDER BY c.id DESC LIMIT ?
                """, [typeID, pipeline, limit])
        } else {
            ids = try db.int64s("SELECT id FROM `Context` WHERE type_id = ? ORDER BY id DESC LIMIT ?", [typeID, limit])
        }
        return try loadRuns(contextIDs: ids)
    }

    func runningRuns(host: String) throws -> [RunRecord] {
        let ids = try db.int64s(
            """
            SELECT c.id FROM `Context` c
            JOIN `ContextProperty` s ON s.context_id = c.id AND s.name = 'state' AND s.is_custom_property = 0 AND s.string_value = ?
            JOIN `ContextProperty` h ON h.context_id = c.id AND h.name = 'host' AND h.is_custom_property = 0 AND h.string_value = ?
            WHERE c.type_id = ? ORDER BY c.id
            """, [RunState.running.rawValue, host, try runTypeID()])
        return try loadRuns(contextIDs: ids)
    }

    func run(id: String) throws -> RunRecord? {
        let typeID = try runTypeID()
        if let exact = try db.int64("SELECT id FROM `Context` WHERE type_id = ? AND name = ?", [typeID, id]) {
            return try loadRuns(contextIDs: [exact]).first
        }
        // LIKE narrows the search (with an index on MySQL); SUBSTR makes it case-sensitive on
        // SQLite, whose LIKE ignores ASCII case.
        let matches = try db.int64s(
            "SELECT id FROM `Context` WHERE type_id = ? AND name LIKE ? ESCAPE '!' AND SUBSTR(name, 1, ?) = ? LIMIT 2",
            [typeID, Self.likePrefix(id), id.unicodeScalars.count, id])
        return matches.count == 1 ? try loadRuns(contextIDs: matches).first : nil
    }

    /// A `LIKE` pattern for names starting with `text`, escaped with `!` (a backslash would mean
    /// different things to SQLite and to MySQL).
    static func likePrefix(_ text: String) -> String {
        text.replacingOccurrences(of: "!", with: "!!").replacingOccurrences(of: "%", with: "!%").replacingOccurrences(of: "_", with: "!_") + "%"
    }

    func executions(runID: String) throws -> [ExecutionRecord] {
        let contextID = try runContextID(runID: runID)
        let ids = try db.int64s("SELECT execution_id FROM `Association` WHERE context_id = ? ORDER BY execution_id", [contextID])
        return try loadExecutions(ids: ids)
    }

    func pipelines() throws -> [PipelineRecord] {
        let pipelineType = try pipelineTypeID()
        let versionType = try versionTypeID()
        let runType = try runTypeID()
        let pipelineRows = try db.query("SELECT id, name FROM `Context` WHERE type_id = ? ORDER BY name", [pipelineType])
        var records: [PipelineRecord] = []
        for row in pipelineRows {
            guard let id = row.int64("id"), let name = row.string("name") else { continue }
            let versionRows = try db.query(
                "SELECT c.id, c.create_time_since_epoch FROM `Context` c JOIN `ParentContext` pc ON pc.context_id = c.id WHERE pc.parent_context_id = ? AND c.type_id = ? ORDER BY c.id",
                [id, versionType])
            let versionProps = try properties(.context, ids: versionRows.compactMap { $0.int64("id") })
            let versions = versionRows.compactMap { versionRow -> PipelineVersionRecord? in
                guard let versionID = versionRow.int64("id") else { return nil }
                let values = versionProps[versionID] ?? Properties()
                guard let digest = values.string("spec_digest").flatMap({ Digest($0) }) else { return nil }
                return PipelineVersionRecord(
                    specDigest: digest, spec: values.json("spec"), file: values.string("file"),
                    createdAt: Self.date(milliseconds: versionRow.int64("create_time_since_epoch") ?? 0))
            }
            let runCount = try db.int64(
                "SELECT count(*) FROM `Context` c JOIN `ParentContext` pc ON pc.context_id = c.id WHERE pc.parent_context_id = ? AND c.type_id = ?",
                [id, runType]) ?? 0
            let lastRunID = try db.int64s(
                "SELECT c.id FROM `Context` c JOIN `ParentContext` pc ON pc.context_id = c.id WHERE pc.parent_context_id = ? AND c.type_id = ? ORDER BY c.id DESC LIMIT 1",
                [id, runType])
            records.append(PipelineRecord(name: name, versions: versions, runCount: Int(runCount), lastRun: try loadRuns(contextIDs: lastRunID).first))
        }
        return records
    }

    func artifacts(matching reference: String) throws -> [ArtifactRecord] {
        var ids: [Int64] = []
        if let number = Int64(reference) {
            ids = try db.int64s("SELECT id FROM `Artifact` WHERE id = ?", [number])
        }
        if ids.isEmpty {
            let hex = reference.hasPrefix("sha256:") ? String(reference.dropFirst(7)) : reference
            guard !hex.isEmpty, hex.allSatisfy(\.isHexDigit) else { return [] }
            ids = try db.int64s(
                "SELECT artifact_id FROM `ArtifactProperty` WHERE name = 'digest' AND is_custom_property = 0 AND string_value >= ? AND string_value < ? ORDER BY artifact_id",
                ["sha256:" + hex.lowercased(), "sha256:" + hex.lowercased() + "\u{7f}"])
        }
        let artifacts = try loadArtifacts(ids: ids)
        return ids.compactMap { artifacts[$0] }
    }

    func producer(ofArtifact id: Int64) throws -> ExecutionRecord? {
        let ids = try db.int64s("SELECT min(execution_id) FROM `Event` WHERE artifact_id = ? AND type = ?", [id, MLMDSchema.EventType.output.rawValue])
        return try loadExecutions(ids: ids).first
    }

    /// Records a stored copy of a bundle or data file: an artifact of `type` named by `key` (MLMD's
    /// unique (type, name) index makes this idempotent and the lookup an index seek).
    func recordSnapshot(_ artifact: ArtifactRecord, type: String, key: Digest) throws -> Int64 {
        let typeID = try artifactTypeID(name: type)
        let name = key.description
        if let existing = try db.int64("SELECT id FROM `Artifact` WHERE type_id = ? AND name = ?" + db.dialect.lockingRead, [typeID, name]) {
            return existing
        }
        let created = Self.milliseconds(artifact.createdAt)
        try db.execute(
            "INSERT INTO `Artifact` (`type_id`, `uri`, `state`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) VALUES (?, ?, ?, ?, ?, ?)",
            [typeID, artifact.uri, MLMDSchema.ArtifactState.live.rawValue, name, created, created])
        let id = db.lastInsertID
        try setProperties(.artifact, id: id, [
            ("digest", .string(artifact.digest.description)), ("size", .int(artifact.size)), ("file_count", .int(artifact.fileCount)),
        ])
        try setProperties(.artifact, id: id, artifact.properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, custom: true)
        return id
    }

    /// The stored copy recorded for this type and key, if any.
    func snapshot(type: String, key: Digest) throws -> ArtifactRecord? {
        // Looked up, not registered: a read-only transaction must not create the type.
        guard let typeID = try db.int64("SELECT id FROM `Type` WHERE name = ? AND type_kind = ?", [type, MLMDSchema.TypeKind.artifact.rawValue]) else {
            return nil
        }
        guard let id = try db.int64("SELECT id FROM `Artifact` WHERE type_id = ? AND name = ?", [typeID, key.description]) else { return nil }
        return try loadArtifacts(ids: [id])[id]
    }

    /// Executions that read the artifact (INPUT events), oldest first.
    func consumers(ofArtifact id: Int64) throws -> [ExecutionRecord] {
        // MLMD's unique key (artifact_id, execution_id, type) starts with artifact_id, so this is an index lookup.
        // A build's consumers are the executions that ran its binaries (INTERNAL_INPUT events).
        let ids = try db.int64s(
            "SELECT execution_id FROM `Event` WHERE artifact_id = ? AND type IN (?, ?) ORDER BY execution_id",
            [id, MLMDSchema.EventType.input.rawValue, MLMDSchema.EventType.internalInput.rawValue])
        return try loadExecutions(ids: ids)
    }
}

/// Type ids by (name, kind), remembered per store so each type is looked up once. Only ids of
/// committed transactions are kept (a rolled-back transaction's new type does not exist).
final class TypeIDCache: @unchecked Sendable {
    struct Key: Hashable {
        var name: String
        var kind: MLMDSchema.TypeKind
    }

    private var values: [Key: Int64] = [:]
    private let lock = NSLock()

    subscript(key: Key) -> Int64? { lock.withLock { values[key] } }

    func merge(_ new: [Key: Int64]) {
        guard !new.isEmpty else { return }
        lock.withLock { values.merge(new) { _, latest in latest } }
    }
}

/// Rows for one table, inserted with as few multi-row statements as the backend's limit on bound
/// values allows.
struct RowBatch {
    /// `INSERT ... INTO `Table` (`column`, ...)`, without `VALUES`.
    let insert: String
    let width: Int
    private var values: [SQLValue] = []

    init(_ insert: String, width: Int) {
        self.insert = insert
        self.width = width
    }

    mutating func append(_ row: SQLValue...) {
        precondition(row.count == width, "a row of \(row.count) values for \(width) columns")
        values += row
    }

    func flush(_ db: any SQLConnection) throws {
        try flush(db, rowsPerStatement: max(1, Self.valuesPerStatement / width))
    }

    /// Inserts the rows and returns their new ids, in order. `insert` must be a plain `INSERT`
    /// into a table with an auto-increment id. SQLite numbers the rows of one statement
    /// consecutively (one writer at a time); MySQL promises that only in some of InnoDB's
    /// auto-increment lock modes, so there each row goes in a statement of its own.
    func insert(_ db: any SQLConnection) throws -> [Int64] {
        var ids: [Int64] = []
        ids.reserveCapacity(values.count / width)
        try flush(db, rowsPerStatement: db.dialect == .mysql ? 1 : max(1, Self.valuesPerStatement / width)) { count, changed in
            // The ids hold only if every row went in.
            if changed != count { throw MetadataStoreError.database("\(insert): \(changed) of \(count) rows inserted") }
            let last = db.lastInsertID
            ids += (last - Int64(count) + 1)...last
        }
        return ids
    }

    /// Far below SQLite's default limit of 32,766 bound values and MySQL's packet size.
    private static let valuesPerStatement = 4_000

    /// Runs the statements; `inserted` is told each one's row count and changed rows.
    private func flush(_ db: any SQLConnection, rowsPerStatement: Int, inserted: (_ count: Int, _ changed: Int) throws -> Void = { _, _ in }) throws {
        let rowCount = values.count / width
        let tuple = "(" + sqlPlaceholders(width) + ")"
        var start = 0
        while start < rowCount {
            let count = min(rowsPerStatement, rowCount - start)
            let changed = try db.execute(
                insert + " VALUES " + Array(repeating: tuple, count: count).joined(separator: ", "),
                values: Array(values[(start * width)..<((start + count) * width)]))
            try inserted(count, changed)
            start += count
        }
    }
}
