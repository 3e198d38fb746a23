import Foundation
import ZenMLCache
import ZenMLContract
import ZenMLCore
import ZenMLMetadata
import ZenMLPipeline

/// Why a step cannot even be keyed (for example a `format: path` file that does not exist).
public struct FingerprintError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The cache key of a step and the config it will receive.
struct StepFingerprint: Sendable {
    var ingredients: KeyIngredients
    /// The config as the step receives it: `format: path` values made absolute.
    var requestConfig: [String: JSONValue]
    /// The cache key, hashed once: a wave looks it up, records it and reports it.
    let key: Digest

    /// Computes what enters a step's cache key.
    static func compute(
        step: ResolvedStep, pipelineDirectory: String, inputs: [String: [ArtifactRecord]],
        fingerprinter: Fingerprinter, hostEnvironment: [String: String]
    ) throws -> StepFingerprint {
        let bundle: Fingerprinter.BundleFingerprint
        do {
            bundle = try fingerprinter.bundle(at: step.bundlePath)
        } catch {
            throw FingerprintError(message: "cannot hash the bundle of step '\(step.name)' at \(step.bundlePath): \(error)")
        }
        var keyConfig = step.config
        var requestConfig = step.config
        var externalPaths: [String: String] = [:]
        for key in step.manifest.config.pathKeys {
            guard let value = step.config[key]?.stringValue else { continue }
            let absolute = FileTree.absolute(value, relativeTo: pipelineDirectory)
            do {
                let digest = try fingerprinter.content(at: absolute)
                keyConfig[key] = .string(digest.description)
            } catch FileSystemError.notFound {
                throw FingerprintError(message: "config key '\(key)' of step '\(step.name)' names \(absolute), which does not exist; fix the path (relative paths are read from the pipeline file's folder)")
            } catch {
                throw FingerprintError(message: "cannot read \(absolute) (config key '\(key)' of step '\(step.name)'): \(error)")
            }
            requestConfig[key] = .string(absolute)
            externalPaths[key] = absolute
        }
        var environment: [String: Digest] = [:]
        for name in step.manifest.env {
            if let value = hostEnvironment[name] { environment[name] = Digest.of(value) }
        }
        let action = StepAction(
            bundleDigest: bundle.digest, entrypoint: step.manifest.entrypoint, args: step.manifest.args, config: keyConfig,
            inputs: inputs.mapValues { $0.map(\.digest) }, environment: environment)
        return StepFingerprint(
            ingredients: KeyIngredients(action: action, bundleFiles: bundle.files, externalPaths: externalPaths, bundleSource: step.source),
            requestConfig: requestConfig, key: action.key)
    }
}
