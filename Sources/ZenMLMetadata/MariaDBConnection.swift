import CMariaDB
import Foundation
import ZenMLCore

/// An error reported by the MariaDB client library or the server: its error number, SQLSTATE and
/// message. Messages come from the server or the client library and never contain the password.
struct MariaDBError: Error, CustomStringConvertible {
    var code: UInt32
    var sqlState: String
    var message: String

    var description: String { "\(message) (error \(code), SQLSTATE \(sqlState))" }

    /// The connection is gone (server restarted or shut down, connection killed, network error,
    /// timeout): nothing more can be done on it, and an open transaction was rolled back by the server.
    var isConnectionLost: Bool {
        switch code {
        case 2002, 2003, 2005, 2006, 2013, 2055,  // CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR, CR_UNKNOWN_HOST, CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED
             1053, 1077, 1078, 1079, 1080,  // ER_SERVER_SHUTDOWN, ER_NORMAL_SHUTDOWN, ER_GOT_SIGNAL, ER_SHUTDOWN_COMPLETE, ER_FORCING_CLOSE
             1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161,  // ER_ABORTING_CONNECTION … ER_NET_WRITE_INTERRUPTED
             1927, 4031:  // ER_CONNECTION_KILLED, ER_CLIENT_INTERACTION_TIMEOUT
            return true
        default:
            return false
        }
    }

    /// The server rolled back (or wants us to roll back) the transaction because of a conflict
    /// with another one: running it again will most likely succeed.
    var isTransactionConflict: Bool {
        code == 1213 || code == 1205 || code == 1040  // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, ER_CON_COUNT_ERROR
    }

    /// The server refused the user or password.
    var isAccessDenied: Bool { code == 1045 || code == 1044 || code == 1698 }  // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR
}

/// What a connection is opened with (a subset of ``MySQLConfiguration``, password included).
struct MariaDBConnectOptions {
    var host: String
    var port: Int
    var socket: String?
    var user: String
    var password: String?
    /// The database to select, or nil for none.
    var database: String?
    var connectTimeout: TimeInterval
    var readTimeout: TimeInterval
}

/// The MariaDB client library, opened at first use rather than linked: resolving it and the
/// libraries it needs cost every zenml-run process milliseconds at start, and most use SQLite.
enum MariaDBLibrary {
    /// Loads the library and runs `mysql_library_init`, once per process (later calls only check).
    /// - Throws: ``MetadataStoreError/missingClientLibrary(path:reason:)`` when it cannot be loaded.
    static func load(for location: String) throws {
        if let reason = zm_load() { throw MetadataStoreError.missingClientLibrary(path: location, reason: String(cString: reason)) }
    }

    /// What ``load(for:)`` does, with other file names to try (tests use names that do not exist).
    static func load(for location: String, candidates: [String]) throws {
        var error = [CChar](repeating: 0, count: 1024)
        let status = CStrings.withConstArray(candidates) { zm_load_from($0, candidates.count, &error, error.count) }
        if status != 0 { throw MetadataStoreError.missingClientLibrary(path: location, reason: CStrings.string(from: error)) }
    }
}

/// One client connection to a MySQL or MariaDB server (Connector/C, text protocol), used by one
/// thread at a time. Arguments are sent as escaped literals (`mysql_real_escape_string` in the
/// connection's utf8mb4 character set), so every statement is one round trip.
///
/// Two round-trip savers, both safe under the classic protocol: a statement can be queued with
/// ``sendWithNextStatement(_:)`` (it travels with the next statement as a multi-statement
/// packet: `START TRANSACTION` costs no round trip of its own), and one can be sent without
/// waiting for its reply with ``sendWithoutWaiting(_:)`` (a read-only transaction's `COMMIT`;
/// the reply is read, and an error reported, before the next statement is sent).
final class MariaDBConnection: SQLConnection {
    private var handle: UnsafeMutablePointer<MYSQL>?
    var dialect: SQLDialect { .mysql }
    private(set) var lastInsertID: Int64 = 0
    /// A statement to send in front of the next one.
    private var queuedPrefix: String?
    /// A statement was sent whose reply has not been read yet.
    private var replyPending = false

    init(_ options: MariaDBConnectOptions) throws {
        // MySQLMetadataStore loads the library first and reports a missing one; this is the backstop.
        if let reason = zm_load() { throw MariaDBError(code: 2000, sqlState: "HY000", message: String(cString: reason)) }
        guard let handle = zm_mysql_init(nil) else {
            throw MariaDBError(code: 2008, sqlState: "HY000", message: "out of memory while creating a MariaDB client handle")
        }
        var connectTimeout = UInt32(max(1, options.connectTimeout.rounded(.up)))
        var readTimeout = UInt32(max(1, options.readTimeout.rounded(.up)))
        var writeTimeout = readTimeout
        zm_mysql_options(handle, MYSQL_OPT_CONNECT_TIMEOUT, &connectTimeout)
        zm_mysql_options(handle, MYSQL_OPT_READ_TIMEOUT, &readTimeout)
        zm_mysql_options(handle, MYSQL_OPT_WRITE_TIMEOUT, &writeTimeout)
        zm_mysql_options(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        let multiStatements: UInt = 1 << 16  // CLIENT_MULTI_STATEMENTS, for sendWithNextStatement
        let connected = zm_mysql_real_connect(
            handle, options.socket == nil ? options.host : nil, options.user, options.password, options.database,
            UInt32(options.port), options.socket, multiStatements)
        if connected == nil {
            let error = Self.error(of: handle)
            zm_mysql_close(handle)
            throw error
        }
        self.handle = handle
    }

    deinit { close() }

    /// Closes the connection (idempotent).
    func close() {
        if let handle { zm_mysql_close(handle) }
        handle = nil
    }

    /// The server's id for this connection (what `KILL` takes).
    func connectionID() throws -> Int64 {
        guard let id = try int64("SELECT CONNECTION_ID()") else {
            throw MariaDBError(code: 2000, sqlState: "HY000", message: "the server did not return its connection id")
        }
        return id
    }

    private static func error(of handle: UnsafeMutablePointer<MYSQL>) -> MariaDBError {
        MariaDBError(code: zm_mysql_errno(handle), sqlState: String(cString: zm_mysql_sqlstate(handle)), message: String(cString: zm_mysql_error(handle)))
    }

    private func liveHandle() throws -> UnsafeMutablePointer<MYSQL> {
        guard let handle else { throw MariaDBError(code: 2006, sqlState: "HY000", message: "the connection was closed") }
        return handle
    }

    // MARK: Statements

    /// `sql` with each `?` outside quotes and backticks replaced by the next argument as a literal.
    func interpolate(_ sql: String, _ arguments: [SQLValue]) throws -> String {
        guard !arguments.isEmpty else { return sql }
        var result: [UInt8] = []
        result.reserveCapacity(sql.utf8.count + arguments.count * 24)
        var next = 0
        var quote: UInt8?
        for byte in sql.utf8 {  // the quote characters and `?` are ASCII: bytes suffice
            if let open = quote {
                if byte == open { quote = nil }
                result.append(byte)
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "`") {
                quote = byte
                result.append(byte)
            } else if byte == UInt8(ascii: "?") {
                guard next < arguments.count else {
                    throw MariaDBError(code: 2034, sqlState: "HY000", message: "a statement has more placeholders than arguments: \(sql)")
                }
                result.append(contentsOf: try literal(arguments[next]).utf8)
                next += 1
            } else {
                result.append(byte)
            }
        }
        guard next == arguments.count else {
            throw MariaDBError(code: 2034, sqlState: "HY000", message: "a statement has fewer placeholders (\(next)) than arguments (\(arguments.count)): \(sql)")
        }
        return String(decoding: result, as: UTF8.self)
    }

    private func literal(_ value: SQLValue) throws -> String {
        switch value {
        case .null:
            return "NULL"
        case .integer(let number):
            return String(number)
        case .double(let number):
            guard number.isFinite else {
                throw MariaDBError(code: 1367, sqlState: "22007", message: "MySQL cannot store the number \(number)")
            }
            return "\(number)"
        case .text(let text):
            return "'" + (try escape(Array(text.utf8))) + "'"
        case .blob(let bytes):
            return "X'" + bytes.map { String(format: "%02x", $0) }.joined() + "'"
        }
    }

    private func escape(_ bytes: [UInt8]) throws -> String {
        let handle = try liveHandle()
        guard !bytes.isEmpty else { return "" }
        var buffer = [CChar](repeating: 0, count: bytes.count * 2 + 1)
        let length = bytes.withUnsafeBufferPointer { source -> UInt in
            guard let base = source.baseAddress else { return 0 }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { from in
                zm_mysql_real_escape_string(handle, &buffer, from, UInt(bytes.count))
            }
        }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Queues `sql` (a statement without arguments or result, such as `START TRANSACTION`) to be
    /// sent in one packet with the next statement.
    func sendWithNextStatement(_ sql: String) {
        queuedPrefix = queuedPrefix.map { $0 + "; " + sql } ?? sql
    }

    /// Sends `sql` (a statement without result set) and returns at once; its reply is read before
    /// the next statement, where a failure is reported.
    func sendWithoutWaiting(_ sql: String) throws {
        let handle = try liveHandle()
        try readPendingReply()
        let prefix = queuedPrefix
        queuedPrefix = nil
        let text = prefix.map { $0 + "; " + sql } ?? sql
        let status = text.withCString { zm_mysql_send_query(handle, $0, UInt(strlen($0))) }
        if status != 0 { throw Self.error(of: handle) }
        replyPending = true
    }

    private func readPendingReply() throws {
        guard replyPending, let handle else { return }
        replyPending = false
        if zm_mysql_read_query_result(handle) != 0 { throw Self.error(of: handle) }
        try discardResults(handle, includingCurrent: true)
    }

    /// Frees the current result (if asked) and any further results of a multi-statement packet.
    private func discardResults(_ handle: UnsafeMutablePointer<MYSQL>, includingCurrent: Bool) throws {
        if includingCurrent, let result = zm_mysql_store_result(handle) { zm_mysql_free_result(result) }
        while zm_mysql_more_results(handle) != 0 {
            let next = zm_mysql_next_result(handle)
            if next > 0 { throw Self.error(of: handle) }
            if next < 0 { break }
            if let result = zm_mysql_store_result(handle) { zm_mysql_free_result(result) }
        }
    }

    /// Sends one statement (after any queued prefix); returns its result set, if it has one.
    private func run(_ sql: String) throws -> UnsafeMutablePointer<MYSQL_RES>? {
        let handle = try liveHandle()
        try readPendingReply()
        let prefix = queuedPrefix
        queuedPrefix = nil
        let text = prefix.map { $0 + "; " + sql } ?? sql
        let status = text.withCString { zm_mysql_real_query(handle, $0, UInt(strlen($0))) }
        if status != 0 { throw Self.error(of: handle) }
        if let prefix {
            // Skip the replies of the prefix's statements (they have no result sets).
            for _ in prefix.split(separator: ";") {
                if let result = zm_mysql_store_result(handle) { zm_mysql_free_result(result) }
                let next = zm_mysql_next_result(handle)
                if next > 0 { throw Self.error(of: handle) }
                if next < 0 { throw MariaDBError(code: 2014, sqlState: "HY000", message: "the server sent fewer replies than statements") }
            }
        }
        let result = zm_mysql_store_result(handle)
        if result == nil && zm_mysql_field_count(handle) != 0 { throw Self.error(of: handle) }
        return result
    }

    @discardableResult
    func execute(_ sql: String, values: [SQLValue]) throws -> Int {
        let handle = try liveHandle()
        let result = try run(try interpolate(sql, values))
        if let result { zm_mysql_free_result(result) }
        lastInsertID = Int64(zm_mysql_insert_id(handle))
        let affected = zm_mysql_affected_rows(handle)
        try discardResults(handle, includingCurrent: false)
        return affected == UInt64.max ? 0 : Int(affected)
    }

    func query(_ sql: String, values: [SQLValue]) throws -> [SQLRow] {
        let result = try run(try interpolate(sql, values))
        let rows = try Self.rows(of: result)
        let handle = try liveHandle()
        if zm_mysql_errno(handle) != 0 { throw Self.error(of: handle) }
        try discardResults(handle, includingCurrent: false)
        return rows
    }

    /// Sends all the queries in one packet (one round trip) and reads their results in order.
    func queries(_ statements: [(sql: String, values: [SQLValue])]) throws -> [[SQLRow]] {
        guard let first = statements.first else { return [] }
        guard statements.count > 1 else { return [try query(first.sql, values: first.values)] }
        let text = try statements.map { try interpolate($0.sql, $0.values) }.joined(separator: "; ")
        let handle = try liveHandle()
        var results: [[SQLRow]] = [try Self.rows(of: try run(text))]
        while results.count < statements.count {
            let next = zm_mysql_next_result(handle)
            if next > 0 { throw Self.error(of: handle) }
            if next < 0 { throw MariaDBError(code: 2014, sqlState: "HY000", message: "the server sent fewer results than queries") }
            let result = zm_mysql_store_result(handle)
            if result == nil && zm_mysql_field_count(handle) != 0 { throw Self.error(of: handle) }
            results.append(try Self.rows(of: result))
        }
        try discardResults(handle, includingCurrent: false)
        return results
    }

    /// The rows of a result set (freed here).
    private static func rows(of result: UnsafeMutablePointer<MYSQL_RES>?) throws -> [SQLRow] {
        guard let result else { return [] }
        defer { zm_mysql_free_result(result) }
        let fieldCount = Int(zm_mysql_num_fields(result))
        guard let fields = zm_mysql_fetch_fields(result) else { return [] }
        var columns: [String: Int] = [:]
        var kinds: [ColumnKind] = []
        for index in 0..<fieldCount {
            let field = fields[index]
            let name = String(cString: field.name)
            if columns[name] == nil { columns[name] = index }
            kinds.append(ColumnKind(field))
        }
        var rows: [SQLRow] = []
        while let row = zm_mysql_fetch_row(result) {
            guard let lengths = zm_mysql_fetch_lengths(result) else { break }
            var values: [SQLValue] = []
            values.reserveCapacity(fieldCount)
            for index in 0..<fieldCount {
                guard let pointer = row[index] else { values.append(.null); continue }
                let bytes = UnsafeRawBufferPointer(start: pointer, count: Int(lengths[index]))
                values.append(kinds[index].value(bytes))
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    /// How the text of a column is turned into a value.
    private enum ColumnKind {
        case integer, double, decimal, text, blob

        init(_ field: MYSQL_FIELD) {
            switch field.type {
            case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_INT24, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_YEAR, MYSQL_TYPE_BIT:
                self = .integer
            case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE:
                self = .double
            case MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL:
                self = .decimal
            case MYSQL_TYPE_TINY_BLOB, MYSQL_TYPE_MEDIUM_BLOB, MYSQL_TYPE_LONG_BLOB, MYSQL_TYPE_BLOB, MYSQL_TYPE_VAR_STRING, MYSQL_TYPE_STRING, MYSQL_TYPE_VARCHAR:
                self = field.charsetnr == 63 ? .blob : .text  // 63: the binary character set
            default:
                self = .text
            }
        }

        func value(_ bytes: UnsafeRawBufferPointer) -> SQLValue {
            let text = String(decoding: bytes, as: UTF8.self)
            switch self {
            case .integer: return Int64(text).map { .integer($0) } ?? .text(text)
            case .double: return Double(text).map { .double($0) } ?? .text(text)
            case .decimal: return Int64(text).map { .integer($0) } ?? Double(text).map { .double($0) } ?? .text(text)
            case .text: return .text(text)
            case .blob: return .blob(Array(bytes))
            }
        }
    }
}
