import Foundation
import XCTest
import ZenMLArtifacts
import ZenMLCore
@testable import ZenMLObjectStore

/// The remote artifact store against real servers: what one machine publishes, another fetches
/// through its own cache; partial uploads stay invisible; corruption is refused.
final class RemoteArtifactStoreTests: XCTestCase {
    /// Two "machines": one bucket location, two caches.
    func machines(_ objects: any ObjectStore, maxCache: Int64 = ArtifactCache.defaultMaxSize) throws -> (RemoteArtifactStore, RemoteArtifactStore, String) {
        let root = try Servers.temporaryDirectory()
        let location = try ObjectStoreLocation(parsing: objects.bucketURL + "/team/artifacts")
        func store(_ name: String) throws -> RemoteArtifactStore {
            RemoteArtifactStore(objects: objects, location: location,
                                cache: try ArtifactCache(root: "\(root)/\(name)/cache", stagingRoot: "\(root)/\(name)/tmp", maxSize: maxCache))
        }
        return (try store("a"), try store("b"), root)
    }

    func write(_ directory: String, _ files: [String: Data]) throws {
        for (path, data) in files {
            try FileTree.makeDirectory(((directory + "/" + path) as NSString).deletingLastPathComponent)
            try data.write(to: URL(fileURLWithPath: directory + "/" + path))
        }
    }

    /// Publishes on A, fetches on B, and checks B's copy has the digest.
    func publishAndFetch(_ a: RemoteArtifactStore, _ b: RemoteArtifactStore, _ files: [String: Data], extra: (String) throws -> Void = { _ in }) async throws -> StoredArtifact {
        let staged = try a.makeStagingDirectory(label: "out")
        try write(staged, files)
        try extra(staged)
        let expected = try TreeDigest.compute(root: staged)
        let stored = try await a.publish(stagedDirectory: staged)
        XCTAssertEqual(stored.digest, expected.digest)
        XCTAssertTrue(stored.uri.hasPrefix(a.objects.bucketURL + "/team/artifacts/sha256/"), stored.uri)
        let intact = try await b.isIntact(stored)
        XCTAssertTrue(intact)
        XCTAssertNil(b.cache.lookup(stored.digest), "isIntact downloads nothing")
        let path = try await b.localPath(of: stored.digest)
        let fetched = try XCTUnwrap(path)
        XCTAssertEqual(try TreeDigest.compute(root: fetched).digest, stored.digest)
        XCTAssertEqual(try TreeDigest.compute(root: fetched).entries, expected.entries)
        return stored
    }

    func exercise(_ objects: any ObjectStore) async throws {
        let (a, b, root) = try machines(objects)
        defer { try? FileTree.remove(root) }
        // 0 bytes: an empty file, and an empty folder.
        _ = try await publishAndFetch(a, b, ["empty.bin": Data()])
        _ = try await publishAndFetch(a, b, [:])
        // Many small files in folders, an executable and a link.
        var many: [String: Data] = [:]
        for index in 0..<250 { many["part-\(index % 7)/file-\(index).txt"] = Data("record \(index)\n".utf8) }
        _ = try await publishAndFetch(a, b, many) { staged in
            try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: staged + "/run.sh"))
            chmod(staged + "/run.sh", 0o755)
            symlink("part-0/file-0.txt", staged + "/first")
        }
        // One file over the multipart/resumable threshold (the tests set it low).
        let large = try await publishAndFetch(a, b, ["model/weights.bin": Servers.randomData((11 << 20) + 777), "model/meta.json": Data("{}".utf8)])

        // The large file was hashed while it went up, so its bytes are under blobs/ and the
        // manifest (format 2) says where; the small one is in the artifact's folder.
        let manifestKey = a.location.key("sha256/\(large.digest.hex.prefix(2))/\(large.digest.hex).manifest.json")
        let manifestData = try await objects.data(manifestKey)
        let manifest = try JSONDecoder().decode(RemoteManifest.self, from: try XCTUnwrap(manifestData))
        XCTAssertEqual(manifest.format, 2)
        let blob = try XCTUnwrap(manifest.objects?["model/weights.bin"])
        XCTAssertTrue(blob.hasPrefix("blobs/"), blob)
        XCTAssertEqual(manifest.objects?.count, 1)
        let blobs = try await objects.list(prefix: a.location.key("blobs/")).map(\.key)
        XCTAssertEqual(blobs, [a.location.key(blob)])

        // Publishing the same content again stores nothing new: the manifest is not rewritten and
        // the large file's staged upload is dropped, not completed.
        let before = try await objects.head(manifestKey)
        try await Task.sleep(nanoseconds: 1_100_000_000)
        let again = try a.makeStagingDirectory(label: "again")
        try FileManager.default.copyItem(atPath: try XCTUnwrap(b.cache.lookup(large.digest)) + "/model", toPath: again + "/model")
        let republished = try await a.publish(stagedDirectory: again)
        XCTAssertEqual(republished.digest, large.digest)
        let after = try await objects.head(manifestKey)
        XCTAssertEqual(before?.etag, after?.etag)
        if objects is GCSObjectStore { XCTAssertEqual(before?.etag, after?.etag, "the GCS generation is unchanged") }
        let blobsAfter = try await objects.list(prefix: a.location.key("blobs/")).map(\.key)
        XCTAssertEqual(blobsAfter, blobs, "identical content is stored once")

        // A large file's object with other bytes (same size) is refused on fetch, naming the file.
        let (c, _, otherRoot) = try machines(objects)
        defer { try? FileTree.remove(otherRoot) }
        try await objects.put(a.location.key(blob), data: Servers.randomData(Int(manifest.entries.first { $0.path == "model/weights.bin" }?.size ?? 0)))
        do {
            _ = try await c.localPath(of: large.digest)
            XCTFail("a corrupted large file must not be served")
        } catch {
            XCTAssertTrue("\(error)".contains("corrupted") && "\(error)".contains("model/weights.bin"), "\(error)")
        }
        XCTAssertNil(c.cache.lookup(large.digest))
    }

    func testGCSEmulator() async throws {
        try await exercise(try await Servers.gcs(settings: TransferSettings(multipartThreshold: 4 << 20, partSize: 1 << 20)))
    }

    func testSwiftS3() async throws {
        try await exercise(try await Servers.swift(settings: TransferSettings(multipartThreshold: 6 << 20, partSize: 5 << 20)))
    }

    func testMoto() async throws {
        try await exercise(try await Servers.moto(settings: TransferSettings(multipartThreshold: 6 << 20, partSize: 5 << 20)))
    }

    /// An upload that stopped before its manifest (a killed process) leaves no artifact; the next
    /// publish of the same content completes it.
    func testPartialUploadIsInvisibleAndRepublished() async throws {
        for objects in [try await Servers.gcs() as any ObjectStore, try await Servers.swift()] {
            let (a, b, root) = try machines(objects)
            defer { try? FileTree.remove(root) }
            let files = (0..<20).reduce(into: [String: Data]()) { $0["f\($1)"] = Servers.randomData(1000 + $1) }
            let staged = try a.makeStagingDirectory(label: "out")
            try write(staged, files)
            let tree = try TreeDigest.compute(root: staged)
            // What a process killed half-way through publish leaves: some files, no manifest.
            for name in files.keys.sorted().prefix(10) {
                try await objects.put(a.location.key("sha256/\(tree.digest.hex.prefix(2))/\(tree.digest.hex)/\(name)"), file: staged + "/" + name)
            }
            // ... and a large file staged (every byte sent) but never completed.
            let dropped = try await objects.stage(a.location.key("blobs/killed"), file: staged + "/f0")
            _ = dropped
            let blobs = try await objects.list(prefix: a.location.key("blobs/"))
            XCTAssertEqual(blobs.map(\.key), [], "a staged upload that was never completed is invisible")
            let stored = StoredArtifact(digest: tree.digest, uri: "", size: tree.totalSize, fileCount: Int64(tree.fileCount))
            var intact = try await b.isIntact(stored)
            XCTAssertFalse(intact, "no manifest, no artifact")
            var path = try await b.localPath(of: tree.digest)
            XCTAssertNil(path)
            _ = try await a.publish(stagedDirectory: staged)
            intact = try await b.isIntact(stored)
            XCTAssertTrue(intact)
            path = try await b.localPath(of: tree.digest)
            XCTAssertEqual(try TreeDigest.compute(root: try XCTUnwrap(path)).digest, tree.digest)
        }
    }

    /// A remote object whose bytes changed (same size) is detected on download and never served.
    func testCorruptedRemoteObjectIsRefused() async throws {
        for objects in [try await Servers.gcs() as any ObjectStore, try await Servers.moto()] {
            let (a, b, root) = try machines(objects)
            defer { try? FileTree.remove(root) }
            let staged = try a.makeStagingDirectory(label: "out")
            try write(staged, ["data/a.bin": Data("aaaa".utf8), "data/b.bin": Data("bbbb".utf8)])
            let stored = try await a.publish(stagedDirectory: staged)
            try await objects.put(a.location.key("sha256/\(stored.digest.hex.prefix(2))/\(stored.digest.hex)/data/b.bin"), data: Data("XXXX".utf8))
            do {
                _ = try await b.localPath(of: stored.digest)
                XCTFail("a corrupted artifact must not be served")
            } catch {
                XCTAssertTrue("\(error)".contains("corrupted") && "\(error)".contains("data/b.bin"), "\(error)")
            }
            XCTAssertNil(b.cache.lookup(stored.digest), "nothing corrupted enters the cache")
            XCTAssertEqual(try FileTree.childNames(of: b.cache.stagingRoot), [], "the failed download is cleaned up")
            // Truncated to another size: also refused.
            try await objects.put(a.location.key("sha256/\(stored.digest.hex.prefix(2))/\(stored.digest.hex)/data/b.bin"), data: Data("X".utf8))
            do {
                _ = try await b.localPath(of: stored.digest)
                XCTFail("a truncated artifact must not be served")
            } catch {
                XCTAssertTrue("\(error)".contains("corrupted"), "\(error)")
            }
        }
    }

    /// The cache keeps the most recently used artifacts within its bound.
    func testCacheEvictsLeastRecentlyUsed() async throws {
        let objects = try await Servers.gcs()
        let (a, _, root) = try machines(objects, maxCache: 2500)
        defer { try? FileTree.remove(root) }
        var digests: [Digest] = []
        for index in 0..<3 {
            let staged = try a.makeStagingDirectory(label: "out")
            try write(staged, ["blob": Servers.randomData(1000 + index)])
            digests.append(try await a.publish(stagedDirectory: staged).digest)
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertNil(a.cache.lookup(digests[0]), "the oldest went")
        XCTAssertNotNil(a.cache.lookup(digests[1]))
        XCTAssertNotNil(a.cache.lookup(digests[2]))
        // An evicted artifact comes back from the bucket.
        let path = try await a.localPath(of: digests[0])
        XCTAssertNotNil(path)
        XCTAssertEqual(try a.cache.entries().map(\.digest).last, digests[0])
        let pruned = try a.cache.prune(to: 0)
        XCTAssertEqual(pruned.removed, 2)
        XCTAssertEqual(try a.cache.entries().count, 0)
    }
}

final class ArtifactCacheTests: XCTestCase {
    func testAbandonedStagingOfDeadProcessesIsRemoved() throws {
        let root = try Servers.temporaryDirectory()
        defer { try? FileTree.remove(root) }
        let cache = try ArtifactCache(root: root + "/cache", stagingRoot: root + "/tmp")
        let mine = try cache.makeStagingDirectory(label: "fetch")
        // A pid that cannot be alive (above the kernel's pid_max).
        try FileTree.makeDirectory(root + "/tmp/fetch~99999999~abc")
        XCTAssertEqual(cache.removeAbandonedStaging(), 1)
        XCTAssertEqual(try FileTree.childNames(of: root + "/tmp"), [(mine as NSString).lastPathComponent])
    }
}
