import Foundation
import ZenMLCore

/// The one JSON document the host writes to a step's standard input.
/// `protocol/schemas/request.schema.json` is its schema.
public struct StepRequest: Codable, Sendable, Hashable {
    public var contract: Int
    public var pipeline: PipelineIdentity
    public var run: RunIdentity
    public var step: StepIdentity
    /// The config after defaults were applied; `format: path` values are absolute paths.
    public var config: [String: JSONValue]
    /// For each declared input, its artifacts (one, or several for `multiple` inputs; none for an unwired optional one).
    public var inputs: [String: [InputArtifact]]
    /// For each declared output, an absolute, empty directory to write into.
    public var outputs: [String: OutputDirectory]
    /// A private directory the step may use freely; it is deleted afterwards. Also the working directory.
    public var scratch: String
    /// A number derived from the cache key, for steps that need randomness: same key, same seed.
    public var seed: UInt64

    public init(
        pipeline: PipelineIdentity, run: RunIdentity, step: StepIdentity, config: [String: JSONValue],
        inputs: [String: [InputArtifact]], outputs: [String: OutputDirectory], scratch: String, seed: UInt64
    ) {
        self.contract = contractVersion
        self.pipeline = pipeline
        self.run = run
        self.step = step
        self.config = config
        self.inputs = inputs
        self.outputs = outputs
        self.scratch = scratch
        self.seed = seed
    }

    public struct PipelineIdentity: Codable, Sendable, Hashable {
        public var name: String
        public var version: String
        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }
    }

    public struct RunIdentity: Codable, Sendable, Hashable {
        public var id: String
        public init(id: String) { self.id = id }
    }

    public struct StepIdentity: Codable, Sendable, Hashable {
        public var name: String
        public var bundle: String
        public var bundleVersion: String
        public var bundleDigest: String
        public var cacheKey: String

        public init(name: String, bundle: String, bundleVersion: String, bundleDigest: String, cacheKey: String) {
            self.name = name
            self.bundle = bundle
            self.bundleVersion = bundleVersion
            self.bundleDigest = bundleDigest
            self.cacheKey = cacheKey
        }

        enum CodingKeys: String, CodingKey {
            case name, bundle
            case bundleVersion = "bundle_version"
            case bundleDigest = "bundle_digest"
            case cacheKey = "cache_key"
        }
    }

    public struct InputArtifact: Codable, Sendable, Hashable {
        /// Absolute path of the artifact's directory (read-only).
        public var path: String
        public var type: String
        public var digest: String
        public var properties: [String: JSONValue]

        public init(path: String, type: String, digest: String, properties: [String: JSONValue]) {
            self.path = path
            self.type = type
            self.digest = digest
            self.properties = properties
        }
    }

    public struct OutputDirectory: Codable, Sendable, Hashable {
        public var path: String
        public var type: String
        public init(path: String, type: String) {
            self.path = path
            self.type = type
        }
    }
}
