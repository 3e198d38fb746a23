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
///
/// Format 2 adds ``objects``: where the bytes of large files live when they are not under the
/// artifact's folder (see ``RemoteArtifactStore/publish(stagedDirectory:)``). A manifest without
/// large files is written in format 1, as before.
public struct RemoteManifest: Codable, Sendable, Equatable {
    /// The newest format this code reads.
    public static let currentFormat = 2

    public var format: Int = 1
    public var digest: Digest
    public var size: Int64
    public var fileCount: Int64
    /// Every file, directory and link, with sizes, execute bits and file digests.
    public var entries: [TreeEntry]
    /// File path → key (below the store's prefix) of the object holding its bytes, for files not
    /// stored at `<artifact folder>/<path>`.
    public var objects: [String: String]?

    public init(digest: Digest, size: Int64, fileCount: Int64, entries: [TreeEntry], objects: [String: String] = [:]) {
        self.format = objects.isEmpty ? 1 : 2
        self.digest = digest
        self.size = size
        self.fileCount = fileCount
        self.entries = entries
        self.objects = objects.isEmpty ? nil : objects
    }
}

/// Why a remote artifact cannot be used.
public enum RemoteArtifactError: Error, CustomStringConvertible, Sendable {
    case corrupted(uri: String, detail: String)
    /// The manifest was written by a newer zenml-run.
    case newerFormat(uri: String, format: Int)
    /// A file of the artifact changed while it was being published.
    case changedWhilePublishing(path: String)

    public var description: String {
        switch self {
        case .newerFormat(let uri, let format):
            return "the remote artifact \(uri) has manifest format \(format), newer than this zenml-run reads (\(RemoteManifest.currentFormat)); upgrade zenml-run"
        case .changedWhilePublishing(let path):
            return "\(path) changed while it was being published; nothing was published. Make sure nothing writes to a step's outputs after the step ended, then run again"
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

    /// Publishes a staged folder: hashes it, uploads every file verified, then writes the manifest.
    ///
    /// Large files (at least the object store's multipart threshold) are read once: their SHA-256
    /// is computed while their parts go up (``ObjectStore/stage(_:file:)``), so publishing a 1 GiB
    /// file costs one pass over it instead of a hashing pass and then an upload pass (under load,
    /// the hashing pass alone took ~10 s per GiB on this project's 2-core machines). Their key
    /// cannot contain the artifact digest, which is known only when every file is hashed, so they
    /// go to `PREFIX/blobs/<random id>` and the manifest (format 2) records that key. Other ways
    /// out were weighed and dropped: a server-side copy from a staging key to the digest's key
    /// (CopyObject/UploadPartCopy, GCS rewrite) rewrites every byte on Swift's s3api, moto and the
    /// GCS emulators, costing more than the pass it saves.
    ///
    /// The invariants stay: the staged uploads are invisible objects until they are completed
    /// (S3: multipart upload not completed; GCS: resumable upload without its last chunk), which
    /// happens only after the artifact digest is known and its manifest is found missing; the
    /// manifest is written last. If the artifact exists already, the staged uploads are aborted,
    /// so identical content is stored once (its bytes were sent once more, though: that is the
    /// price of not reading the file twice).
    public func publish(stagedDirectory: String) async throws -> StoredArtifact {
        guard let status = try FileStatus.of(stagedDirectory), status.kind == .directory else {
            throw ArtifactStoreError.notADirectory(stagedDirectory)
        }
        let objects = self.objects
        let large = try largeFiles(in: stagedDirectory, relative: "", threshold: max(1, objects.settings.multipartThreshold))
        var staged: [String: any StagedUpload] = [:]
        do {
            for path in large {
                staged[path] = try await objects.stage(location.key("blobs/" + UUID().uuidString.lowercased()), file: stagedDirectory + "/" + path)
            }
            let tree = try TreeDigest.compute(root: stagedDirectory, hasher: StagedHasher(root: stagedDirectory, staged: staged))
            let stored = StoredArtifact(digest: tree.digest, uri: uri(tree.digest), size: tree.totalSize, fileCount: Int64(tree.fileCount))
            if try await objects.head(manifestKey(tree.digest)) == nil {
                let base = directoryKey(tree.digest)
                let files = tree.entries.filter { $0.kind == .file }
                let stagedUploads = staged
                // Each put verifies size and MD5 of what the server stored before it returns; so does each commit.
                try await forEachConcurrently(files, limit: concurrency) { entry in
                    let uploaded: ObjectInfo
                    if let upload = stagedUploads[entry.path] {
                        uploaded = try await upload.commit()
                    } else {
                        uploaded = try await objects.put(base + "/" + entry.path, file: stagedDirectory + "/" + entry.path)
                    }
                    guard uploaded.size == entry.size else {
                        throw RemoteArtifactError.corrupted(uri: "\(objects.bucketURL)/\(uploaded.key)", detail: "stored \(uploaded.size) bytes of \(entry.size)")
                    }
                }
                staged = [:]
                let prefix = location.prefix.isEmpty ? "" : location.prefix + "/"
                let manifest = RemoteManifest(
                    digest: tree.digest, size: tree.totalSize, fileCount: Int64(tree.fileCount), entries: tree.entries,
                    objects: stagedUploads.mapValues { String($0.key.dropFirst(prefix.count)) })
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                // The commit point: only now does the artifact exist for other machines.
                try await objects.put(manifestKey(tree.digest), data: try encoder.encode(manifest))
            }
            for upload in staged.values { await upload.abort() }
            try cache.adopt(stagedDirectory, digest: tree.digest, size: tree.totalSize)
            return stored
        } catch {
            for upload in staged.values { await upload.abort() }
            throw error
        }
    }

    /// Regular files of at least `threshold` bytes below `directory` (links are not followed).
    private func largeFiles(in directory: String, relative: String, threshold: Int64) throws -> [String] {
        var found: [String] = []
        for name in try FileTree.childNames(of: directory + (relative.isEmpty ? "" : "/" + relative)) {
            let path = relative.isEmpty ? name : relative + "/" + name
            guard let status = try FileStatus.of(directory + "/" + path) else { continue }
            if status.kind == .directory {
                found += try largeFiles(in: directory, relative: path, threshold: threshold)
            } else if status.kind == .file && status.size >= threshold {
                found.append(path)
            }
        }
        return found
    }

    public func localPath(of digest: Digest) async throws -> String? {
        if let path = cache.lookup(digest) { return path }
        guard let data = try await objects.data(manifestKey(digest)) else { return nil }
        let manifest = try decodeManifest(data, digest: digest)
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

    private func decodeManifest(_ data: Data, digest: Digest) throws -> RemoteManifest {
        guard let manifest = try? JSONDecoder().decode(RemoteManifest.self, from: data), manifest.digest == digest else {
            throw RemoteArtifactError.corrupted(uri: uri(digest), detail: "its manifest is unreadable")
        }
        guard manifest.format <= RemoteManifest.currentFormat else {
            throw RemoteArtifactError.newerFormat(uri: uri(digest), format: manifest.format)
        }
        return manifest
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
        let location = self.location
        let uri = self.uri(manifest.digest)
        try await forEachConcurrently(manifest.entries.filter { $0.kind == .file }, limit: concurrency) { entry in
            let path = staging + "/" + entry.path
            let key = manifest.objects?[entry.path].map(location.key) ?? base + "/" + entry.path
            guard let info = try await objects.get(key, to: path, expectedSize: entry.size) else {
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
        let manifest = try decodeManifest(data, digest: digest)
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

/// Hashes a tree whose large files were hashed while they were uploaded: their digests come from
/// the staged uploads, provided the file still has the size that was sent.
private struct StagedHasher: FileHasher {
    let root: String
    let staged: [String: any StagedUpload]

    func digest(ofFileAtPath path: String, status: FileStatus) throws -> Digest {
        let relative = path.hasPrefix(root + "/") ? String(path.dropFirst(root.count + 1)) : path
        guard let upload = staged[relative] else { return try Digest.ofFile(atPath: path) }
        guard status.size == upload.size else { throw RemoteArtifactError.changedWhilePublishing(path: path) }
        return upload.sha256
    }
}
