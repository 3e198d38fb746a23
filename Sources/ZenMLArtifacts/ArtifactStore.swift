import CZenMLSystem
import Foundation
import ZenMLCore


/// A content-addressed artifact store.
///
/// Artifacts are immutable: ``publish(stagedDirectory:)`` makes a finished output directory an
/// artifact atomically, so a crash or an interrupted run never leaves a partial artifact visible.
public protocol ArtifactStore: Sendable {
    /// A new, empty directory on the same file system as the store, where a step writes its outputs.
    func makeStagingDirectory(label: String) throws -> String
    /// Turns a finished directory into an artifact; the staged directory is consumed.
    /// Async because a remote store uploads here.
    func publish(stagedDirectory: String) async throws -> StoredArtifact
    /// The local directory of an artifact, for steps to read; `nil` if the store does not have it.
    /// A remote store downloads it into its local cache first.
    func localPath(of digest: Digest) async throws -> String?
    /// Whether the artifact is present with the recorded size and file count (a cheap check, no
    /// hashing; a remote store asks for the artifact's manifest, without downloading anything).
    func isIntact(_ artifact: StoredArtifact) async throws -> Bool
    /// Re-hashes an artifact and reports whether its content still has its digest.
    func verify(_ digest: Digest) async throws -> Bool
    /// Which of these files (paths inside the artifact) the artifact holds, without fetching it:
    /// a view looks for its file in every artifact of a run, and a remote store would otherwise
    /// download them all.
    func files(_ paths: [String], heldBy digest: Digest) async throws -> [String]
    /// Makes everything published so far durable (the end of a run calls it once).
    func flush() throws
}

/// Why the store refused an operation.
public enum ArtifactStoreError: Error, CustomStringConvertible, Sendable {
    case missing(Digest)
    case notADirectory(String)

    public var description: String {
        switch self {
        case .missing(let digest):
            return "artifact \(digest) is not in the store; re-run the step that produced it (zenml-run run --no-cache --only STEP)"
        case .notADirectory(let path):
            return "'\(path)' is not a directory"
        }
    }
}

/// The default store: a folder (normally `.zenml/artifacts`) holding `sha256/<2 hex>/<64 hex>/`
/// directories, made read-only once published. Identical content is stored once.
public struct LocalArtifactStore: ArtifactStore {
    /// The folder holding the artifacts.
    public let root: String
    /// The folder for staging; on the same file system, so publishing is a rename.
    public let stagingRoot: String
    /// Whether to flush each artifact to disk before it is published. Off by default: an fsync
    /// costs 5-15 ms on common disks, more than a small step itself, so the store flushes the
    /// whole file system once per run instead (``flush()``). A process crash cannot lose
    /// published bytes either way (they are in the page cache); only a power loss between a
    /// publish and the end of the run can, and the cheap size check on every cache hit
    /// (``isIntact(_:)``) then refuses the truncated artifact, so the step runs again.
    public var durable: Bool

    public init(root: String, stagingRoot: String, durable: Bool = false) throws {
        self.root = root
        self.stagingRoot = stagingRoot
        self.durable = durable
        try FileTree.makeDirectory(root + "/sha256")
        try FileTree.makeDirectory(stagingRoot)
    }

    /// The path an artifact with this digest has in the store.
    public func path(of digest: Digest) -> String {
        "\(root)/sha256/\(digest.hex.prefix(2))/\(digest.hex)"
    }

    public func makeStagingDirectory(label: String) throws -> String {
        let safeLabel = label.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        // The owner's host and pid are part of the name so that leftovers of a killed process can be
        // told apart, also in a folder that several machines share.
        let path = "\(stagingRoot)/\(String(safeLabel))~\(Self.hostName)~\(getpid())~\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff)"
        try FileTree.makeDirectory(path, mode: 0o700)
        return path
    }

    /// This machine's name, as staging folders record it (`~` and `/` replaced).
    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "host" : name.replacingOccurrences(of: "~", with: "-").replacingOccurrences(of: "/", with: "-")
    }()

    /// Removes staging folders left by processes of this machine that no longer exist (a host
    /// killed with SIGKILL, a machine that lost power). Folders of live processes, and of other
    /// machines sharing the store, are left alone.
    @discardableResult
    public func removeAbandonedStaging() -> Int {
        var removed = 0
        for name in (try? FileTree.childNames(of: stagingRoot)) ?? [] {
            let parts = name.split(separator: "~")
            guard parts.count == 4, parts[1] == Self.hostName, let pid = pid_t(parts[2]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                if (try? FileTree.remove(stagingRoot + "/" + name)) != nil { removed += 1 }
            }
        }
        return removed
    }

    public func publish(stagedDirectory: String) throws -> StoredArtifact {
        guard let status = try FileStatus.of(stagedDirectory), status.kind == .directory else {
            throw ArtifactStoreError.notADirectory(stagedDirectory)
        }
        let tree = try TreeDigest.compute(root: stagedDirectory)
        let destination = path(of: tree.digest)
        let stored = StoredArtifact(digest: tree.digest, uri: destination, size: tree.totalSize, fileCount: Int64(tree.fileCount))
        if try FileStatus.of(destination) != nil {
            // The same content was published before: keep that copy, unless it has since been
            // damaged (its size or file count changed). Then this one replaces it, so re-running the
            // step (or build) that made it repairs the store instead of keeping the damage.
            if try isIntact(stored) {
                try FileTree.remove(stagedDirectory)
                return stored
            }
            try discardDamaged(destination)
        }
        if durable { try FileTree.syncTree(stagedDirectory) }
        let parent = (destination as NSString).deletingLastPathComponent
        try FileTree.makeDirectory(parent)
        chmod(stagedDirectory, 0o755)
        if rename(stagedDirectory, destination) != 0 {
            let code = errno
            // Another process published the same content first: keep theirs.
            if code == EEXIST || code == ENOTEMPTY {
                try FileTree.remove(stagedDirectory)
                return stored
            }
            throw FileSystemError.posix(path: destination, operation: "publish the artifact at", errno: code)
        }
        try FileTree.makeReadOnly(destination)
        if durable { try FileTree.sync(parent) }
        return stored
    }

    /// Moves a damaged artifact out of the way (into staging, then removes it), so a good copy
    /// can be renamed in; a concurrent publisher may have moved it already.
    private func discardDamaged(_ destination: String) throws {
        let trash = try makeStagingDirectory(label: "damaged")
        // Moving a directory to another parent rewrites its "..": it must be writable.
        if let status = try FileStatus.of(destination) { chmod(destination, status.mode | 0o700) }
        if rename(destination, trash + "/artifact") != 0 && errno != ENOENT {
            throw FileSystemError.posix(path: destination, operation: "move the damaged artifact away from", errno: errno)
        }
        try FileTree.remove(trash)
    }

    public func localPath(of digest: Digest) throws -> String? {
        let path = path(of: digest)
        return try FileStatus.of(path)?.kind == .directory ? path : nil
    }

    public func files(_ paths: [String], heldBy digest: Digest) throws -> [String] {
        let root = path(of: digest)
        return try paths.filter { try FileStatus.of(root + "/" + $0)?.kind == .file }
    }

    public func isIntact(_ artifact: StoredArtifact) throws -> Bool {
        let path = path(of: artifact.digest)
        guard try FileStatus.of(path)?.kind == .directory else { return false }
        var size: Int64 = 0
        var files: Int64 = 0
        try Self.tally(path, size: &size, files: &files)
        return size == artifact.size && files == artifact.fileCount
    }

    private static func tally(_ path: String, size: inout Int64, files: inout Int64) throws {
        for name in try FileTree.childNames(of: path) {
            let child = path + "/" + name
            guard let status = try FileStatus.of(child) else { continue }
            switch status.kind {
            case .file:
                size += status.size
                files += 1
            case .directory:
                try tally(child, size: &size, files: &files)
            default:
                break
            }
        }
    }

    public func flush() throws {
        let descriptor = open(root, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: root, operation: "open", errno: errno) }
        defer { close(descriptor) }
        if czenml_syncfs(descriptor) != 0 { throw FileSystemError.posix(path: root, operation: "flush", errno: errno) }
    }

    public func verify(_ digest: Digest) throws -> Bool {
        guard let path = try localPath(of: digest) else { throw ArtifactStoreError.missing(digest) }
        return try TreeDigest.compute(root: path).digest == digest
    }
}
