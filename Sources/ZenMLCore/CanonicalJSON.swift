import Foundation

/// The canonical JSON encoding used wherever bytes are hashed (cache keys, tree digests).
///
/// The rules, which `protocol/SPEC.md` documents for step authors and other implementations:
/// - object keys sorted by their UTF-8 bytes, no whitespace anywhere;
/// - integers, and floating-point numbers with an integral value within the signed 64-bit range,
///   as plain decimal integers (`1.0`, `1` and `1e2` are written `1`, `1`, `100`, whichever
///   parser read them); other numbers in the shortest form that round-trips (`0.1`, `1e-07`,
///   `1.5e+300`), which Swift and Python print alike; NaN and infinities encode as `null`;
/// - strings as UTF-8 with only `"`, `\` and control characters escaped (`\n`, `\t`, `\r`,
///   `\b`, `\f`, others as `\u00XX`).
public enum CanonicalJSON {
    /// The canonical text of a value.
    public static func encode(_ value: JSONValue) -> String {
        var output = ""
        output.reserveCapacity(256)
        write(value, into: &output)
        return output
    }

    /// The canonical UTF-8 bytes of a value.
    public static func data(_ value: JSONValue) -> Data {
        Data(encode(value).utf8)
    }

    private static func write(_ value: JSONValue, into output: inout String) {
        switch value {
        case .null:
            output += "null"
        case .bool(let flag):
            output += flag ? "true" : "false"
        case .int(let number):
            output += String(number)
        case .double(let number):
            output += format(number)
        case .string(let string):
            writeString(string, into: &output)
        case .array(let elements):
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                write(element, into: &output)
            }
            output += "]"
        case .object(let object):
            output += "{"
            let keys = object.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                if index > 0 { output += "," }
                writeString(key, into: &output)
                output += ":"
                // The key comes from the dictionary itself, so the lookup cannot miss.
                write(object[key] ?? .null, into: &output)
            }
            output += "}"
        }
    }

    /// A number as canonical JSON writes it.
    public static func format(_ number: Double) -> String {
        guard number.isFinite else { return "null" }
        // Every integral double below 2^63 is exactly an Int64, so this conversion is exact.
        if number.rounded() == number && abs(number) < 9_223_372_036_854_775_808.0 {
            return String(Int64(number))
        }
        return "\(number)"
    }

    private static func writeString(_ string: String, into output: inout String) {
        output += "\""
        // Most strings (paths, digests, names) need no escaping: copy them whole.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            output += string
            output += "\""
            return
        }
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }
}
