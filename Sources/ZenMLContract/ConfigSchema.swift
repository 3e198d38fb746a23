import Foundation
import ZenMLCore

/// The schema of a step's config: a small, documented subset of JSON Schema (draft 2020-12)
/// that every step language can read.
///
/// Supported keywords, per property: `type` (`string`, `integer`, `number`, `boolean`, `array`,
/// `object`), `description`, `default`, `enum`, `minimum`, `maximum`, `exclusiveMinimum`,
/// `exclusiveMaximum`, `minLength`, `maxLength`, `minItems`, `maxItems`, `items`, and
/// `format: path`, which marks a string as the path of a file or folder outside the store whose
/// *content* enters the step's cache key. At the top level: `properties`, `required` and
/// `additionalProperties` (default `false`, so a misspelt key is an error, not a silent default).
public struct ConfigSchema: Sendable, Hashable {
    public var properties: [String: PropertySchema]
    public var required: [String]
    public var additionalProperties: Bool

    public init(properties: [String: PropertySchema] = [:], required: [String] = [], additionalProperties: Bool = false) {
        self.properties = properties
        self.required = required
        self.additionalProperties = additionalProperties
    }

    /// The keys whose values name external files or folders (`format: path`).
    public var pathKeys: [String] {
        properties.filter { $0.value.format == "path" }.map(\.key).sorted()
    }

    /// Applies defaults and checks a config; returns the resolved config or every problem found.
    public func resolve(_ config: [String: JSONValue]) -> Result<[String: JSONValue], ConfigIssues> {
        var issues: [ConfigIssue] = []
        var resolved = config
        for key in config.keys.sorted() where properties[key] == nil && !additionalProperties {
            let known = properties.keys.sorted()
            let hint = known.isEmpty
                ? "this step takes no config"
                : "known keys: \(known.joined(separator: ", "))"
            issues.append(ConfigIssue(path: [key], message: "unknown config key '\(key)' (\(hint))"))
        }
        for (key, property) in properties.sorted(by: { $0.key < $1.key }) {
            if let value = config[key] {
                property.check(value, path: [key], issues: &issues)
            } else if let fallback = property.defaultValue {
                resolved[key] = fallback
            } else if required.contains(key) {
                issues.append(ConfigIssue(path: [key], message: "required config key '\(key)' is missing"))
            }
        }
        return issues.isEmpty ? .success(resolved) : .failure(ConfigIssues(issues: issues))
    }
}

/// One problem with a config value.
public struct ConfigIssue: Hashable, Sendable, CustomStringConvertible {
    /// The key path inside the config, e.g. `["layers", "0"]`.
    public var path: [String]
    public var message: String
    public var description: String { message }
}

/// Every problem found in one config.
public struct ConfigIssues: Error, Hashable, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public var description: String { issues.map(\.message).joined(separator: "; ") }
}

/// The schema of one config value.
public struct PropertySchema: Sendable, Hashable {
    public enum ValueType: String, Sendable, Hashable, CaseIterable {
        case string, integer, number, boolean, array, object
    }

    public var type: ValueType?
    public var description: String?
    public var defaultValue: JSONValue?
    public var allowedValues: [JSONValue]?
    public var minimum: Double?
    public var maximum: Double?
    public var exclusiveMinimum: Double?
    public var exclusiveMaximum: Double?
    public var minLength: Int?
    public var maxLength: Int?
    public var minItems: Int?
    public var maxItems: Int?
    public var format: String?
    private var itemsBox: [PropertySchema]

    /// The schema of an array's elements.
    public var items: PropertySchema? {
        get { itemsBox.first }
        set { itemsBox = newValue.map { [$0] } ?? [] }
    }

    public init(type: ValueType? = nil, defaultValue: JSONValue? = nil, format: String? = nil) {
        self.type = type
        self.defaultValue = defaultValue
        self.format = format
        self.itemsBox = []
    }

    func check(_ value: JSONValue, path: [String], issues: inout [ConfigIssue]) {
        let name = path.joined(separator: ".")
        if let type, !Self.matches(value, type) {
            issues.append(ConfigIssue(path: path, message: "config key '\(name)' must be \(type.article), not \(value.typeName) \(CanonicalJSON.encode(value))"))
            return
        }
        if let allowedValues, !allowedValues.contains(where: { Self.equal($0, value) }) {
            let choices = allowedValues.map { CanonicalJSON.encode($0) }.joined(separator: ", ")
            issues.append(ConfigIssue(path: path, message: "config key '\(name)' is \(CanonicalJSON.encode(value)); it must be one of \(choices)"))
        }
        if let number = value.doubleValue {
            if let minimum, number < minimum {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' is \(CanonicalJSON.encode(value)); it must be at least \(CanonicalJSON.format(minimum))"))
            }
            if let maximum, number > maximum {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' is \(CanonicalJSON.encode(value)); it must be at most \(CanonicalJSON.format(maximum))"))
            }
            if let exclusiveMinimum, number <= exclusiveMinimum {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' is \(CanonicalJSON.encode(value)); it must be greater than \(CanonicalJSON.format(exclusiveMinimum))"))
            }
            if let exclusiveMaximum, number >= exclusiveMaximum {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' is \(CanonicalJSON.encode(value)); it must be less than \(CanonicalJSON.format(exclusiveMaximum))"))
            }
        }
        if let string = value.stringValue {
            if let minLength, string.count < minLength {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' must have at least \(minLength) characters"))
            }
            if let maxLength, string.count > maxLength {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' must have at most \(maxLength) characters"))
            }
        }
        if let array = value.arrayValue {
            if let minItems, array.count < minItems {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' must have at least \(minItems) items"))
            }
            if let maxItems, array.count > maxItems {
                issues.append(ConfigIssue(path: path, message: "config key '\(name)' must have at most \(maxItems) items"))
            }
            if let items {
                for (index, element) in array.enumerated() {
                    items.check(element, path: path + [String(index)], issues: &issues)
                }
            }
        }
    }

    static func matches(_ value: JSONValue, _ type: ValueType) -> Bool {
        switch (type, value) {
        case (.string, .string), (.boolean, .bool), (.array, .array), (.object, .object): return true
        case (.number, .int), (.number, .double), (.integer, .int): return true
        case (.integer, .double(let number)): return number.rounded() == number
        default: return false
        }
    }

    static func equal(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        CanonicalJSON.encode(lhs) == CanonicalJSON.encode(rhs)
    }
}

extension PropertySchema.ValueType {
    var article: String {
        switch self {
        case .integer, .array, .object: return "an \(rawValue)"
        default: return "a \(rawValue)"
        }
    }
}

// MARK: - Reading schemas

extension ConfigSchema {
    /// Reads a schema from its JSON form. Errors carry the key path of the offending keyword.
    public init(json: JSONValue, path: [String] = []) throws(SchemaError) {
        guard let object = json.objectValue else {
            throw SchemaError(path: path, message: "the config schema must be a mapping with 'properties'")
        }
        let known: Set<String> = ["type", "properties", "required", "additionalProperties", "description", "$schema", "title"]
        for key in object.keys.sorted() where !known.contains(key) {
            throw SchemaError(path: path + [key], message: "unsupported keyword '\(key)' in the config schema (supported: \(known.sorted().joined(separator: ", ")))")
        }
        if let type = object["type"], type != .string("object") {
            throw SchemaError(path: path + ["type"], message: "the config schema's type must be 'object'")
        }
        var properties: [String: PropertySchema] = [:]
        if let raw = object["properties"] {
            guard let rawProperties = raw.objectValue else {
                throw SchemaError(path: path + ["properties"], message: "'properties' must be a mapping of key names to schemas")
            }
            for (key, value) in rawProperties {
                guard BundleManifest.isValidName(key) else {
                    throw SchemaError(path: path + ["properties", key], message: "'\(key)' is not a valid config key (a letter, then letters, digits, '_' or '-')")
                }
                properties[key] = try PropertySchema(json: value, path: path + ["properties", key])
            }
        }
        var required: [String] = []
        if let raw = object["required"] {
            guard let names = raw.arrayValue?.compactMap(\.stringValue), names.count == raw.arrayValue?.count else {
                throw SchemaError(path: path + ["required"], message: "'required' must be a list of key names")
            }
            for name in names where properties[name] == nil {
                throw SchemaError(path: path + ["required"], message: "'\(name)' is required but not listed in 'properties'")
            }
            required = names
        }
        var additional = false
        if let raw = object["additionalProperties"] {
            guard let flag = raw.boolValue else {
                throw SchemaError(path: path + ["additionalProperties"], message: "'additionalProperties' must be true or false")
            }
            additional = flag
        }
        self.init(properties: properties, required: required, additionalProperties: additional)
        for (key, property) in properties {
            if let fallback = property.defaultValue {
                var issues: [ConfigIssue] = []
                property.check(fallback, path: [key], issues: &issues)
                if let issue = issues.first {
                    throw SchemaError(path: path + ["properties", key, "default"], message: "the default does not fit its own schema: \(issue.message)")
                }
            }
        }
    }

    /// The schema in its JSON form (as written in a manifest).
    public var json: JSONValue {
        var object: [String: JSONValue] = ["type": "object"]
        object["properties"] = .object(properties.mapValues(\.json))
        if !required.isEmpty { object["required"] = .array(required.map { .string($0) }) }
        object["additionalProperties"] = .bool(additionalProperties)
        return .object(object)
    }
}

extension PropertySchema {
    init(json: JSONValue, path: [String]) throws(SchemaError) {
        guard let object = json.objectValue else {
            throw SchemaError(path: path, message: "a property schema must be a mapping such as {type: number, default: 0.5}")
        }
        self.init()
        for (key, value) in object {
            func number() throws(SchemaError) -> Double {
                guard let number = value.doubleValue else {
                    throw SchemaError(path: path + [key], message: "'\(key)' must be a number")
                }
                return number
            }
            func count() throws(SchemaError) -> Int {
                guard let number = value.intValue, number >= 0 else {
                    throw SchemaError(path: path + [key], message: "'\(key)' must be a non-negative integer")
                }
                return Int(number)
            }
            switch key {
            case "type":
                guard let name = value.stringValue, let type = ValueType(rawValue: name) else {
                    let names = ValueType.allCases.map(\.rawValue).joined(separator: ", ")
                    throw SchemaError(path: path + [key], message: "'type' must be one of \(names)")
                }
                self.type = type
            case "description":
                guard let text = value.stringValue else {
                    throw SchemaError(path: path + [key], message: "'description' must be a string")
                }
                description = text
            case "title":
                guard value.stringValue != nil else {
                    throw SchemaError(path: path + [key], message: "'title' must be a string")
                }
            case "default": defaultValue = value
            case "enum":
                guard let values = value.arrayValue, !values.isEmpty else {
                    throw SchemaError(path: path + [key], message: "'enum' must be a non-empty list of allowed values")
                }
                allowedValues = values
            case "minimum": minimum = try number()
            case "maximum": maximum = try number()
            case "exclusiveMinimum": exclusiveMinimum = try number()
            case "exclusiveMaximum": exclusiveMaximum = try number()
            case "minLength": minLength = try count()
            case "maxLength": maxLength = try count()
            case "minItems": minItems = try count()
            case "maxItems": maxItems = try count()
            case "format":
                guard let name = value.stringValue, name == "path" else {
                    throw SchemaError(path: path + [key], message: "the only supported 'format' is 'path' (a file or folder whose content enters the cache key)")
                }
                format = name
            case "items":
                let element = try PropertySchema(json: value, path: path + [key])
                if element.format == "path" {
                    throw SchemaError(path: path + [key, "format"], message: "'format: path' is supported on top-level config keys only; declare one key per external path")
                }
                items = element
            default:
                throw SchemaError(path: path + [key], message: "unsupported keyword '\(key)' in a property schema")
            }
        }
        if format == "path" && type != nil && type != .string {
            throw SchemaError(path: path + ["format"], message: "'format: path' needs 'type: string'")
        }
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [:]
        if let type { object["type"] = .string(type.rawValue) }
        if let description { object["description"] = .string(description) }
        if let defaultValue { object["default"] = defaultValue }
        if let allowedValues { object["enum"] = .array(allowedValues) }
        if let minimum { object["minimum"] = .double(minimum) }
        if let maximum { object["maximum"] = .double(maximum) }
        if let exclusiveMinimum { object["exclusiveMinimum"] = .double(exclusiveMinimum) }
        if let exclusiveMaximum { object["exclusiveMaximum"] = .double(exclusiveMaximum) }
        if let minLength { object["minLength"] = .int(Int64(minLength)) }
        if let maxLength { object["maxLength"] = .int(Int64(maxLength)) }
        if let minItems { object["minItems"] = .int(Int64(minItems)) }
        if let maxItems { object["maxItems"] = .int(Int64(maxItems)) }
        if let format { object["format"] = .string(format) }
        if let items { object["items"] = items.json }
        return .object(object)
    }
}

/// A schema that cannot be used, with the key path of the keyword at fault.
public struct SchemaError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: [String]
    public var message: String
    public var description: String { message }
}
