import Foundation

/// The request a step reads from standard input (contract version 1). This SDK keeps its own
/// small copy of the types so that a Swift step builds in seconds, with no dependency beyond
/// the TFRecord library.
public struct StepRequest: Decodable, Sendable {
    public var contract: Int
    public var pipeline: Pipeline
    public var run: Run
    public var step: Step
    public var config: [String: ConfigValue]
    public var inputs: [String: [Artifact]]
    public var outputs: [String: Output]
    public var scratch: String
    public var seed: UInt64

    public struct Pipeline: Decodable, Sendable { public var name: String; public var version: String }
    public struct Run: Decodable, Sendable { public var id: String }
    public struct Step: Decodable, Sendable {
        public var name: String
        public var bundle: String
        public var bundleVersion: String
        public var bundleDigest: String
        public var cacheKey: String
        enum CodingKeys: String, CodingKey {
            case name, bundle
            case bundleVersion = "bundle_version"
            case bundleDigest = "bundle_digest"
            case cacheKey = "cache_key"
        }
    }
    public struct Artifact: Decodable, Sendable {
        public var path: String
        public var type: String
        public var digest: String
        public var properties: [String: ConfigValue]
    }
    public struct Output: Decodable, Sendable {
        public var path: String
        public var type: String
    }

    /// Decodes a request, refusing contract versions other than 1 before anything else.
    public static func decode(_ data: Data) throws -> StepRequest {
        struct Header: Decodable { var contract: Int? }
        let header = try? JSONDecoder().decode(Header.self, from: data)
        guard let version = header?.contract else {
            throw StepSDKError("the request has no integer 'contract' field; is this step started by zenml-run?")
        }
        guard version == ZenMLStep.Step.contractVersion else {
            throw StepSDKError("this step speaks contract version \(ZenMLStep.Step.contractVersion), the host sent version \(version); update the step's SDK")
        }
        return try JSONDecoder().decode(StepRequest.self, from: data)
    }
}

/// A JSON value in a config or a property.
public enum ConfigValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([ConfigValue])
    case object([String: ConfigValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([ConfigValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: ConfigValue].self)) }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value: return Int64(exactly: value)
        default: return nil
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [ConfigValue]? {
        if case .array(let value) = self { return value }
        return nil
    }
}

struct StepResponse: Encodable {
    struct OutputProperties: Encodable { var properties: [String: PropertyValue] }
    var status: String
    var outputs: [String: OutputProperties]
    var metrics: [String: Double]
    var message: String?
}
