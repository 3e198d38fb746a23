import Foundation
import ZenMLCore
import ZenMLObjectStore

/// What a remote artifact is made of: the commit marker of a published artifact.
///
/// Stored as `PREFIX/sha256/<2 hex>/<64 hex>.manifest.json`, written only after every file of the
/// artifact was uploaded and verified. An artifact exists iff its manifest exists, so an upload that
/// dies half-way leaves only unreferenced objects, never a visible partial artifact; the next
/// publish of the same content uploads (overwrites) them again. Nothing relies on conditional
/// writes: two machines publishing the same digest write the same bytes to the same keys.
public struct RemoteManifest: Codable, Sendable, Equatable {
    public var format: Int = 1
    public var digest: Digest
    public var size: Int64
    public var fileCount: Int64
    /// Every file, directory and link, with sizes, execute bits and file digests.
    public var entries: [TreeEntry]
}

/// Why a remote artifact cannot be used.
public enum RemoteArtifactError: Error, CustomStringConvertible, Sendable {
    case corrupted(uri: String, detail: String)

    public var description: String {
        switch self {
        case .corrupted(let uri, let detail):
            return "the remote artifact \(uri) is corrupted (\(detail)); it was not used. Re-run the step that produced it with --no-cache to publish it again"
        }
    }
}

/// An artifact store in a bucket (`gs://BUCKET/PREFIX`, `s3://BUCKET/PREFIX`), with the local
/// store's content-addressed layout: `PREFIX/sha256/<2 hex>/<64 hex>/<file path>`.
///
/// Steps still see local paths: artifacts are read through a local cache (an ``ArtifactCache``
/// keyed by digest), and outputs are published from the cache's file system, so a step's outputs
/// are in the cache already when they are uploaded.
public struct RemoteArtifactStore: ArtifactStore {
    public let objects: any ObjectStore
    public let location: ObjectStoreLocation
    public let cache: ArtifactCache
    /// Transfers of one artifact in flight at once (the HTTP client bounds the total too).
    public var concurrency: Int

    public init(objects: any ObjectStore, location: ObjectStoreLocation, cache: ArtifactCache, concurrency: Int = 16) {
        self.objects = objects
        self.location = location
        self.cache = cache
        self.concurrency = concurrency
    }

    func directoryKey(_ digest: Digest) -> String { location.key("sha256/\(digest.hex.prefix(2))/\(digest.hex)") }
    func manifestKey(_ digest: Digest) -> String { directoryKey(digest) + ".manifest.json" }
    func uri(_ digest: Digest) -> String { "\(location.scheme)://\(location.bucket)/\(directoryKey(digest))" }

    public func makeStagingDirectory(label: String) throws -> String { try cache.makeStagingDirectory(label: label) }

    public func publish(stagedDirectory: String) async throws -> StoredArtifact {
        guard let status = try FileStatus.of(stagedDirectory), status.kind == .directory else {
            throw ArtifactStoreError.notADirectory(stagedDirectory)
        }
        let tree = try TreeDigest.compute(root: stagedDirectory)
        let stored = StoredArtifact(digest: tree.digest, uri: uri(tree.digest), size: tree.totalSize, fileCount: Int64(tree.fileCount))
        if try await objects.head(manifestKey(tree.digest)) == nil {
            let base = directoryKey(tree.digest)
            let files = tree.entries.filter { $0.kind == .file }
            let objects = self.objects
            // Each put verifies size and MD5 of what the server stored before it returns.
            try await forEachConcurrently(files, limit: concurrency) { entry in
                let uploaded = try await objects.put(base + "/" + entry.path, file: stagedDirectory + "/" + entry.path)
                guard uploaded.size == entry.size else {
                    throw RemoteArtifactError.corrupted(uri: "\(objects.bucketURL)/\(base)/\(entry.path)", detail: "stored \(uploaded.size) bytes of \(entry.size)")
                }
            }
            let manifest = RemoteManifest(digest: tree.digest, size: tree.totalSize, fileCount: Int64(tree.fileCount), entries: tree.entries)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            // The commit point: only now does the artifact exist for other machines.
            try await objects.put(manifestKey(tree.digest), data: try encoder.encode(manifest))
        }
        try cache.adopt(stagedDirectory, digest: tree.digest, size: tree.totalSize)
        return stored
    }

    public func localPath(of digest: Digest) async throws -> String? {
        if let path = cache.lookup(digest) { return path }
        guard let data = try await objects.data(manifestKey(digest)) else { return nil }
        guard let manifest = try? JSONDecoder().decode(RemoteManifest.self, from: data), manifest.digest == digest else {
            throw RemoteArtifactError.corrupted(uri: uri(digest), detail: "its manifest is unreadable")
        }
        let staging = try cache.makeStagingDirectory(label: "fetch")
        do {
            try await download(manifest, into: staging)
            let tree = try TreeDigest.compute(root: staging)
            guard tree.digest == digest else {
                let expected = Dictionary(manifest.entries.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
                // Name the file that differs (a folder's digest differs only because of a file in it).
                let differing = tree.entries.filter { expected[$0.path] != $0 }
                let bad = (differing.first { $0.kind != .directory } ?? differing.first)?.path ?? "its file list"
                throw RemoteArtifactError.corrupted(uri: uri(digest), detail: "\(bad) does not have the digest the manifest records")
            }
            try cache.adopt(staging, digest: digest, size: manifest.size)
        } catch {
            try? FileTree.remove(staging)
            throw error
        }
        return cache.lookup(digest)
    }

    private func download(_ manifest: RemoteManifest, into staging: String) async throws {
        let base = directoryKey(manifest.digest)
        for entry in manifest.entries where entry.kind == .directory {
            try FileTree.makeDirectory(staging + "/" + entry.path)
        }
        for entry in manifest.entries where entry.kind == .symlink {
            if symlink(entry.target ?? "", staging + "/" + entry.path) != 0 {
                throw FileSystemError.posix(path: staging + "/" + entry.path, operation: "create the link", errno: errno)
            }
        }
        let objects = self.objects
        let uri = self.uri(manifest.digest)
        try await forEachConcurrently(manifest.entries.filter { $0.kind == .file }, limit: concurrency) { entry in
            let path = staging + "/" + entry.path
            guard let info = try await objects.get(base + "/" + entry.path, to: path, expectedSize: entry.size) else {
                throw RemoteArtifactError.corrupted(uri: uri, detail: "\(entry.path) is missing")
            }
            guard info.size == entry.size else {
                throw RemoteArtifactError.corrupted(uri: uri, detail: "\(entry.path) has \(info.size) bytes, the manifest records \(entry.size)")
            }
            if entry.executable { chmod(path, 0o755) }
        }
    }

    /// From the local copy if there is one, else from the manifest (one small object).
    public func files(_ paths: [String], heldBy digest: Digest) async throws -> [String] {
        if let local = cache.lookup(digest) {
            return try paths.filter { try FileStatus.of(local + "/" + $0)?.kind == .file }
        }
        guard let data = try await objects.data(manifestKey(digest)) else { return [] }
        guard let manifest = try? JSONDecoder().decode(RemoteManifest.self, from: data), manifest.digest == digest else {
            throw RemoteArtifactError.corrupted(uri: uri(digest), detail: "its manifest is unreadable")
        }
        let held = Set(manifest.entries.filter { $0.kind == .file }.map(\.path))
        return paths.filter { held.contains($0) }
    }

    /// A HEAD of the manifest: the artifact exists remotely, whatever the local cache holds.
    public func isIntact(_ artifact: StoredArtifact) async throws -> Bool {
        try await objects.head(manifestKey(artifact.digest)) != nil
    }

    public func verify(_ digest: Digest) async throws -> Bool {
        guard let path = try await localPath(of: digest) else { throw ArtifactStoreError.missing(digest) }
        return try TreeDigest.compute(root: path).digest == digest
    }

    /// Nothing to do: an artifact is durable in the bucket when ``publish(stagedDirectory:)`` returns.
    public func flush() throws {}
}
