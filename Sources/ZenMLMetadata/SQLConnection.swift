import Foundation

/// A value bound to a statement or read from a result row.
enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// Anything that can be bound to a `?` placeholder.
protocol SQLValueConvertible {
    var sqlValue: SQLValue { get }
}

extension SQLValue: SQLValueConvertible { var sqlValue: SQLValue { self } }
extension Int64: SQLValueConvertible { var sqlValue: SQLValue { .integer(self) } }
extension Int: SQLValueConvertible { var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Double: SQLValueConvertible { var sqlValue: SQLValue { .double(self) } }
extension String: SQLValueConvertible { var sqlValue: SQLValue { .text(self) } }
extension Bool: SQLValueConvertible { var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension Optional: SQLValueConvertible where Wrapped: SQLValueConvertible {
    var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// One row of a result, read by column name.
struct SQLRow {
    /// Column name → index, shared by every row of one result.
    let columns: [String: Int]
    let values: [SQLValue]

    subscript(_ column: String) -> SQLValue {
        guard let index = columns[column], index < values.count else { return .null }
        return values[index]
    }

    func int64(_ column: String) -> Int64? {
        switch self[column] {
        case .integer(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9.2e18: return Int64(value)
        case .text(let text): return Int64(text)
        default: return nil
        }
    }

    func double(_ column: String) -> Double? {
        switch self[column] {
        case .double(let value): return value
        case .integer(let value): return Double(value)
        case .text(let text): return Double(text)
        default: return nil
        }
    }

    func string(_ column: String) -> String? {
        switch self[column] {
        case .text(let text): return text
        case .blob(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .integer(let value): return String(value)
        case .double(let value): return String(value)
        case .null: return nil
        }
    }

    func bool(_ column: String) -> Bool? { int64(column).map { $0 != 0 } }

    func isNull(_ column: String) -> Bool { self[column] == .null }
}

/// The SQL differences between the backends that the shared MLMD mapping needs to know about.
enum SQLDialect: Sendable {
    case sqlite, mysql

    /// `INSERT` that skips a row whose unique key already exists (the statement then changes nothing).
    var insertIgnoringDuplicates: String {
        switch self {
        case .sqlite: return "INSERT OR IGNORE INTO"
        case .mysql: return "INSERT IGNORE INTO"
        }
    }

    /// `INSERT` that replaces a row with the same unique key.
    var insertOrReplace: String {
        switch self {
        case .sqlite: return "INSERT OR REPLACE INTO"
        case .mysql: return "REPLACE INTO"
        }
    }

    /// Appended to a `SELECT` whose answer decides an insert in the same transaction (get-or-create):
    /// on MySQL it locks the rows or the gap, so two concurrent transactions cannot both decide to
    /// insert (one of them is rolled back as a deadlock and retried). SQLite write transactions are
    /// serialized already.
    var lockingRead: String {
        switch self {
        case .sqlite: return ""
        case .mysql: return " FOR UPDATE"
        }
    }
}

/// A connection inside one transaction: what the MLMD mapping (``MLMDTransaction``) needs from a
/// database, implemented by the SQLite and the MySQL backends.
///
/// Statements use `?` placeholders; identifiers are quoted with backticks, which both backends accept.
protocol SQLConnection: AnyObject {
    var dialect: SQLDialect { get }

    /// Runs a statement that returns no rows, one value per placeholder; returns the number of
    /// rows it changed.
    @discardableResult
    func execute(_ sql: String, values: [SQLValue]) throws -> Int

    /// Runs a query, one value per placeholder, and returns all its rows.
    func query(_ sql: String, values: [SQLValue]) throws -> [SQLRow]

    /// The id of the row inserted by the last `INSERT` on this connection.
    var lastInsertID: Int64 { get }

    /// Runs independent queries and returns the rows of each. A backend may send them together
    /// (MySQL: one round trip for all).
    func queries(_ statements: [(sql: String, values: [SQLValue])]) throws -> [[SQLRow]]
}

extension SQLConnection {
    func queries(_ statements: [(sql: String, values: [SQLValue])]) throws -> [[SQLRow]] {
        try statements.map { try query($0.sql, values: $0.values) }
    }

    /// ``execute(_:values:)`` with Swift values (`[id, name, nil]`).
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> Int {
        try execute(sql, values: arguments.map(\.sqlValue))
    }

    /// ``query(_:values:)`` with Swift values.
    func query(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> [SQLRow] {
        try query(sql, values: arguments.map(\.sqlValue))
    }

    @discardableResult
    func execute(_ sql: String) throws -> Int { try execute(sql, []) }

    func query(_ sql: String) throws -> [SQLRow] { try query(sql, []) }

    /// The first column of every row, as integers.
    func int64s(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> [Int64] {
        try query(sql, arguments).compactMap { row in row.values.first.flatMap { SQLRow(columns: ["v": 0], values: [$0]).int64("v") } }
    }

    /// The first column of the first row, as an integer.
    func int64(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> Int64? {
        try int64s(sql, arguments).first
    }
}

/// `?, ?, ?` for `count` values.
func sqlPlaceholders(_ count: Int) -> String {
    Array(repeating: "?", count: count).joined(separator: ", ")
}
