import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLBundles

final class RegistryTests: XCTestCase {
    var base = ""

    override func setUpWithError() throws { base = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileTree.remove(base) }

    func bundle(_ name: String, version: String, body: String = "print(1)\n") throws -> String {
        let root = base + "/src/\(name)-\(version)-\(UUID().uuidString)"
        try write("name: \(name)\nversion: \"\(version)\"\nentrypoint: main.py\n", to: root + "/step.yaml")
        try write(body, to: root + "/main.py", mode: 0o755)
        return root
    }

    func testPublishPullAndOverwriteRules() async throws {
        let registry = BundleRegistry(name: "team", storage: FolderRegistryStorage(root: base + "/registry"))
        let source = try bundle("clean", version: "1.2.0")
        let (record, new) = try await registry.publish(bundle: source, staging: base + "/staging")
        XCTAssertTrue(new)
        XCTAssertEqual(record.digest, try BundleArchive.digest(of: BundleArchive.entries(of: source)))
        XCTAssertNotNil(try FileStatus.of(base + "/registry/blobs/sha256/\(record.digest.hex).tar"), "archives are kept by digest")
        XCTAssertNotNil(try FileStatus.of(base + "/registry/bundles/clean/1.2.0.json"))

        // Same content again: a no-op.
        let again = try await registry.publish(bundle: try bundle("clean", version: "1.2.0"), staging: base + "/staging")
        XCTAssertFalse(again.1)
        XCTAssertEqual(again.0, record)
        // Other content under the same version: refused, the published one untouched.
        await assertThrowsAsync({ try await registry.publish(bundle: try bundle("clean", version: "1.2.0", body: "print(2)\n"), staging: base + "/staging") }) { error in
            XCTAssertTrue("\(error)".contains("already published in registry 'team' with other content"), "\(error)")
            XCTAssertTrue("\(error)".contains("raise 'version:'"), "\(error)")
        }
        XCTAssertEqual(try Digest.ofFile(atPath: base + "/registry/blobs/sha256/\(record.digest.hex).tar"), record.digest)

        _ = try await registry.publish(bundle: try bundle("clean", version: "1.3.1", body: "print(3)\n"), staging: base + "/staging")
        _ = try await registry.publish(bundle: try bundle("clean", version: "2.0.0", body: "print(4)\n"), staging: base + "/staging")
        _ = try await registry.publish(bundle: try bundle("clean", version: "1.10.0", body: "print(5)\n"), staging: base + "/staging")
        let value1 = try await registry.versions(of: "clean")
        XCTAssertEqual(value1, ["1.2.0", "1.3.1", "1.10.0", "2.0.0"])
        let value2 = try await registry.names()
        XCTAssertEqual(value2, ["clean"])
        let value3 = try await registry.resolve(BundleReference("clean@^1.2"))
        XCTAssertEqual(value3?.version, "1.10.0")
        let value4 = try await registry.resolve(BundleReference("clean@~1.3"))
        XCTAssertEqual(value4?.version, "1.3.1")
        let value5 = try await registry.resolve(BundleReference("clean@>=1.0,<1.5"))
        XCTAssertEqual(value5?.version, "1.3.1")
        let value6 = try await registry.resolve(BundleReference("clean@1.2.0"))
        XCTAssertEqual(value6?.version, "1.2.0")
        let value7 = try await registry.resolve(BundleReference("clean@\(record.digest)"))
        XCTAssertEqual(value7?.version, "1.2.0")
        let value8 = try await registry.resolve(BundleReference("clean@^3"))
        XCTAssertNil(value8)

        let cache = BundleCache(root: base + "/cache")
        let folder = try await registry.pull(record, into: cache, trust: TrustPolicy())
        XCTAssertEqual(folder, base + "/cache/" + record.digest.hex)
        XCTAssertEqual(try BundleArchive.digest(of: BundleArchive.entries(of: folder)), record.digest)

        // A registry copy altered after publishing is refused at pull.
        let value9 = try await registry.metadata(of: "clean", version: "1.3.1")
        let altered = try XCTUnwrap(value9)
        let blob = base + "/registry/blobs/sha256/\(altered.digest.hex).tar"
        var bytes = try FileTree.read(blob)
        bytes[600] ^= 1
        try FileTree.writeAtomically(bytes, to: blob)
        await assertThrowsAsync({ try await registry.pull(altered, into: cache, trust: TrustPolicy()) }) { error in
            XCTAssertTrue("\(error)".contains("damaged or was altered"), "\(error)")
        }
        XCTAssertNil(try cache.folder(for: altered.digest))
    }

    func testSignaturesAreAcceptedAndRefused() async throws {
        let registry = BundleRegistry(name: "secure", storage: FolderRegistryStorage(root: base + "/registry"))
        let publicKey = try BundleSigning.generateKey(at: base + "/alice")
        XCTAssertEqual(try FileStatus.of(base + "/alice")?.mode, 0o600)
        let otherKey = try BundleSigning.generateKey(at: base + "/mallory")
        let alice = try BundleSigning.loadPrivateKey(base + "/alice")
        let mallory = try BundleSigning.loadPrivateKey(base + "/mallory")
        XCTAssertEqual(try BundleSigning.publicKey(base + "/alice.pub"), publicKey)

        try await registry.setPolicy(RegistryPolicy(requireSignatures: true, trustedKeys: [publicKey]))
        await assertThrowsAsync({ try await registry.publish(bundle: try bundle("s", version: "1.0.0"), staging: base + "/staging") }) { error in
            XCTAssertTrue("\(error)".contains("accepts only bundles signed by its trusted keys"), "\(error)")
        }
        await assertThrowsAsync({ try await registry.publish(bundle: try bundle("s", version: "1.0.0"), signingKey: mallory, staging: base + "/staging") }) { error in
            XCTAssertTrue("\(error)".contains("signed only by untrusted keys"), "\(error)")
        }
        let (record, _) = try await registry.publish(bundle: try bundle("s", version: "1.0.0"), signingKey: alice, staging: base + "/staging")
        XCTAssertEqual(record.signatures.count, 1)
        XCTAssertTrue(BundleSigning.isValid(record.signatures[0], for: record.digest))

        let cache = BundleCache(root: base + "/cache")
        _ = try await registry.pull(record, into: cache, trust: TrustPolicy())

        // A signature moved onto other content does not verify: tampering is refused by name.
        var forged = record
        forged.digest = Digest.of("other")
        await assertThrowsAsync({ try await registry.pull(forged, into: cache, trust: TrustPolicy()) }) { error in
            XCTAssertTrue("\(error)".contains("does not match its content"), "\(error)")
        }
        // A workspace that requires signatures by a key nobody used refuses, naming the fix.
        let open = BundleRegistry(name: "open", storage: FolderRegistryStorage(root: base + "/open"))
        let (unsigned, _) = try await open.publish(bundle: try bundle("u", version: "1.0.0"), staging: base + "/staging")
        await assertThrowsAsync({ try await open.pull(unsigned, into: cache, trust: TrustPolicy(requireSignatures: true, trustedKeys: [otherKey])) }) { error in
            XCTAssertTrue("\(error)".contains("is not signed, and signatures are required"), "\(error)")
        }
        await assertThrowsAsync({ try await open.pull(unsigned, into: cache, trust: TrustPolicy(requireSignatures: true)) }) { error in
            XCTAssertTrue("\(error)".contains("config trust add"), "\(error)")
        }
        // Signing after publishing adds the signature to the record.
        let signed = try await open.addSignatures([try BundleSigning.sign(unsigned.digest, with: mallory)], to: unsigned)
        _ = try await open.pull(signed, into: cache, trust: TrustPolicy(requireSignatures: true, trustedKeys: [otherKey]))
        let value11 = try await open.metadata(of: "u", version: "1.0.0")
        XCTAssertEqual(value11?.signatures.count, 1)
        await assertThrowsAsync({ try await open.addSignatures([try BundleSigning.sign(Digest.of("x"), with: mallory)], to: unsigned) })
    }

    func testConcurrentPublishersOfOneVersionInAFolder() async throws {
        let registry = BundleRegistry(name: "team", storage: FolderRegistryStorage(root: base + "/registry"))
        for round in 0..<5 {
            let red = try bundle("race\(round)", version: "1.0.0", body: "print('red')\n")
            let blue = try bundle("race\(round)", version: "1.0.0", body: "print('blue')\n")
            let staging = base + "/staging"
            async let first = outcome { try await registry.publish(bundle: red, staging: staging) }
            async let second = outcome { try await registry.publish(bundle: blue, staging: staging) }
            let outcomes = await [first, second]
            let winners = outcomes.compactMap { try? $0.get() }
            XCTAssertEqual(winners.count, 1, "round \(round): \(outcomes)")
            let stored = try await registry.metadata(of: "race\(round)", version: "1.0.0")
            XCTAssertEqual(stored, winners.first?.0)
        }
    }

    func testLockFileRoundTripIsDeterministic() throws {
        let digest = Digest.of("bundle")
        var lock = LockFile()
        lock.bundles["clean@^1.2"] = .init(name: "clean", version: "1.3.1", digest: digest, registry: "team")
        lock.bundles["a@1.0.0"] = .init(name: "a", version: "1.0.0", digest: digest, registry: "team")
        let path = base + "/zenml.lock"
        try lock.save(path)
        XCTAssertEqual(try LockFile.load(path), lock)
        let text = String(decoding: try FileTree.read(path), as: UTF8.self)
        XCTAssertTrue(text.hasSuffix("}\n"))
        XCTAssertLessThan(text.range(of: "a@1.0.0")!.lowerBound, text.range(of: "clean@^1.2")!.lowerBound, "sorted keys")
        var copy = LockFile()
        copy.bundles = lock.bundles
        XCTAssertEqual(copy.data, lock.data)
        XCTAssertFalse(text.contains("\"local\""), "no local pins, no key: lock files of earlier builds keep their bytes")

        let withLocal = LockFile(bundles: lock.bundles, local: ["steps/clean": .init(path: "steps/clean", digest: Digest.of("local"))])
        try withLocal.save(path)
        XCTAssertEqual(try LockFile.load(path), withLocal)
        XCTAssertTrue(String(decoding: try FileTree.read(path), as: UTF8.self).contains("\"path\" : \"steps/clean\""))
        XCTAssertNil(try LockFile.load(base + "/none.lock"))
        try write("{\"lock_version\": 9, \"bundles\": {}}", to: base + "/future.lock")
        XCTAssertThrowsError(try LockFile.load(base + "/future.lock"))
    }

    func testReferencesAndRanges() throws {
        XCTAssertEqual(try BundleReference("./steps/clean"), .path("./steps/clean"))
        XCTAssertEqual(try BundleReference("steps/clean@1"), .path("steps/clean@1"))
        XCTAssertEqual(try BundleReference("clean"), .path("clean"))
        guard case .version(let name, let range) = try BundleReference("clean@^1.2") else { return XCTFail() }
        XCTAssertEqual(name, "clean")
        let check = { (text: String) in range.contains(SemanticVersion(text)!) }
        XCTAssertTrue(check("1.2.0")); XCTAssertTrue(check("1.9.9")); XCTAssertFalse(check("2.0.0")); XCTAssertFalse(check("1.1.9"))
        XCTAssertFalse(check("1.5.0-beta"), "prereleases only when named")
        XCTAssertTrue(VersionRange("^0.2")!.contains(SemanticVersion("0.2.5")!))
        XCTAssertFalse(VersionRange("^0.2")!.contains(SemanticVersion("0.3.0")!))
        XCTAssertTrue(VersionRange("1.0.0-rc.1")!.contains(SemanticVersion("1.0.0-rc.1")!))
        XCTAssertTrue(SemanticVersion("1.0.0-rc.1")! < SemanticVersion("1.0.0")!)
        XCTAssertTrue(SemanticVersion("1.0.0-rc.2")! < SemanticVersion("1.0.0-rc.10")!)
        XCTAssertEqual(VersionRange("*")!.best(of: ["1.0.0", "0.9.0", "junk"]), "1.0.0")
        XCTAssertThrowsError(try BundleReference("clean@banana"))
        XCTAssertThrowsError(try BundleReference("Bad Name@1.0.0"))
        XCTAssertThrowsError(try BundleReference("clean@sha256:abc"))
    }
}

/// `XCTAssertThrowsError` for async expressions.
func assertThrowsAsync<T>(_ body: () async throws -> T, file: StaticString = #filePath, line: UInt = #line, _ check: (Error) -> Void = { _ in }) async {
    do {
        _ = try await body()
        XCTFail("expected an error", file: file, line: line)
    } catch {
        check(error)
    }
}
