import XCTest
import ZenMLCore
@testable import ZenMLArtifacts

final class LocalArtifactStoreTests: XCTestCase {
    var root = ""
    var store: LocalArtifactStore!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "store-\(UUID().uuidString)"
        store = try LocalArtifactStore(root: root + "/artifacts", stagingRoot: root + "/tmp")
    }

    override func tearDownWithError() throws { try FileTree.remove(root) }

    func stage(_ files: [String: String]) throws -> String {
        let directory = try store.makeStagingDirectory(label: "out")
        for (name, content) in files {
            try FileTree.makeDirectory((directory + "/" + name as NSString).deletingLastPathComponent)
            try Data(content.utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        return directory
    }

    func testPublishIsContentAddressedReadOnlyAndDeduplicated() throws {
        let staged = try stage(["model.bin": "weights", "meta/info.json": "{}"])
        let first = try store.publish(stagedDirectory: staged)
        XCTAssertNil(try FileStatus.of(staged), "the staged directory is consumed")
        XCTAssertEqual(first.uri, store.path(of: first.digest))
        XCTAssertEqual(first.digest, try TreeDigest.compute(root: first.uri).digest)
        XCTAssertEqual(first.fileCount, 2)
        XCTAssertEqual(first.size, 9)
        XCTAssertEqual((try FileStatus.of(first.uri + "/model.bin")?.mode ?? 0) & 0o222, 0, "files are read-only")
        XCTAssertEqual((try FileStatus.of(first.uri)?.mode ?? 0) & 0o222, 0, "directories are read-only")

        let again = try store.publish(stagedDirectory: try stage(["model.bin": "weights", "meta/info.json": "{}"]))
        XCTAssertEqual(again, first, "identical content is stored once")
        XCTAssertEqual(try FileTree.childNames(of: root + "/tmp"), [], "the duplicate staging folder is removed")
        XCTAssertTrue(try store.isIntact(first))
        XCTAssertTrue(try store.verify(first.digest))
    }

    func testRepublishingReplacesADamagedCopy() throws {
        let first = try store.publish(stagedDirectory: try stage(["model.bin": "weights", "meta/info.json": "{}"]))
        chmod(first.uri + "/model.bin", 0o644)
        try Data("w".utf8).write(to: URL(fileURLWithPath: first.uri + "/model.bin"))
        XCTAssertFalse(try store.isIntact(first))

        let again = try store.publish(stagedDirectory: try stage(["model.bin": "weights", "meta/info.json": "{}"]))
        XCTAssertEqual(again, first)
        XCTAssertTrue(try store.isIntact(first), "the damaged copy was replaced")
        XCTAssertTrue(try store.verify(first.digest))
        XCTAssertEqual(try String(contentsOfFile: first.uri + "/model.bin", encoding: .utf8), "weights")
        XCTAssertEqual((try FileStatus.of(first.uri + "/model.bin")?.mode ?? 0) & 0o222, 0, "read-only again")
        XCTAssertEqual(try FileTree.childNames(of: root + "/tmp"), [], "no staging or damaged copy is left")
    }

    func testTamperingIsNoticed() throws {
        let stored = try store.publish(stagedDirectory: try stage(["a.txt": "abc"]))
        chmod(stored.uri, 0o755)
        chmod(stored.uri + "/a.txt", 0o644)
        try Data("abd".utf8).write(to: URL(fileURLWithPath: stored.uri + "/a.txt"))
        XCTAssertTrue(try store.isIntact(stored), "same size: the cheap check cannot see it")
        XCTAssertFalse(try store.verify(stored.digest), "re-hashing does")
        try Data("abcd".utf8).write(to: URL(fileURLWithPath: stored.uri + "/a.txt"))
        XCTAssertFalse(try store.isIntact(stored))
        try FileTree.remove(stored.uri)
        XCTAssertFalse(try store.isIntact(stored))
        XCTAssertNil(try store.localPath(of: stored.digest))
    }
}

final class StagingCleanupTests: XCTestCase {
    func testLeftoversOfDeadProcessesAreRemoved() throws {
        let root = NSTemporaryDirectory() + "staging-\(UUID().uuidString)"
        defer { try? FileTree.remove(root) }
        let store = try LocalArtifactStore(root: root + "/artifacts", stagingRoot: root + "/tmp")
        let mine = try store.makeStagingDirectory(label: "train")
        // A pid far above pid_max is never alive.
        let dead = root + "/tmp/train~\(LocalArtifactStore.hostName)~99999999~abc"
        let otherMachine = root + "/tmp/train~another-host~99999999~abc"
        try FileTree.makeDirectory(dead + "/outputs")
        try FileTree.makeDirectory(otherMachine)
        try FileTree.makeDirectory(root + "/tmp/unrelated")
        XCTAssertEqual(store.removeAbandonedStaging(), 1)
        XCTAssertNotNil(try FileStatus.of(mine), "a live process's staging folder stays")
        XCTAssertNotNil(try FileStatus.of(otherMachine), "another machine's folder in a shared store stays")
        XCTAssertNotNil(try FileStatus.of(root + "/tmp/unrelated"))
        XCTAssertNil(try FileStatus.of(dead))
    }
}
