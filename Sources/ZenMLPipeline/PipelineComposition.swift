import Foundation
import ZenMLContract
import ZenMLCore

/// The pipeline that a pipeline file names in `base:`, as it was resolved.
public struct BasePipeline: Sendable {
    /// The base's own spec, already composed if it has a base itself.
    public var root: JSONValue
    /// The folder its relative `uses:` paths start from.
    public var directory: String
    /// The base file, when the base is a file: inherited values then point at its lines in errors.
    public var document: YAMLDocument?

    public init(root: JSONValue, directory: String, document: YAMLDocument? = nil) {
        self.root = root
        self.directory = directory
        self.document = document
    }
}

/// Finds a base pipeline that is not a file (a registered pipeline, `NAME` or `NAME@VERSION`);
/// returns `nil` if there is none by that reference.
public typealias BasePipelineResolver = @Sendable (_ reference: String) throws -> BasePipeline?

/// Copying a pipeline: a file with `base: REFERENCE` starts from that pipeline and changes only
/// what it writes under `steps:`.
///
/// - a step that the base has is patched: `uses`, `cache`, `timeout` and `retries` replace the
///   base's, while `config`, `inputs` and `resources` are merged key by key (a key set to `null`
///   is removed);
/// - a new step is added as written; a step set to `null` is removed;
/// - `name` and `description` come from the copy; relative paths of the base (`uses:` and
///   `format: path` config values, defaults included) are rewritten relative to the copy's
///   folder, so the copy can live anywhere and still reads the base's files.
///
/// The composed spec is what is registered and digested as the pipeline's version, so a copy
/// that changes nothing but its name shares every cached step with its base.
public enum PipelineComposition {
    static func compose(base: BasePipeline, copy: JSONValue, copyDirectory: String) -> JSONValue {
        var result = base.root.objectValue ?? [:]
        result.removeValue(forKey: "description")
        for (key, value) in copy.objectValue ?? [:] where key != "steps" { result[key] = value }
        var steps = (result["steps"]?.objectValue ?? [:]).mapValues { step -> JSONValue in
            guard var object = step.objectValue, let uses = object["uses"]?.stringValue else { return step }
            object["uses"] = .string(rebase(uses, from: base.directory, to: copyDirectory))
            // `format: path` config values (defaults included) are relative to the pipeline file
            // too: pin them to the base's files. A bundle that cannot be read is left for the
            // graph to report.
            if !uses.contains("@"), let manifest = try? BundleManifest.load(bundle: FileTree.absolute(uses, relativeTo: base.directory)) {
                var config = object["config"]?.objectValue ?? [:]
                for key in manifest.config.pathKeys {
                    guard let value = (config[key] ?? manifest.config.properties[key]?.defaultValue)?.stringValue,
                          !value.hasPrefix(pinPrefix)
                    else { continue }
                    config[key] = .string(value.hasPrefix("/") ? value : FileTree.relative(FileTree.absolute(value, relativeTo: base.directory), from: copyDirectory))
                }
                if !config.isEmpty { object["config"] = .object(config) }
            }
            return .object(object)
        }
        for (name, patch) in copy.objectValue?["steps"]?.objectValue ?? [:] {
            guard patch != .null else {
                steps.removeValue(forKey: name)
                continue
            }
            guard var step = steps[name]?.objectValue, let changes = patch.objectValue else {
                steps[name] = patch
                continue
            }
            for (key, value) in changes {
                if ["config", "inputs", "resources"].contains(key), let old = step[key]?.objectValue, let new = value.objectValue {
                    var merged = old
                    for (entry, entryValue) in new {
                        if entryValue == .null { merged.removeValue(forKey: entry) } else { merged[entry] = entryValue }
                    }
                    step[key] = .object(merged)
                } else {
                    step[key] = value
                }
            }
            steps[name] = .object(step)
        }
        result["steps"] = .object(steps)
        return .object(result)
    }

    /// How a pipeline pins a bundle or data file kept in the stores by digest (`sha256:…`).
    static let pinPrefix = "sha256:"

    /// A bundle path relative to one folder, made relative to another; references that are not
    /// paths (`NAME@VERSION`, `sha256:…`) are left alone.
    static func rebase(_ uses: String, from: String, to: String) -> String {
        guard !uses.contains("@"), !uses.hasPrefix("/"), !uses.hasPrefix(pinPrefix) else { return uses }
        return relativeUses(FileTree.absolute(uses, relativeTo: from), from: to)
    }

    /// A bundle folder's path as a `uses:` value in a pipeline file in `directory`: `./steps/x`, `../x`.
    public static func relativeUses(_ bundle: String, from directory: String) -> String {
        let relative = FileTree.relative(bundle, from: directory)
        return relative.hasPrefix(".") ? relative : "./" + relative
    }

    /// Whether a `base:` value names a file rather than a registered pipeline.
    static func isFileReference(_ reference: String) -> Bool {
        reference.hasSuffix(".yaml") || reference.hasSuffix(".yml") || reference.contains("/")
    }
}
