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
    /// Keyed by ``locationKey(_:)`` of the key path: one string hashes faster than an array of them.
    private let locations: [String: SourceLocation]

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
        var locations: [String: SourceLocation] = [:]
        guard let node else {
            self.root = .null
            self.locations = [:]
            return
        }
        self.root = try YAMLDocument.convert(node, path: "", file: file, locations: &locations)
        self.locations = locations
    }

    /// A document assembled from others, such as a pipeline over its base: `root` is the merged
    /// value, and a location is looked up in `layers` in order, so that each value points at the
    /// file that wrote it.
    public init(merged root: JSONValue, file: String, layers: [YAMLDocument]) {
        self.file = file
        self.root = root
        var locations: [String: SourceLocation] = [:]
        for layer in layers.reversed() { locations.merge(layer.locations) { _, upper in upper } }
        self.locations = locations
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
        var path = path
        while true {
            if let location = locations[Self.locationKey(path)] { return location }
            if path.isEmpty { return SourceLocation(file: file, line: 1, column: 1) }
            path.removeLast()
        }
    }

    /// Where the key (not the value) of a mapping entry was written.
    public func keyLocation(_ path: [String]) -> SourceLocation {
        locations[Self.locationKey(path + ["<key>"])] ?? location(path)
    }

    /// A key path as one string: each component after a NUL, which no YAML key holds in practice.
    private static func locationKey(_ path: [String]) -> String {
        path.reduce(into: "") { $0 += "\u{0}" + $1 }
    }

    private static func convert(
        _ node: Node, path: String, file: String, locations: inout [String: SourceLocation]
    ) throws -> JSONValue {
        if let mark = node.mark {
            locations[path] = SourceLocation(file: file, line: mark.line, column: mark.column)
        }
        switch node {
        case .scalar(let scalar):
            let tag: String
            if scalar.tag.rawValue.isEmpty {
                // A plain scalar without a tag. The resolver tries regular expressions in turn;
                // one whose first character starts no null, boolean or number is a string
                // without them (they were a third of reading a 500-step pipeline).
                guard scalar.string.utf8.first.map(mayStartTypedScalar) ?? true else { return .string(scalar.string) }
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
            for (index, element) in sequence.enumerated() {
                values.append(try convert(element, path: path + "\u{0}" + String(index), file: file, locations: &locations))
            }
            return .array(values)
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
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
                if let mark = keyNode.mark {
                    locations[path + "\u{0}" + key + "\u{0}<key>"] = SourceLocation(file: file, line: mark.line, column: mark.column)
                }
                object[key] = try convert(valueNode, path: path + "\u{0}" + key, file: file, locations: &locations)
            }
            return .object(object)
        case .alias:
            throw YAMLDocumentError(
                file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1,
                message: "YAML aliases are not supported here; write the value out")
        }
    }
}

/// Whether a plain scalar starting with this byte may resolve to a null (`~`, `null`), a boolean
/// (`true`, `false`) or a number (digits, signs, `.5`, `.inf`, `.nan`).
private func mayStartTypedScalar(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "~"),
        UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"), UInt8(ascii: "F"):
        return true
    default:
        return false
    }
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
