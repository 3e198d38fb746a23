import Foundation
import Yams
import ZenMLCore

/// A place in a source file, shown to users as `file:line:column`.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A YAML file read as JSON values, remembering where each value came from so that errors can
/// point at the line to change.
///
/// Scalars follow YAML 1.2's core schema for booleans: only `true` and `false` (any case) are
/// booleans, so `country: no` stays the string "no".
public struct YAMLDocument: Sendable {
    /// The path of the file, as given.
    public let file: String
    /// The document as JSON.
    public let root: JSONValue
    /// The parsed nodes, where locations are looked up when asked for: only messages need them,
    /// and a map of every key path built while reading took a quarter of reading a 500-step
    /// pipeline.
    private let nodes: ParsedNodes?
    /// For an assembled document, the documents whose locations it shows, in order.
    private let layers: [YAMLDocument]

    // The pattern is a constant that compiles; a failure here is a programming error caught by every test.
    // Yams tries each rule's regular expression on every plain scalar. Merge keys (`<<`),
    // timestamps and `=` would be read as strings here anyway, so their rules are dropped: a
    // third fewer regular expressions per scalar.
    private static let resolver: Resolver = {
        do {
            return try Resolver.default.removing(.merge).removing(.timestamp).removing(.value)
                .replacing(.bool, with: "^(?:true|True|TRUE|false|False|FALSE)$")
        } catch {
            preconditionFailure("invalid boolean pattern: \(error)")
        }
    }()

    /// Parses YAML text. `file` is only used in locations and messages.
    public init(text: String, file: String) throws {
        self.file = file
        let node: Node?
        do {
            // Composed without rules: Yams' check for duplicate keys hashes every key with its
            // resolved tag, which tried the regular expressions on each of them. Values are
            // resolved with `resolver` in `convert`.
            node = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            throw YAMLDocumentError(error, file: file)
        }
        self.layers = []
        guard let node else {
            self.root = .null
            self.nodes = nil
            return
        }
        self.root = try YAMLDocument.convert(node, file: file)
        self.nodes = ParsedNodes(root: node)
    }

    /// A document assembled from others, such as a pipeline over its base: `root` is the merged
    /// value, and a location is looked up in `layers` in order, so that each value points at the
    /// file that wrote it.
    public init(merged root: JSONValue, file: String, layers: [YAMLDocument]) {
        self.file = file
        self.root = root
        self.nodes = nil
        self.layers = layers
    }

    /// Reads and parses a YAML file.
    public init(contentsOf path: String) throws {
        let data = try FileTree.read(path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw YAMLDocumentError(file: path, line: 1, column: 1, message: "the file is not UTF-8 text")
        }
        try self.init(text: text, file: path)
    }

    /// Where the value at a key path was written; for a path that is not in the file, the nearest
    /// enclosing value's place.
    public func location(_ path: [String]) -> SourceLocation {
        var path = path[...]
        while true {
            if let location = exactLocation(path, ofKey: false) { return location }
            if path.isEmpty { return SourceLocation(file: file, line: 1, column: 1) }
            path.removeLast()
        }
    }

    /// Where the key (not the value) of a mapping entry was written.
    public func keyLocation(_ path: [String]) -> SourceLocation {
        exactLocation(path[...], ofKey: true) ?? location(path)
    }

    /// Where each key of the mapping at `path` was written (for an assembled document, in the first
    /// layer that has it): one lookup for all of them.
    public func keyLocations(in path: [String]) -> [String: SourceLocation] {
        guard let root = nodes?.root else {
            var places: [String: SourceLocation] = [:]
            for layer in layers { places.merge(layer.keyLocations(in: path)) { first, _ in first } }
            return places
        }
        guard case .mapping(let mapping)? = locate(path[...], from: root)?.node else { return [:] }
        var places: [String: SourceLocation] = [:]
        places.reserveCapacity(mapping.count)
        for (key, _) in mapping {
            guard let name = key.scalar?.string, let mark = key.mark, places[name] == nil else { continue }
            places[name] = SourceLocation(file: file, line: mark.line, column: mark.column)
        }
        return places
    }

    /// The node at `path` below `root`, and the node of its key if it is a mapping entry.
    private func locate(_ path: ArraySlice<String>, from root: Node) -> (node: Node, key: Node?)? {
        var node = root
        var key: Node?
        for component in path {
            switch node {
            case .mapping(let mapping):
                guard let entry = mapping.first(where: { $0.key.scalar?.string == component }) else { return nil }
                key = entry.key
                node = entry.value
            case .sequence(let sequence):
                guard let index = Int(component), sequence.indices.contains(index) else { return nil }
                key = nil
                node = sequence[index]
            default:
                return nil
            }
        }
        return (node, key)
    }

    /// The place of the value at `path` (or of its key), if the file has it.
    private func exactLocation(_ path: ArraySlice<String>, ofKey: Bool) -> SourceLocation? {
        guard let root = nodes?.root else {
            for layer in layers {
                if let location = layer.exactLocation(path, ofKey: ofKey) { return location }
            }
            return nil
        }
        guard let found = locate(path, from: root), let mark = ofKey ? found.key?.mark : found.node.mark else { return nil }
        return SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    private static func convert(_ node: Node, file: String) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            let tag: String
            if scalar.tag.rawValue.isEmpty {
                // A plain scalar without a tag. The resolver tries regular expressions in turn
                // (they were a third of reading a 500-step pipeline): only numbers other than
                // plain decimal integers are left to it.
                if let value = plainScalar(scalar.string) { return value }
                tag = resolver.resolveTag(of: node).rawValue
            } else {
                tag = node.tag.rawValue
            }
            switch tag {
            case "tag:yaml.org,2002:null": return .null
            case "tag:yaml.org,2002:bool": return .bool(scalar.string.lowercased() == "true")
            case "tag:yaml.org,2002:int":
                if let value = node.int { return .int(Int64(value)) }
                return .string(scalar.string)
            case "tag:yaml.org,2002:float":
                if let value = node.float { return .double(value) }
                return .string(scalar.string)
            default:
                return .string(scalar.string)
            }
        case .sequence(let sequence):
            var values: [JSONValue] = []
            values.reserveCapacity(sequence.count)
            for element in sequence { values.append(try convert(element, file: file)) }
            return .array(values)
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            object.reserveCapacity(mapping.count)
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    let mark = keyNode.mark
                    throw YAMLDocumentError(
                        file: file, line: mark?.line ?? 1, column: mark?.column ?? 1,
                        message: "a mapping key must be a plain string")
                }
                let key = keyScalar.string
                if object[key] != nil {
                    let mark = keyNode.mark
                    throw YAMLDocumentError(
                        file: file, line: mark?.line ?? 1, column: mark?.column ?? 1,
                        message: "the key '\(key)' appears twice in the same mapping; keep one")
                }
                object[key] = try convert(valueNode, file: file)
            }
            return .object(object)
        case .alias:
            throw YAMLDocumentError(
                file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1,
                message: "YAML aliases are not supported here; write the value out")
        }
    }
}

/// The value of a plain scalar without a tag, where it is known without the resolver: nulls and
/// booleans (YAML 1.2's forms), plain decimal integers, and text that starts no number. `nil`: a
/// number form for the resolver (floats, `.inf`, octal, hex, `1_000`, signs before anything else).
private func plainScalar(_ text: String) -> JSONValue? {
    switch text {
    case "~", "null", "Null", "NULL": return .null
    case "true", "True", "TRUE": return .bool(true)
    case "false", "False", "FALSE": return .bool(false)
    default: break
    }
    let bytes = text.utf8
    guard let first = bytes.first else { return .null }  // an empty value
    switch first {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"):
        if let value = decimalInteger(text) { return .int(value) }
        // No number form has two dots, or a byte outside these (`0.1.0`, `10MB`, `-x`): text.
        let dots = bytes.lazy.filter { $0 == UInt8(ascii: ".") }.count
        return dots < 2 && bytes.allSatisfy(numberBytes.contains) ? nil : .string(text)
    case UInt8(ascii: "."):
        // `.5`, `._5`, `.inf`, `.nan`; anything else, such as `./steps/x`, is text.
        let second = bytes.dropFirst().first
        let number = second.map { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") } ?? false
        return number || [".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"].contains(text) ? nil : .string(text)
    default:
        return .string(text)
    }
}

/// The bytes of YAML 1.1's number forms: digits, signs, `_`, `.`, `:` (sexagesimal), exponents,
/// hex digits and the `0x`, `0o`, `0b` prefixes, and the letters of `.inf`.
private let numberBytes = Set("0123456789+-_.:eEabcdefABCDEFxoiInN".utf8)

/// The value of `text` if it is a decimal integer that the resolver reads as one: `0`, or digits
/// not starting with `0` after an optional sign. The rest go to the resolver: YAML 1.1 reads `017`
/// as octal and `1_000` with its underscore, and Yams leaves `-0` a string.
private func decimalInteger(_ text: String) -> Int64? {
    var digits = text.utf8[...]
    if let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { digits = digits.dropFirst() }
    guard let first = digits.first, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
          first != UInt8(ascii: "0") || text == "0"
    else { return nil }
    return Int64(text)
}

/// A parsed node tree, read only after parsing (Yams' nodes are not marked `Sendable`: their tags
/// are classes, which nothing here changes).
private struct ParsedNodes: @unchecked Sendable {
    let root: Node
}

/// A YAML file that could not be parsed.
public struct YAMLDocumentError: Error, CustomStringConvertible, Sendable {
    public var location: SourceLocation
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.location = SourceLocation(file: file, line: line, column: column)
        self.message = message
    }

    init(_ error: YamlError, file: String) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            self.init(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(prefix)\(problem)")
        default:
            self.init(file: file, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
    }

    public var description: String { "\(location): error: \(message)" }
}
