// The output formats: an ordered JSON value, its writer, the number rounding and the protobuf text
// writer. They reproduce, byte for byte, what the Python bundles write with steps/lib/zenml_ml.py
// (json.dump(indent=1, ensure_ascii=False), num(), TextProto), so that the statistics of the same
// data have the same digest whichever implementation made them.
import Foundation

/// A JSON value whose objects keep their keys in the order given.
indirect enum JSONValue {
    case null
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])
}

/// A number for the JSON and text formats (`num` in zenml_ml.py): floats keep `digits`
/// significant digits, so float32 noise (39.099998474121094) and libm's last bits stay out of the
/// artifacts; a float that is then integral (and exact as a double) is written as an integer; a
/// non-finite one as null.
func number(_ value: Double, digits: Int = 9) -> JSONValue {
    guard value.isFinite else { return .null }
    let rounded = Double(String(format: "%.*g", digits, value)) ?? value
    if rounded == rounded.rounded(), abs(rounded) < 9_007_199_254_740_992 { return .int(Int64(rounded)) }
    return .double(rounded)
}

/// Python's `repr(float)`: the shortest digits that read back as the same double (which Swift's
/// description also finds), laid out as Python does: positional from 1e-4 up to 1e16, with ".0"
/// when integral, else "d.ddde±XX".
func pythonRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    var text = Substring(value.description)
    let negative = text.hasPrefix("-")
    if negative { text = text.dropFirst() }
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...]) ?? 0
        text = text[..<e]
    }
    let point = text.firstIndex(of: ".")
    let integerPart = point.map { text[..<$0] } ?? text
    let fraction = point.map { text[text.index(after: $0)...] } ?? ""
    var digits = Array(integerPart + fraction)
    // value = 0.digits × 10^decimalPoint
    var decimalPoint = integerPart.count + exponent
    while digits.first == "0", digits.count > 1 {
        digits.removeFirst()
        decimalPoint -= 1
    }
    while digits.last == "0", digits.count > 1 { digits.removeLast() }
    if digits == ["0"] { return negative ? "-0.0" : "0.0" }
    let sign = negative ? "-" : ""
    if decimalPoint > -4 && decimalPoint <= 16 {
        if decimalPoint <= 0 { return sign + "0." + String(repeating: "0", count: -decimalPoint) + String(digits) }
        if decimalPoint >= digits.count {
            return sign + String(digits) + String(repeating: "0", count: decimalPoint - digits.count) + ".0"
        }
        return sign + String(digits[..<decimalPoint]) + "." + String(digits[decimalPoint...])
    }
    let power = decimalPoint - 1
    let mantissa = digits.count == 1 ? String(digits) : String(digits[0]) + "." + String(digits[1...])
    let magnitude = String(abs(power))
    return sign + mantissa + "e" + (power < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" + magnitude : magnitude)
}

/// A string literal as Python's json.dumps(ensure_ascii=False) writes it (also a valid protobuf
/// text format literal, as the Python TextProto uses it).
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

extension JSONValue {
    /// The text of json.dump(value, indent=1) followed by a newline.
    func document() -> String {
        var out = ""
        write(to: &out, depth: 0)
        return out + "\n"
    }

    private func write(to out: inout String, depth: Int) {
        switch self {
        case .null: out += "null"
        case .int(let value): out += String(value)
        case .double(let value): out += pythonRepr(value)
        case .string(let value): out += jsonString(value)
        case .array(let items):
            guard !items.isEmpty else { return out += "[]" }
            out += "["
            for (index, item) in items.enumerated() {
                out += (index == 0 ? "\n" : ",\n") + String(repeating: " ", count: depth + 1)
                item.write(to: &out, depth: depth + 1)
            }
            out += "\n" + String(repeating: " ", count: depth) + "]"
        case .object(let members):
            guard !members.isEmpty else { return out += "{}" }
            out += "{"
            for (index, (key, value)) in members.enumerated() {
                out += (index == 0 ? "\n" : ",\n") + String(repeating: " ", count: depth + 1) + jsonString(key) + ": "
                value.write(to: &out, depth: depth + 1)
            }
            out += "\n" + String(repeating: " ", count: depth) + "}"
        }
    }

    subscript(key: String) -> JSONValue {
        if case .object(let members) = self, let member = members.first(where: { $0.0 == key }) { return member.1 }
        return .null
    }

    var items: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }
}

/// Writes protobuf text format: `field(name, value)`, `message(name) { ... }` nests.
struct TextProto {
    private(set) var text = ""
    private var depth = 0

    /// A scalar field; null values are left out. Numbers go through ``number(_:digits:)`` again,
    /// as the Python writer does.
    mutating func field(_ name: String, _ value: JSONValue) {
        let rendered: String
        switch value {
        case .null, .array, .object: return
        case .int(let value): rendered = String(value)
        case .double(let value):
            switch number(value) {
            case .int(let integral): rendered = String(integral)
            case .double(let rounded): rendered = pythonRepr(rounded)
            default: return
            }
        case .string(let value): rendered = jsonString(value)
        }
        line("\(name): \(rendered)")
    }

    /// An enum value, written bare.
    mutating func enumeration(_ name: String, _ value: String) {
        line("\(name): \(value)")
    }

    mutating func message(_ name: String, _ body: (inout TextProto) -> Void) {
        line(name + " {")
        depth += 1
        body(&self)
        depth -= 1
        line("}")
    }

    private mutating func line(_ content: String) {
        text += String(repeating: "  ", count: depth) + content + "\n"
    }
}
