import Foundation
import ZenMLBundles
import ZenMLContract
import ZenMLCore

/// Everything that can change what a step produces, in the form that is hashed into its cache key.
///
/// Like a Bazel remote-execution `Action`, it holds digests and small values only. The key is the
/// SHA-256 of its canonical JSON (see `protocol/SPEC.md`, "Cache key"):
/// `{"contract":1,"bundle":"sha256:…","entrypoint":"…","args":[…],"config":{…},
///   "inputs":{"name":["sha256:…",…]},"env":{"NAME":"sha256:<digest of the value>"}}`
/// where `format: path` config values are replaced by the digest of the content they name.
/// Environment values enter as digests so that a secret never lands in the metadata store.
public struct StepAction: Sendable, Hashable {
    public var bundleDigest: Digest
    public var entrypoint: String
    public var args: [String]
    /// The resolved config, `format: path` values replaced by content digests.
    public var config: [String: JSONValue]
    /// For each declared input, the digests of its artifacts in order.
    public var inputs: [String: [Digest]]
    /// Declared environment variables and the digests of their values (absent variables are omitted).
    public var environment: [String: Digest]

    public init(bundleDigest: Digest, entrypoint: String, args: [String], config: [String: JSONValue], inputs: [String: [Digest]], environment: [String: Digest]) {
        self.bundleDigest = bundleDigest
        self.entrypoint = entrypoint
        self.args = args
        self.config = config
        self.inputs = inputs
        self.environment = environment
    }

    /// The canonical form that is hashed.
    public var canonicalForm: JSONValue {
        .object([
            "contract": .int(Int64(contractVersion)),
            "bundle": .string(bundleDigest.description),
            "entrypoint": .string(entrypoint),
            "args": .array(args.map { .string($0) }),
            "config": .object(config),
            "inputs": .object(inputs.mapValues { .array($0.map { .string($0.description) }) }),
            "env": .object(environment.mapValues { .string($0.description) }),
        ])
    }

    /// The cache key.
    public var key: Digest { Digest.of(canonical: canonicalForm) }

    /// A seed for the step's randomness, derived from the key: 52 bits, so that it is exact as a
    /// JSON number in every language (JavaScript and JSON parsers that use doubles included).
    public static func seed(for key: Digest) -> UInt64 {
        UInt64(key.hex.prefix(13), radix: 16) ?? 0
    }
}

/// The ingredients of a cache key plus what is needed to explain a later miss: the bundle's files.
public struct KeyIngredients: Sendable, Hashable {
    public var action: StepAction
    /// The bundle's files and their digests (with `+x` appended for executable files).
    public var bundleFiles: [String: String]
    /// For `format: path` config keys, the path that was hashed.
    public var externalPaths: [String: String]
    /// Where a registry bundle came from (recorded, not part of the key: the digest is).
    public var bundleSource: String?

    public init(action: StepAction, bundleFiles: [String: String], externalPaths: [String: String], bundleSource: String? = nil) {
        self.action = action
        self.bundleFiles = bundleFiles
        self.externalPaths = externalPaths
        self.bundleSource = bundleSource
    }

    /// The form stored with each execution.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "key": action.canonicalForm,
            "bundle_files": .object(bundleFiles.mapValues { .string($0) }),
            "external_paths": .object(externalPaths.mapValues { .string($0) }),
        ]
        if let bundleSource { object["bundle_source"] = .string(bundleSource) }
        return .object(object)
    }

    /// What changed between a stored execution's ingredients and these, in words, most telling first.
    /// An empty list means nothing that enters the key changed.
    public func changes(since previous: JSONValue) -> [String] {
        Self.changes(from: previous, to: json)
    }

    /// What changed between two stored executions' ingredients (``json``), in words.
    public static func changes(from previous: JSONValue, to current: JSONValue) -> [String] {
        guard let old = previous["key"]?.objectValue, let new = current["key"]?.objectValue else {
            return ["no record of what the previous execution was keyed on"]
        }
        let bundleFiles = (current["bundle_files"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        let externalPaths = (current["external_paths"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        var changes: [String] = []
        if old["contract"] != new["contract"] { changes.append("contract version changed") }
        if old["bundle"] != new["bundle"] {
            let oldFiles = previous["bundle_files"]?.objectValue ?? [:]
            let newFiles = bundleFiles
            var fileChanges: [String] = []
            for path in Set(oldFiles.keys).union(newFiles.keys).sorted() {
                let before = oldFiles[path]?.stringValue
                let after = newFiles[path]
                if before == nil { fileChanges.append("bundle file \(path) added") }
                else if after == nil { fileChanges.append("bundle file \(path) removed") }
                else if before != after {
                    let modeOnly = before?.replacingOccurrences(of: "+x", with: "") == after?.replacingOccurrences(of: "+x", with: "")
                    fileChanges.append(modeOnly ? "bundle file \(path) changed mode" : "bundle file \(path) changed")
                }
            }
            if fileChanges.count > 4 {
                // Another bundle altogether: a count says more than a list of every file.
                changes.append("bundle changed: \(fileChanges.count) files differ (\(fileChanges.prefix(3).map { $0.replacingOccurrences(of: "bundle file ", with: "") }.joined(separator: ", ")), ...)")
            } else {
                changes.append(contentsOf: fileChanges.isEmpty ? ["bundle changed"] : fileChanges)
            }
        }
        if old["entrypoint"] != new["entrypoint"] || old["args"] != new["args"] { changes.append("entrypoint or args changed") }
        let oldConfig = old["config"]?.objectValue ?? [:]
        let newConfig = new["config"]?.objectValue ?? [:]
        for key in Set(oldConfig.keys).union(newConfig.keys).sorted() where oldConfig[key] != newConfig[key] {
            if let path = externalPaths[key] {
                changes.append("config key \(key): content of \(path) changed")
            } else {
                let before = oldConfig[key].map { CanonicalJSON.encode($0) } ?? "(unset)"
                let after = newConfig[key].map { CanonicalJSON.encode($0) } ?? "(unset)"
                changes.append("config key \(key): \(before) -> \(after)")
            }
        }
        let oldInputs = old["inputs"]?.objectValue ?? [:]
        let newInputs = new["inputs"]?.objectValue ?? [:]
        for name in Set(oldInputs.keys).union(newInputs.keys).sorted() where oldInputs[name] != newInputs[name] {
            changes.append("input \(name) changed")
        }
        let oldEnv = old["env"]?.objectValue ?? [:]
        let newEnv = new["env"]?.objectValue ?? [:]
        for name in Set(oldEnv.keys).union(newEnv.keys).sorted() where oldEnv[name] != newEnv[name] {
            changes.append("environment variable \(name) changed")
        }
        return changes
    }
}

/// Computes bundle digests and external data digests, remembering file digests in a ``StatCache``.
public final class Fingerprinter: @unchecked Sendable {
    /// Names never hashed in a bundle: interpreter caches and version-control folders, which
    /// change without the step changing.
    public static var excludedBundleNames: Set<String> { BundleArchive.excludedNames }

    public struct BundleFingerprint: Sendable {
        /// The SHA-256 of the bundle's deterministic archive (``BundleArchive``).
        public var digest: Digest
        public var files: [String: String]
    }

    private let statCache: StatCache
    private let digester: BundleDigester
    private var bundles: [String: BundleFingerprint] = [:]
    private let lock = NSLock()

    /// Archive digests are remembered beside the stat cache's file (`bundle-digests.json`).
    public init(statCache: StatCache) {
        self.statCache = statCache
        let memo = statCache.file.map { ($0 as NSString).deletingLastPathComponent + "/bundle-digests.json" }
        self.digester = BundleDigester(hasher: statCache, memoFile: memo)
    }

    /// The digest of a bundle folder: the SHA-256 of its archive, computed without writing it
    /// (see ``BundleDigester``). Memoised per path.
    public func bundle(at path: String) throws -> BundleFingerprint {
        if let known = lock.withLock({ bundles[path] }) { return known }
        let (digest, entries) = try digester.digest(of: path)
        var files: [String: String] = [:]
        for entry in entries {
            switch entry.kind {
            case .file: files[entry.path] = (entry.digest?.description ?? "") + (entry.executable ? "+x" : "")
            case .symlink: files[entry.path] = "-> " + (entry.target ?? "")
            case .directory: break
            }
        }
        let fingerprint = BundleFingerprint(digest: digest, files: files)
        lock.withLock { bundles[path] = fingerprint }
        return fingerprint
    }

    /// The digest of the content a `format: path` config value names: a file's bytes or a folder's tree digest.
    public func content(at path: String) throws -> Digest {
        guard let status = try FileStatus.of(path, followingLinks: true) else { throw FileSystemError.notFound(path: path) }
        if status.kind == .directory {
            return try TreeDigest.compute(root: path, hasher: statCache).digest
        }
        return try statCache.digest(ofFileAtPath: path, status: status)
    }

    /// Persists the stat cache and the archive digest memo.
    public func save() throws {
        try statCache.save()
        try digester.save()
    }
}
