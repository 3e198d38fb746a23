import Foundation
import ZenMLCore

/// How a JSON value is kept in ML Metadata's property columns (`int_value`, `double_value`,
/// `string_value`, `bool_value` of `ArtifactProperty`, `ExecutionProperty`, `ContextProperty`).
///
/// The same rules hold on every backend, so a store reads the same whichever database holds it:
/// - an integer that fits MySQL's 32-bit `INT` goes to `int_value`; a wider one (milliseconds since
///   the epoch, byte sizes, large counts) to `double_value`, which is exact up to 2^53, and beyond
///   that to `string_value` as decimal text. ml-metadata's MySQL schema declares `int_value INT`,
///   so this is the only representation that an ml-metadata client can read on both backends.
///   An integral `double_value` outside the 32-bit range reads back as an integer (canonical JSON
///   does not tell `3e9` from `3000000000` either);
/// - a finite double goes to `double_value`; NaN and ±infinity cannot be stored by MySQL and are
///   left out (the property is absent);
/// - a boolean goes to `bool_value`, a string to `string_value`, and an array or object to
///   `string_value` as canonical JSON (it reads back as that string);
/// - `null` is not stored.
enum PropertyValueCodec {
    /// The largest magnitude a double holds exactly as an integer.
    static let exactDoubleLimit: Int64 = 1 << 53

    /// The four value columns, in the order ``MLMDTransaction`` binds them.
    struct Columns: Equatable {
        var int: Int64?
        var double: Double?
        var string: String?
        var bool: Bool?
    }

    /// The columns for a value, or nil when the value is not stored.
    static func encode(_ value: JSONValue) -> Columns? {
        switch value {
        case .null:
            return nil
        case .int(let number):
            if number >= Int64(Int32.min) && number <= Int64(Int32.max) { return Columns(int: number) }
            if number.magnitude <= UInt64(exactDoubleLimit) { return Columns(double: Double(number)) }
            return Columns(string: String(number))
        case .double(let number):
            return number.isFinite ? Columns(double: number) : nil
        case .bool(let flag):
            return Columns(bool: flag)
        case .string(let text):
            return Columns(string: text)
        case .array, .object:
            return Columns(string: CanonicalJSON.encode(value))
        }
    }

    /// The value of a property row (columns `int_value`, `double_value`, `bool_value`, `string_value`).
    static func decode(_ row: SQLRow) -> JSONValue? {
        if let number = row.int64("int_value") { return .int(number) }
        if let number = row.double("double_value") {
            if number.rounded() == number, abs(number) > Double(Int32.max), abs(number) <= Double(exactDoubleLimit) {
                return .int(Int64(number))
            }
            return .double(number)
        }
        if let flag = row.bool("bool_value") { return .bool(flag) }
        if let text = row.string("string_value") { return .string(text) }
        return nil
    }
}
