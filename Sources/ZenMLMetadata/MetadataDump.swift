import Foundation
import ZenMLCore

/// Counts and facts about a metadata store, for `zenml-run metadata info`.
public struct MetadataInfo: Codable, Sendable, Hashable {
    public var backend: String
    public var location: String
    public var schemaVersion: Int
    public var pipelines: Int
    public var runs: Int
    public var executions: Int
    public var artifacts: Int
    public var types: Int
    public var events: Int
}

/// Why a dump cannot be loaded.
public enum MetadataDumpError: Error, CustomStringConvertible, Sendable {
    case notEmpty(executions: Int, artifacts: Int)
    case badLine(Int, String)
    case unknownTable(Int, String)
    case schemaVersion(found: Int)

    public var description: String {
        switch self {
        case .notEmpty(let executions, let artifacts):
            return "the target store already holds \(executions) executions and \(artifacts) artifacts; import into a new, empty store (a new SQLite workspace or an empty MySQL database)"
        case .badLine(let line, let reason):
            return "line \(line) of the dump is not a dump record: \(reason)"
        case .unknownTable(let line, let table):
            return "line \(line) of the dump names table '\(table)', which is not part of ML Metadata's schema"
        case .schemaVersion(let found):
            return "the dump is of schema version \(found); this zenml-run reads version \(MLMDSchema.version)"
        }
    }
}

extension MLMDTransaction {
    /// The tables of ML Metadata's schema, each after the tables it refers to (the import order).
    static let dumpTables = [
        "Type", "TypeProperty", "ParentType", "Artifact", "ArtifactProperty", "Execution", "ExecutionProperty",
        "Context", "ContextProperty", "ParentContext", "Association", "Attribution", "Event", "EventPath",
    ]

    func info(backend: String, location: String) throws -> MetadataInfo {
        func count(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> Int { Int(try db.int64(sql, arguments) ?? 0) }
        let contextsOfType = "SELECT count(*) FROM `Context` c JOIN `Type` t ON t.id = c.type_id WHERE t.name = ?"
        return MetadataInfo(
            backend: backend, location: location, schemaVersion: Int(try db.int64("SELECT schema_version FROM `MLMDEnv`") ?? 0),
            pipelines: try count(contextsOfType, [Self.pipelineType]), runs: try count(contextsOfType, [Self.runType]),
            executions: try count("SELECT count(*) FROM `Execution`"), artifacts: try count("SELECT count(*) FROM `Artifact`"),
            types: try count("SELECT count(*) FROM `Type`"), events: try count("SELECT count(*) FROM `Event`"))
    }

    /// Referential problems ML Metadata's schema does not enforce (it declares no foreign keys).
    func check() throws -> [String] {
        var problems: [String] = []
        let checks: [(String, String)] = [
            ("events naming a missing artifact", "SELECT count(*) FROM `Event` e LEFT JOIN `Artifact` a ON a.id = e.artifact_id WHERE a.id IS NULL"),
            ("events naming a missing execution", "SELECT count(*) FROM `Event` e LEFT JOIN `Execution` x ON x.id = e.execution_id WHERE x.id IS NULL"),
            ("artifact properties of a missing artifact", "SELECT count(*) FROM `ArtifactProperty` p LEFT JOIN `Artifact` a ON a.id = p.artifact_id WHERE a.id IS NULL"),
            ("execution properties of a missing execution", "SELECT count(*) FROM `ExecutionProperty` p LEFT JOIN `Execution` x ON x.id = p.execution_id WHERE x.id IS NULL"),
            ("context properties of a missing context", "SELECT count(*) FROM `ContextProperty` p LEFT JOIN `Context` c ON c.id = p.context_id WHERE c.id IS NULL"),
            ("associations naming a missing execution or context", "SELECT count(*) FROM `Association` s LEFT JOIN `Execution` x ON x.id = s.execution_id LEFT JOIN `Context` c ON c.id = s.context_id WHERE x.id IS NULL OR c.id IS NULL"),
            ("artifacts, executions or contexts of a missing type", "SELECT (SELECT count(*) FROM `Artifact` a LEFT JOIN `Type` t ON t.id = a.type_id WHERE t.id IS NULL) + (SELECT count(*) FROM `Execution` x LEFT JOIN `Type` t ON t.id = x.type_id WHERE t.id IS NULL) + (SELECT count(*) FROM `Context` c LEFT JOIN `Type` t ON t.id = c.type_id WHERE t.id IS NULL)"),
            ("executions in no run", "SELECT count(*) FROM `Execution` x LEFT JOIN `Association` s ON s.execution_id = x.id WHERE s.execution_id IS NULL"),
        ]
        for (what, sql) in checks {
            let count = try db.int64(sql) ?? 0
            if count > 0 { problems.append("\(count) \(what)") }
        }
        let running = try db.int64(
            "SELECT count(*) FROM `Execution` WHERE last_known_state = ?", [ExecutionState.running.rawValue]) ?? 0
        if running > 0 { problems.append("\(running) executions still RUNNING (a run in progress, or one whose host was killed)") }
        return problems
    }

    /// Every row of every MLMD table as `{"table": NAME, "row": {COLUMN: VALUE}}`, after a header.
    func dump(_ emit: (JSONValue) throws -> Void) throws {
        try emit(["format": "zenml.metadata-dump/1", "schema_version": .int(Int64(MLMDSchema.version))])
        for table in Self.dumpTables {
            for row in try db.query("SELECT * FROM `\(table)`", []) {
                var object: [String: JSONValue] = [:]
                for (column, index) in row.columns where index < row.values.count {
                    switch row.values[index] {
                    case .null: object[column] = .null
                    case .integer(let value): object[column] = .int(value)
                    case .double(let value): object[column] = .double(value)
                    case .text(let text): object[column] = .string(text)
                    case .blob(let bytes): object[column] = ["base64": .string(Data(bytes).base64EncodedString())]
                    }
                }
                try emit(["table": .string(table), "row": .object(object)])
            }
        }
    }

    /// Loads a dump into this store, which must hold no executions and no artifacts; rows keep
    /// their ids, so references between them hold.
    func load(_ records: [JSONValue]) throws {
        let executions = Int(try db.int64("SELECT count(*) FROM `Execution`") ?? 0)
        let artifacts = Int(try db.int64("SELECT count(*) FROM `Artifact`") ?? 0)
        guard executions == 0 && artifacts == 0 else { throw MetadataDumpError.notEmpty(executions: executions, artifacts: artifacts) }
        guard let header = records.first, header["format"]?.stringValue == "zenml.metadata-dump/1" else {
            throw MetadataDumpError.badLine(1, "the first line must be the dump's header ({\"format\": \"zenml.metadata-dump/1\", ...})")
        }
        if let version = header["schema_version"]?.intValue, version != Int64(MLMDSchema.version) {
            throw MetadataDumpError.schemaVersion(found: Int(version))
        }
        // The new store's own seeded types make way for the dump's, which keep their ids.
        for table in Self.dumpTables.reversed() { try db.execute("DELETE FROM `\(table)`") }
        let known = Set(Self.dumpTables)
        for (index, record) in records.enumerated().dropFirst() {
            guard let table = record["table"]?.stringValue, let row = record["row"]?.objectValue else {
                throw MetadataDumpError.badLine(index + 1, "expected {\"table\": ..., \"row\": {...}}")
            }
            guard known.contains(table) else { throw MetadataDumpError.unknownTable(index + 1, table) }
            let columns = row.keys.sorted()
            let values: [SQLValue] = columns.map { column -> SQLValue in
                switch row[column] ?? .null {
                case .null: return .null
                case .bool(let flag): return .integer(flag ? 1 : 0)
                case .int(let value): return .integer(value)
                case .double(let value): return .double(value)
                case .string(let text): return .text(text)
                case .object(let object): return object["base64"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { .blob([UInt8]($0)) } ?? .null
                case .array: return .null
                }
            }
            try db.execute(
                "INSERT INTO `\(table)` (\(columns.map { "`\($0)`" }.joined(separator: ", "))) VALUES (\(sqlPlaceholders(columns.count)))", values: values)
        }
    }
}

/// Keeps the errors thrown inside a transaction by the parts it wraps with ``catching(_:)``, so
/// that ``rethrowing(_:)`` throws them as they are, rather than as the database errors a store
/// turns everything thrown inside a transaction into: a reader that went away, or a dump that
/// cannot be loaded, is not a database failure.
final class PassThroughError: @unchecked Sendable {
    private var original: (any Error)?

    func catching<T>(_ part: () throws -> T) throws -> T {
        do { return try part() } catch {
            original = error
            throw error
        }
    }

    func rethrowing<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw original ?? error }
    }
}
