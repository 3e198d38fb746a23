import Foundation
import ZenMLCore

/// The one JSON object a step prints on its standard output.
/// `protocol/schemas/response.schema.json` is its schema.
public struct StepResponse: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable { case ok, error }

    public var status: Status
    /// Per output, properties recorded with its artifact (strings, numbers, booleans).
    public var outputs: [String: [String: JSONValue]]
    /// Numbers recorded with the execution, e.g. `accuracy`.
    public var metrics: [String: Double]
    public var message: String?

    public init(status: Status, outputs: [String: [String: JSONValue]] = [:], metrics: [String: Double] = [:], message: String? = nil) {
        self.status = status
        self.outputs = outputs
        self.metrics = metrics
        self.message = message
    }
}

/// Why a step's standard output is not a valid response.
public enum ResponseError: Error, Hashable, Sendable, CustomStringConvertible {
    case empty
    case notJSON(excerpt: String)
    case notOneObject(excerpt: String)
    case invalid(path: String, message: String)

    public var description: String {
        switch self {
        case .empty:
            return "the step printed nothing on stdout; it must print one JSON response such as {\"status\": \"ok\"} (logs go to stderr)"
        case .notJSON(let excerpt):
            return "the step's stdout is not JSON (it starts with \(excerpt)); print only the JSON response on stdout and log to stderr"
        case .notOneObject(let excerpt):
            return "the step's stdout must be exactly one JSON object, got \(excerpt); log to stderr, not stdout"
        case .invalid(let path, let message):
            return "the step's response is invalid at \(path): \(message)"
        }
    }
}

extension StepResponse {
    /// Parses and validates a step's standard output against the response schema and the
    /// step's declared outputs.
    public static func parse(stdout data: Data, declaredOutputs: Set<String>) throws(ResponseError) -> StepResponse {
        let text = String(decoding: data, as: UTF8.self)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .empty }
        let excerpt = "'" + String(trimmed.prefix(60)).replacingOccurrences(of: "\n", with: "\\n") + (trimmed.count > 60 ? "…'" : "'")
        guard trimmed.hasPrefix("{") else {
            if (try? JSONValue.parse(Data(trimmed.utf8))) != nil { throw .notOneObject(excerpt: excerpt) }
            throw .notJSON(excerpt: excerpt)
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Data(trimmed.utf8))
        } catch {
            throw .notOneObject(excerpt: excerpt)
        }
        guard let object = value.objectValue else { throw .notOneObject(excerpt: excerpt) }
        for key in object.keys.sorted() where !["status", "outputs", "metrics", "message"].contains(key) {
            throw .invalid(path: key, message: "unknown key (allowed: status, outputs, metrics, message)")
        }
        guard let statusText = object["status"]?.stringValue else {
            throw .invalid(path: "status", message: "'status' is required and must be \"ok\" or \"error\"")
        }
        guard let status = Status(rawValue: statusText) else {
            throw .invalid(path: "status", message: "'\(statusText)' is not a status; use \"ok\" or \"error\"")
        }
        var response = StepResponse(status: status)
        if let message = object["message"] {
            guard let text = message.stringValue else { throw .invalid(path: "message", message: "must be a string") }
            response.message = text
        }
        if let outputs = object["outputs"] {
            guard let outputMap = outputs.objectValue else {
                throw .invalid(path: "outputs", message: "must be an object of output names to {\"properties\": {...}}")
            }
            for (name, entry) in outputMap {
                guard declaredOutputs.contains(name) else {
                    throw .invalid(path: "outputs.\(name)", message: "'\(name)' is not a declared output (declared: \(declaredOutputs.sorted().joined(separator: ", ")))")
                }
                guard let fields = entry.objectValue else {
                    throw .invalid(path: "outputs.\(name)", message: "must be an object with 'properties'")
                }
                for key in fields.keys where key != "properties" {
                    throw .invalid(path: "outputs.\(name).\(key)", message: "unknown key (allowed: properties)")
                }
                var properties: [String: JSONValue] = [:]
                if let raw = fields["properties"] {
                    guard let rawProperties = raw.objectValue else {
                        throw .invalid(path: "outputs.\(name).properties", message: "must be an object")
                    }
                    for (key, value) in rawProperties {
                        switch value {
                        case .string, .int, .double, .bool: properties[key] = value
                        default:
                            throw .invalid(path: "outputs.\(name).properties.\(key)", message: "must be a string, number or boolean, not \(value.typeName)")
                        }
                    }
                }
                response.outputs[name] = properties
            }
        }
        if let metrics = object["metrics"] {
            guard let metricMap = metrics.objectValue else { throw .invalid(path: "metrics", message: "must be an object of names to numbers") }
            for (name, value) in metricMap {
                guard let number = value.doubleValue else {
                    throw .invalid(path: "metrics.\(name)", message: "must be a number, not \(value.typeName)")
                }
                response.metrics[name] = number
            }
        }
        return response
    }
}
