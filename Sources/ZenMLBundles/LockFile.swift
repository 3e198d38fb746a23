import Foundation
import ZenMLCore

/// `zenml.lock` beside a pipeline: for each registry reference in its `uses:`, the exact bundle it
/// resolved to, and for each local bundle folder, the digest it had when the lock was written.
/// A run with a lock file uses exactly the registry digests (`run --update` moves them). A local
/// bundle that changed since is used as it is now and re-pinned with a warning, as Cargo, npm and
/// uv treat path dependencies; `run --locked` refuses instead (for CI).
///
/// Deterministic JSON (sorted keys, two-space indent, trailing newline), so it diffs well and is
/// byte-identical for the same resolution:
/// `{"bundles": {"NAME@RANGE": {"digest", "name", "registry", "version"}},
///   "local": {"USES": {"digest", "path"}}, "lock_version": 1}` (`local` only when there are any;
/// readers of version 1 that predate it ignore it).
public struct LockFile: Codable, Sendable, Equatable {
    public struct Pin: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        public var digest: Digest
        public var registry: String

        public init(name: String, version: String, digest: Digest, registry: String) {
            self.name = name
            self.version = version
            self.digest = digest
            self.registry = registry
        }
    }

    /// A local bundle folder as it was when pinned.
    public struct LocalPin: Codable, Sendable, Equatable {
        /// The folder, relative to the lock file's folder (as `uses:` resolves it).
        public var path: String
        public var digest: Digest

        public init(path: String, digest: Digest) {
            self.path = path
            self.digest = digest
        }
    }

    public static let fileName = "zenml.lock"
    public static let currentVersion = 1

    public var lockVersion: Int
    /// Pins by the reference as written in `uses:`.
    public var bundles: [String: Pin]
    /// Local bundle pins by the `uses:` text; `nil` when there are none (so lock files without
    /// local bundles keep the bytes earlier builds wrote).
    public var local: [String: LocalPin]?

    public init(bundles: [String: Pin] = [:], local: [String: LocalPin] = [:]) {
        self.lockVersion = Self.currentVersion
        self.bundles = bundles
        self.local = local.isEmpty ? nil : local
    }

    enum CodingKeys: String, CodingKey {
        case lockVersion = "lock_version"
        case bundles, local
    }

    /// The lock file of the pipeline file at `pipeline` (beside it).
    public static func path(forPipeline pipeline: String) -> String {
        (pipeline as NSString).deletingLastPathComponent + "/" + fileName
    }

    /// Reads a lock file; `nil` when there is none.
    public static func load(_ path: String) throws -> LockFile? {
        guard (try FileStatus.of(path)) != nil else { return nil }
        let lock: LockFile
        do { lock = try JSONDecoder().decode(LockFile.self, from: FileTree.read(path)) } catch {
            throw BundleError.lock("\(path) is not a valid lock file (\(error)); fix it, or delete it and run with --update to resolve again")
        }
        guard lock.lockVersion == currentVersion else {
            throw BundleError.lock("\(path) has lock_version \(lock.lockVersion); this zenml-run reads version \(currentVersion)")
        }
        return lock
    }

    /// The file's bytes.
    public var data: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings and ints cannot fail.
        return ((try? encoder.encode(self)) ?? Data()) + Data("\n".utf8)
    }

    /// Writes the file, unless it already holds exactly these bytes.
    public func save(_ path: String) throws {
        if let existing = try? FileTree.read(path), existing == data { return }
        try FileTree.writeAtomically(data, to: path)
    }
}
