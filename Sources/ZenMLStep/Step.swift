import Foundation
@_exported import ZenMLTFRecord

/// The Swift step SDK: a step is a function from a ``StepContext`` to a ``StepResult``.
///
/// ```swift
/// import ZenMLStep
///
/// @main struct Count {
///     static func main() {
///         Step.run { step in
///             var records = 0
///             for _ in try step.examples(from: "examples") { records += 1 }
///             try "\(records)\n".write(toFile: step.outputPath("summary") + "/count.txt", atomically: false, encoding: .utf8)
///             return StepResult(outputs: ["summary": ["records": .int(records)]], metrics: ["records": Double(records)])
///         }
///     }
/// }
/// ```
///
/// `Step.run` reads the request from standard input, refuses an unknown contract version, and
/// prints exactly one response on standard output; logs go to standard error (``StepContext/log(_:)``).
/// A thrown error becomes an `error` response and exit code 1.
public enum Step {
    /// The contract version this SDK speaks.
    public static let contractVersion = 1

    /// Runs a step body under the contract and exits the process.
    public static func run(_ body: (StepContext) throws -> StepResult) -> Never {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let request: StepRequest
        do {
            request = try StepRequest.decode(input)
        } catch let error as StepSDKError {
            standardError("error: \(error)")
            exit(2)
        } catch {
            standardError("error: the request on stdin is not valid JSON for contract version \(contractVersion): \(error)")
            exit(2)
        }
        do {
            let result = try body(StepContext(request: request))
            write(StepResponse(status: "ok", outputs: result.outputs.mapValues { .init(properties: $0) }, metrics: result.metrics, message: result.message))
            exit(0)
        } catch {
            standardError("error: \(error)")
            write(StepResponse(status: "error", outputs: [:], metrics: [:], message: "\(error)"))
            exit(1)
        }
    }

    static func write(_ response: StepResponse) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain dictionaries of numbers and strings cannot fail; an empty object keeps stdout valid if it did.
        let data = (try? encoder.encode(response)) ?? Data("{\"status\":\"error\"}".utf8)
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func standardError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// What a step returns: per-output properties, metrics and an optional message.
public struct StepResult: Sendable {
    public var outputs: [String: [String: PropertyValue]]
    public var metrics: [String: Double]
    public var message: String?

    public init(outputs: [String: [String: PropertyValue]] = [:], metrics: [String: Double] = [:], message: String? = nil) {
        self.outputs = outputs
        self.metrics = metrics
        self.message = message
    }
}

/// A property value recorded with an output artifact.
public enum PropertyValue: Sendable, Equatable, Encodable {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        }
    }
}

/// A mistake in using the SDK or a request it cannot serve, in words a step author can act on.
public struct StepSDKError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The request and helpers to read inputs and write outputs.
public struct StepContext: Sendable {
    public let request: StepRequest

    /// A config value (defaults already applied by the host).
    public func config(_ key: String) -> ConfigValue? { request.config[key] }

    /// A config value that must be there, as a number.
    public func number(_ key: String) throws -> Double {
        guard let value = request.config[key]?.doubleValue else { throw StepSDKError("config key '\(key)' is missing or not a number") }
        return value
    }

    /// A config value that must be there, as a string.
    public func string(_ key: String) throws -> String {
        guard let value = request.config[key]?.stringValue else { throw StepSDKError("config key '\(key)' is missing or not a string") }
        return value
    }

    /// The artifacts of an input (one, or several for `multiple` inputs).
    public func inputs(_ name: String) throws -> [StepRequest.Artifact] {
        guard let artifacts = request.inputs[name] else {
            throw StepSDKError("no input '\(name)' in the request (inputs: \(request.inputs.keys.sorted().joined(separator: ", ")))")
        }
        return artifacts
    }

    /// The folder of the single artifact of an input.
    public func inputPath(_ name: String) throws -> String {
        let artifacts = try inputs(name)
        guard artifacts.count == 1, let artifact = artifacts.first else {
            throw StepSDKError("input '\(name)' has \(artifacts.count) artifacts; use inputs(\"\(name)\")")
        }
        return artifact.path
    }

    /// The empty folder to write an output into.
    public func outputPath(_ name: String) throws -> String {
        guard let output = request.outputs[name] else {
            throw StepSDKError("no output '\(name)' in the request (outputs: \(request.outputs.keys.sorted().joined(separator: ", ")))")
        }
        return output.path
    }

    /// Every tf.train.Example of an input, reading all shards of all its artifacts in order.
    public func examples(from input: String) throws -> ExampleSequence {
        ExampleSequence(directories: try inputs(input).map(\.path))
    }

    /// A writer of tf.train.Examples into an output, as `data-00000-of-00001.tfrecord[.gz]`.
    public func exampleWriter(output: String, compression: TFRecordCompression = .none) throws -> TFRecordWriter {
        let name = ShardedTFRecord.shardFileName(index: 0, count: 1, compression: compression)
        return try TFRecordWriter(path: try outputPath(output) + "/" + name, options: .init(compression: compression))
    }

    /// Writes a line to standard error, the step's log.
    public func log(_ message: String) {
        Step.standardError(message)
    }
}

/// The Examples of one or more sharded artifact folders, in order; reading errors are thrown.
public struct ExampleSequence: Sequence {
    let directories: [String]

    public func makeIterator() -> Iterator { Iterator(directories: directories) }

    /// Iterates without throwing from `next()`: a read error stops the iteration and is kept in
    /// ``error`` (use ``collect()`` to get errors thrown).
    public struct Iterator: IteratorProtocol {
        var directories: [String]
        var reader: ShardedTFRecordReader?
        public private(set) var error: Error?

        init(directories: [String]) { self.directories = directories }

        public mutating func next() -> Example? {
            do { return try nextExample() } catch {
                self.error = error
                return nil
            }
        }

        mutating func nextExample() throws -> Example? {
            while true {
                if let reader, let example = try reader.nextExample() { return example }
                guard !directories.isEmpty else { return nil }
                reader = try ShardedTFRecord(directory: directories.removeFirst()).makeReader()
            }
        }
    }

    /// All Examples, with any reading error thrown.
    public func collect() throws -> [Example] {
        var iterator = makeIterator()
        var all: [Example] = []
        while let example = try iterator.nextExample() { all.append(example) }
        return all
    }

    /// Calls `body` with each Example; a reading error is thrown.
    public func forEach(_ body: (Example) throws -> Void) throws {
        var iterator = makeIterator()
        while let example = try iterator.nextExample() { try body(example) }
    }
}
