import Foundation
import ZenMLCore

/// The local read-through cache of a remote artifact store: artifacts by digest, in the local
/// store's layout (`sha256/<2 hex>/<64 hex>/`, read-only), bounded in size with least-recently-used
/// eviction. Each artifact has a `<64 hex>.size` file beside it holding its size, whose
/// modification time records the artifact's last use.
///
/// Eviction only removes whole artifacts and never the one just added; a step still reading an
/// evicted input of a concurrent run on the same machine would see it vanish, so the bound should
/// leave room for the inputs of the steps running at once.
public struct ArtifactCache: Sendable {
    public let root: String
    /// Where downloads and step outputs are staged: on the cache's file system, so adopting them is a rename.
    public let stagingRoot: String
    /// The size the cache is pruned to after each addition.
    public var maxSize: Int64

    /// 10 GiB.
    public static let defaultMaxSize: Int64 = 10 << 30

    public init(root: String, stagingRoot: String, maxSize: Int64 = ArtifactCache.defaultMaxSize) throws {
        self.root = root
        self.stagingRoot = stagingRoot
        self.maxSize = maxSize
        try FileTree.makeDirectory(root + "/sha256")
        try FileTree.makeDirectory(stagingRoot)
    }

    public func path(of digest: Digest) -> String { "\(root)/sha256/\(digest.hex.prefix(2))/\(digest.hex)" }

    /// The artifact's cached directory, marked as just used; `nil` if it is not cached.
    public func lookup(_ digest: Digest) -> String? {
        let path = path(of: digest)
        guard (try? FileStatus.of(path))??.kind == .directory else { return nil }
        utimes(path + ".size", nil)
        return path
    }

    public func makeStagingDirectory(label: String) throws -> String {
        let safeLabel = String(label.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
        let path = "\(stagingRoot)/\(safeLabel)~\(getpid())~\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff)"
        try FileTree.makeDirectory(path, mode: 0o700)
        return path
    }

    /// Removes staging folders (downloads, step work folders) left by processes of this machine
    /// that no longer exist, such as a run killed in the middle of a download.
    @discardableResult
    public func removeAbandonedStaging() -> Int {
        var removed = 0
        for name in (try? FileTree.childNames(of: stagingRoot)) ?? [] {
            let parts = name.split(separator: "~")
            guard parts.count == 3, let pid = pid_t(parts[1]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH, (try? FileTree.remove(stagingRoot + "/" + name)) != nil { removed += 1 }
        }
        return removed
    }

    /// Moves a verified directory into the cache as `digest` (consuming it), then prunes.
    public func adopt(_ directory: String, digest: Digest, size: Int64) throws {
        let destination = path(of: digest)
        if try FileStatus.of(destination) == nil {
            try FileTree.makeDirectory((destination as NSString).deletingLastPathComponent)
            chmod(directory, 0o755)
            if rename(directory, destination) != 0 {
                let code = errno
                guard code == EEXIST || code == ENOTEMPTY else {
                    throw FileSystemError.posix(path: destination, operation: "cache the artifact at", errno: code)
                }
                try FileTree.remove(directory)
            } else {
                try FileTree.makeReadOnly(destination)
            }
        } else {
            try FileTree.remove(directory)
        }
        try FileTree.writeAtomically(Data(String(size).utf8), to: destination + ".size")
        try prune(to: maxSize, keeping: digest)
    }

    /// One cached artifact.
    public struct Entry: Sendable {
        public var digest: Digest
        public var size: Int64
        public var lastUse: Date
    }

    /// Every cached artifact, least recently used first.
    public func entries() throws -> [Entry] {
        var entries: [Entry] = []
        for shard in try FileTree.childNames(of: root + "/sha256") {
            let directory = root + "/sha256/" + shard
            for name in try FileTree.childNames(of: directory) where name.hasSuffix(".size") {
                guard let digest = Digest(hex: String(name.dropLast(5))) else { continue }
                let file = directory + "/" + name
                var status = stat()
                guard stat(file, &status) == 0 else { continue }
                let size = (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { Int64($0) } ?? 0
                entries.append(Entry(digest: digest, size: size, lastUse: Date(timeIntervalSince1970: TimeInterval(status.st_mtim.tv_sec) + TimeInterval(status.st_mtim.tv_nsec) / 1e9)))
            }
        }
        return entries.sorted { $0.lastUse < $1.lastUse }
    }

    /// Removes least recently used artifacts until the cache holds at most `limit` bytes.
    @discardableResult
    public func prune(to limit: Int64, keeping kept: Digest? = nil) throws -> (removed: Int, freed: Int64) {
        let entries = try entries()
        var total = entries.reduce(0) { $0 + $1.size }
        var removed = 0
        var freed: Int64 = 0
        for entry in entries where total > limit && entry.digest != kept {
            // The size file goes last: an interrupted removal is then still found and finished next time.
            try FileTree.remove(path(of: entry.digest))
            try FileTree.remove(path(of: entry.digest) + ".size")
            total -= entry.size
            freed += entry.size
            removed += 1
        }
        return (removed, freed)
    }
}
