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
        String(decoding: bytes(value), as: UTF8.self)
    }

    /// The canonical UTF-8 bytes of a value.
    public static func data(_ value: JSONValue) -> Data {
        Data(bytes(value))
    }

    /// Written as bytes, not appended to a `String`: each append to a string checks its
    /// encoding, and keys are ordered by comparing their bytes in place (encoding is on the path
    /// of every cache key and every recorded execution).
    private static func bytes(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        write(value, into: &output)
        return output
    }

    private static func write(_ value: JSONValue, into output: inout [UInt8]) {
        switch value {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let flag):
            output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number):
            output.append(contentsOf: String(number).utf8)
        case .double(let number):
            output.append(contentsOf: format(number).utf8)
        case .string(let string):
            writeString(string, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for (index, entry) in object.sorted(by: { precedes($0.key, $1.key) }).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(entry.key, into: &output)
                output.append(UInt8(ascii: ":"))
                write(entry.value, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Whether `a` sorts before `b` by their UTF-8 bytes.
    private static func precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { a in
            b.withUTF8 { b in
                let common = min(a.count, b.count)
                if common > 0, let first = a.baseAddress, let second = b.baseAddress {
                    let order = memcmp(first, second, common)
                    if order != 0 { return order < 0 }
                }
                return a.count < b.count
            }
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

    private static func writeString(_ string: String, into output: inout [UInt8]) {
        var string = string
        output.append(UInt8(ascii: "\""))
        string.withUTF8 { bytes in
            // Most strings (paths, digests, names) need no escaping: copied whole.
            guard bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                output.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\n"): output.append(contentsOf: #"\n"#.utf8)
                case UInt8(ascii: "\r"): output.append(contentsOf: #"\r"#.utf8)
                case UInt8(ascii: "\t"): output.append(contentsOf: #"\t"#.utf8)
                case 0x08: output.append(contentsOf: #"\b"#.utf8)
                case 0x0C: output.append(contentsOf: #"\f"#.utf8)
                case ..<0x20:
                    let hex = String(byte, radix: 16)
                    output.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
                default:
                    // Bytes of multi-byte characters are all 0x80 or above: copied as they are.
                    output.append(byte)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
