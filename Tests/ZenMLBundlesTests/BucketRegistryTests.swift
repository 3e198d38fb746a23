import Foundation
import XCTest
import ZenMLCore
import ZenMLObjectStore
@testable import ZenMLBundles

/// Registries in buckets on the real emulators `scripts/services/` starts on 127.0.0.1: the GCS
/// emulator (ignores `ifGenerationMatch`), moto (honours `If-None-Match: *`) and OpenStack Swift's
/// s3api (verifies SigV4; refuses conditional PUTs with 501). Each test uses its own bucket.
final class BucketRegistryTests: XCTestCase {
    var base = ""

    override func setUpWithError() throws { base = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileTree.remove(base) }

    enum Backend: CaseIterable { case gcs, moto, swift }

    struct Unavailable: Error, CustomStringConvertible { var description: String }

    /// Runs `scripts/services/<script> start` and returns the port it prints.
    static func startService(_ script: String) throws -> Int {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let log = "/tmp/zenml-bundles-test-\(script).log"
        let output = shell("'\(repository)/scripts/services/\(script)' start 2>\(log)")
        // A missing server is a broken test setup, not a reason to pass quietly.
        guard let port = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Unavailable(description: "could not start \(script): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return port
    }

    /// A shell command's output (popen: the shell is reaped by pclose, not by Foundation).
    static func shell(_ command: String) -> String {
        guard let pipe = popen(command, "r") else { return "" }
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, pipe)
            if count <= 0 { break }
            output.append(contentsOf: buffer[0..<count])
        }
        pclose(pipe)
        return String(decoding: output, as: UTF8.self)
    }

    /// A fresh bucket on the backend's server.
    func objectStore(_ backend: Backend) async throws -> any ObjectStore {
        let bucket = "zenml-reg-\(UUID().uuidString.prefix(8).lowercased())"
        switch backend {
        case .gcs:
            let store = GCSObjectStore(bucket: bucket, endpoint: "http://127.0.0.1:\(try Self.startService("gcs-emulator.sh"))", credentials: .none)
            try await store.createBucket()
            return store
        case .moto:
            let store = S3ObjectStore(bucket: bucket, endpoint: "http://127.0.0.1:\(try Self.startService("s3-moto.sh"))",
                                      credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing"))
            try await store.createBucket()
            return store
        case .swift:
            let store = S3ObjectStore(bucket: bucket, endpoint: "http://127.0.0.1:\(try Self.startService("swift-s3.sh"))",
                                      credentials: S3Credentials(accessKeyID: "test:tester", secretAccessKey: "testing"))
            try await store.createBucket()
            return store
        }
    }

    func registry(_ backend: Backend, readBackDelay: Duration = .milliseconds(300)) async throws -> BundleRegistry {
        let objects = try await objectStore(backend)
        let root = try ObjectStoreLocation(parsing: objects.bucketURL + "/team/registry")
        return BundleRegistry(name: "team", storage: BucketRegistryStorage(objects: objects, root: root, readBackDelay: readBackDelay))
    }

    func bundle(_ name: String, version: String, body: String) throws -> String {
        let root = base + "/src/\(name)-\(version)-\(UUID().uuidString)"
        try write("name: \(name)\nversion: \"\(version)\"\nentrypoint: main.py\n", to: root + "/step.yaml")
        try write(body, to: root + "/main.py", mode: 0o755)
        return root
    }

    func testPublishPullListAndOverwriteOnEveryBackend() async throws {
        for backend in Backend.allCases {
            let registry = try await registry(backend)
            let storage = try XCTUnwrap(registry.storage as? BucketRegistryStorage)
            let (record, new) = try await registry.publish(bundle: try bundle("clean", version: "1.2.0", body: "print(1)\n"), staging: base + "/staging")
            XCTAssertTrue(new, "\(backend)")
            XCTAssertNotNil(record.publishID)
            // The layout, under the prefix: the archive by digest, the version record by name.
            let head = try await storage.objects.head("team/registry/blobs/sha256/\(record.digest.hex).tar")
            XCTAssertEqual(head?.size, record.size, "\(backend)")
            let recordHead = try await storage.objects.head("team/registry/bundles/clean/1.2.0.json")
            XCTAssertNotNil(recordHead, "\(backend)")

            // The same content again: a no-op; other content under the version: refused, nothing changed.
            let again = try await registry.publish(bundle: try bundle("clean", version: "1.2.0", body: "print(1)\n"), staging: base + "/staging")
            XCTAssertFalse(again.1, "\(backend)")
            XCTAssertEqual(again.0, record, "\(backend)")
            await assertThrowsAsync({ try await registry.publish(bundle: try self.bundle("clean", version: "1.2.0", body: "print(2)\n"), staging: self.base + "/staging") }) { error in
                XCTAssertTrue("\(error)".contains("already published in registry 'team' with other content"), "\(backend): \(error)")
            }
            let unchanged = try await registry.metadata(of: "clean", version: "1.2.0")
            XCTAssertEqual(unchanged, record, "\(backend)")

            _ = try await registry.publish(bundle: try bundle("clean", version: "1.10.0", body: "print(3)\n"), staging: base + "/staging")
            _ = try await registry.publish(bundle: try bundle("split", version: "0.1.0", body: "print(4)\n"), staging: base + "/staging")
            let names = try await registry.names()
            XCTAssertEqual(names, ["clean", "split"], "\(backend)")
            let versions = try await registry.versions(of: "clean")
            XCTAssertEqual(versions, ["1.2.0", "1.10.0"], "\(backend)")
            let best = try await registry.resolve(BundleReference("clean@^1.2"))
            XCTAssertEqual(best?.version, "1.10.0", "\(backend)")
            let byDigest = try await registry.resolve(BundleReference("clean@\(record.digest)"))
            XCTAssertEqual(byDigest?.version, "1.2.0", "\(backend)")

            let cache = BundleCache(root: base + "/cache-\(backend)")
            let folder = try await registry.pull(record, into: cache, trust: TrustPolicy())
            XCTAssertEqual(try BundleArchive.digest(of: BundleArchive.entries(of: folder)), record.digest, "\(backend)")
            XCTAssertEqual(try String(contentsOfFile: folder + "/main.py", encoding: .utf8), "print(1)\n")

            // An archive altered in the bucket is refused at pull, and nothing is cached.
            let split = try await registry.metadata(of: "split", version: "0.1.0")
            let altered = try XCTUnwrap(split)
            let blobKey = "team/registry/blobs/sha256/\(altered.digest.hex).tar"
            let path = base + "/altered-\(backend).tar"
            _ = try await storage.objects.get(blobKey, to: path)
            var bytes = try FileTree.read(path)
            bytes[600] ^= 1
            try await storage.objects.put(blobKey, data: bytes)
            await assertThrowsAsync({ try await registry.pull(altered, into: cache, trust: TrustPolicy()) }) { error in
                XCTAssertTrue("\(error)".contains("damaged or was altered"), "\(backend): \(error)")
            }
            XCTAssertNil(try cache.folder(for: altered.digest))
        }
    }

    /// What each server does with a create-only write: the reason publishing reads back.
    func testCreateOnlyWritesAsTheServersDoThem() async throws {
        let motoStore = try await objectStore(.moto)
        let moto = try XCTUnwrap(motoStore as? any CreateOnlyObjectStore)
        let first = try await moto.create("k", data: Data("one".utf8))
        let second = try await moto.create("k", data: Data("two".utf8))
        XCTAssertEqual([first, second], [.created, .exists])
        let kept = try await moto.data("k")
        XCTAssertEqual(kept, Data("one".utf8))

        let swiftStore = try await objectStore(.swift)
        let swift = try XCTUnwrap(swiftStore as? any CreateOnlyObjectStore)
        let refused = try await swift.create("k", data: Data("one".utf8))
        XCTAssertEqual(refused, .unsupported, "Swift's s3api has no conditional PUT")
        let nothing = try await swift.data("k")
        XCTAssertNil(nothing, "a refused create writes nothing")

        let gcsStore = try await objectStore(.gcs)
        let gcs = try XCTUnwrap(gcsStore as? any CreateOnlyObjectStore)
        let created = try await gcs.create("k", data: Data("one".utf8))
        XCTAssertEqual(created, .created)
        // The emulator ignores ifGenerationMatch=0 (real GCS answers 412): whatever it says, the
        // registry must not trust it, so only "no error" is asserted here.
        _ = try await gcs.create("k", data: Data("two".utf8))
    }

    /// Two publishers of one NAME@VERSION with different content, at the same moment: exactly one
    /// wins, the other is told clearly, and a pull gets the winner's bytes (checked by digest).
    func testConcurrentPublishersOfOneVersion() async throws {
        for backend in Backend.allCases {
            for round in 0..<2 {
                let registry = try await registry(backend, readBackDelay: .milliseconds(1000))
                let red = try bundle("race", version: "1.0.0", body: "print('red')\n")
                let blue = try bundle("race", version: "1.0.0", body: "print('blue')\n")
                let staging = base + "/staging"
                async let first = outcome { try await registry.publish(bundle: red, staging: staging) }
                async let second = outcome { try await registry.publish(bundle: blue, staging: staging) }
                let outcomes = await [first, second]
                let winners = outcomes.compactMap { try? $0.get() }
                XCTAssertEqual(winners.count, 1, "\(backend) round \(round): exactly one publisher wins: \(outcomes)")
                XCTAssertEqual(winners.first?.1, true, "\(backend) round \(round)")
                for case .failure(let error) in outcomes {
                    let text = "\(error)"
                    XCTAssertTrue(text.contains("at the same moment") || text.contains("already published in registry 'team' with other content"),
                                  "\(backend) round \(round): \(text)")
                    XCTAssertTrue(text.contains("raise 'version:'"), text)
                }
                guard let winner = winners.first?.0 else { continue }
                let stored = try await registry.metadata(of: "race", version: "1.0.0")
                XCTAssertEqual(stored, winner, "\(backend) round \(round): the record is the winner's")
                let folder = try await registry.pull(winner, into: BundleCache(root: base + "/cache-\(backend)-\(round)"), trust: TrustPolicy())
                let body = try String(contentsOfFile: folder + "/main.py", encoding: .utf8)
                let expected = try BundleArchive.digest(of: BundleArchive.entries(of: body.contains("red") ? red : blue))
                XCTAssertEqual(winner.digest, expected, "\(backend) round \(round): the pulled bytes are the winner's")
            }
        }
    }
}

func outcome<T>(_ body: () async throws -> T) async -> Result<T, Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
