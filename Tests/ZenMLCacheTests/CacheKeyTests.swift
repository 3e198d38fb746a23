import XCTest
import ZenMLCore
@testable import ZenMLCache
import ZenMLBundles

final class CacheKeyTests: XCTestCase {
    let bundle = Digest.of("bundle")
    let input = Digest.of("input")

    func action() -> StepAction {
        StepAction(bundleDigest: bundle, entrypoint: "main.py", args: ["--fast"], config: ["rate": 0.5, "layers": [64, 32]], inputs: ["examples": [input]], environment: ["SEED": Digest.of("1")])
    }

    func testKeyIsStable() {
        // Golden: the documented canonical form. A change here invalidates every user's cache.
        let expected = Digest.of(#"{"args":["--fast"],"bundle":"\#(bundle)","config":{"layers":[64,32],"rate":0.5},"contract":1,"entrypoint":"main.py","env":{"SEED":"\#(Digest.of("1"))"},"inputs":{"examples":["\#(input)"]}}"#)
        XCTAssertEqual(action().key, expected)
        XCTAssertEqual(action().key, action().key)
    }

    func testKeyIsSensitiveToEachIngredient() {
        let base = action().key
        var changed = action(); changed.bundleDigest = Digest.of("other")
        XCTAssertNotEqual(changed.key, base, "bundle")
        changed = action(); changed.entrypoint = "train.py"
        XCTAssertNotEqual(changed.key, base, "entrypoint")
        changed = action(); changed.args = []
        XCTAssertNotEqual(changed.key, base, "args")
        changed = action(); changed.config["rate"] = 0.25
        XCTAssertNotEqual(changed.key, base, "config value")
        changed = action(); changed.config["layers"] = [32, 64]
        XCTAssertNotEqual(changed.key, base, "order inside a config array")
        changed = action(); changed.inputs["examples"] = [Digest.of("x")]
        XCTAssertNotEqual(changed.key, base, "input digest")
        changed = action(); changed.inputs["examples"] = [input, input]
        XCTAssertNotEqual(changed.key, base, "number of inputs")
        changed = action(); changed.environment["SEED"] = Digest.of("2")
        XCTAssertNotEqual(changed.key, base, "declared environment")
        changed = action(); changed.config = ["layers": [64, 32], "rate": 0.5]
        XCTAssertEqual(changed.key, base, "config key order does not matter")
        changed = action(); changed.config["rate"] = .double(0.5)
        XCTAssertEqual(changed.key, base)
    }

    func testSeedIsExactInEveryLanguage() {
        let seed = StepAction.seed(for: action().key)
        XCTAssertLessThan(seed, 1 << 53)
        XCTAssertEqual(seed, StepAction.seed(for: action().key))
    }

    func testChangesAreExplained() {
        let old = KeyIngredients(action: action(), bundleFiles: ["main.py": "sha256:a", "util.py": "sha256:b", "old.py": "sha256:c"], externalPaths: [:])
        var newAction = action()
        newAction.bundleDigest = Digest.of("new")
        newAction.config["rate"] = 0.1
        newAction.config["data"] = "sha256:feed"
        newAction.inputs["examples"] = [Digest.of("y")]
        newAction.environment = [:]
        let new = KeyIngredients(action: newAction, bundleFiles: ["main.py": "sha256:a+x", "util.py": "sha256:z", "new.py": "sha256:d"], externalPaths: ["data": "/data/train.csv"])
        let changes = new.changes(since: old.json)
        XCTAssertEqual(changes, [
            "bundle file main.py changed mode", "bundle file new.py added", "bundle file old.py removed", "bundle file util.py changed",
            "config key data: content of /data/train.csv changed", "config key rate: 0.5 -> 0.1", "input examples changed",
            "environment variable SEED changed",
        ])
        XCTAssertEqual(old.changes(since: old.json), [])
    }
}

final class StatCacheTests: XCTestCase {
    func testRemembersSettledFilesAndNoticesChanges() throws {
        let directory = NSTemporaryDirectory() + "stat-\(UUID().uuidString)"
        try FileTree.makeDirectory(directory)
        defer { try? FileTree.remove(directory) }
        let file = directory + "/data.csv"
        try Data("a,b\n1,2\n".utf8).write(to: URL(fileURLWithPath: file))
        var old = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        utimensat(AT_FDCWD, file, &old, 0)
        let cachePath = directory + "/cache.json"

        let cache = StatCache(file: cachePath)
        let status = try XCTUnwrap(FileStatus.of(file))
        let digest = try cache.digest(ofFileAtPath: file, status: status)
        XCTAssertEqual(digest, Digest.of(Data("a,b\n1,2\n".utf8)))
        try cache.save()

        // A lie in the cache proves the digest is served from it while the file looks the same.
        var stored = try JSONDecoder().decode([String: StatCache.Entry].self, from: Data(contentsOf: URL(fileURLWithPath: cachePath)))
        stored[file]?.digest = Digest.of("remembered")
        try JSONEncoder().encode(stored).write(to: URL(fileURLWithPath: cachePath))
        let reloaded = StatCache(file: cachePath)
        XCTAssertEqual(try reloaded.digest(ofFileAtPath: file, status: status), Digest.of("remembered"))

        // Any change of content (same size, same mtime restored) changes ctime, so it is re-hashed.
        try Data("a,b\n1,3\n".utf8).write(to: URL(fileURLWithPath: file))
        utimensat(AT_FDCWD, file, &old, 0)
        let changed = try XCTUnwrap(FileStatus.of(file))
        XCTAssertEqual(try reloaded.digest(ofFileAtPath: file, status: changed), Digest.of(Data("a,b\n1,3\n".utf8)))
    }

    func testFreshlyWrittenFilesAreNotRemembered() throws {
        let directory = NSTemporaryDirectory() + "stat-\(UUID().uuidString)"
        try FileTree.makeDirectory(directory)
        defer { try? FileTree.remove(directory) }
        let file = directory + "/new.txt"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let cache = StatCache(file: directory + "/cache.json")
        _ = try cache.digest(ofFileAtPath: file, status: try XCTUnwrap(FileStatus.of(file)))
        try cache.save()
        let stored = try JSONDecoder().decode([String: StatCache.Entry].self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/cache.json")))
        XCTAssertNil(stored[file], "a file modified in the last two seconds could change again within the clock's resolution")
    }
}

final class BundleDigestTests: XCTestCase {
    /// The bundle digest is the archive's SHA-256; a second process with the persisted stat cache
    /// and memo must get it without reading any file (proved by a lie planted in the memo).
    func testBundleDigestIsTheArchiveDigestAndRepeatedRunsReadNothing() throws {
        let directory = NSTemporaryDirectory() + "bundle-digest-\(UUID().uuidString)"
        defer { try? FileTree.remove(directory) }
        let bundle = directory + "/bundle"
        try FileTree.makeDirectory(bundle + "/lib")
        var old = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        for index in 0..<1000 {
            let file = bundle + "/lib/module\(index).py"
            try FileTree.writeAtomically(Data("value = \(index)\n".utf8), to: file)
            utimensat(AT_FDCWD, file, &old, 0)
        }
        let cachePath = directory + "/cache/stat-cache.json"

        var clock = ContinuousClock.now
        let cold = Fingerprinter(statCache: StatCache(file: cachePath))
        let first = try cold.bundle(at: bundle)
        let coldTime = ContinuousClock.now - clock
        try cold.save()
        XCTAssertEqual(first.digest, try BundleArchive.digest(of: BundleArchive.entries(of: bundle)))
        XCTAssertEqual(first.files.count, 1000)

        clock = ContinuousClock.now
        let warm = Fingerprinter(statCache: StatCache(file: cachePath))
        XCTAssertEqual(try warm.bundle(at: bundle).digest, first.digest)
        let warmTime = ContinuousClock.now - clock

        clock = ContinuousClock.now
        _ = try TreeDigest.compute(root: bundle, hasher: StatCache(file: cachePath), excluding: Fingerprinter.excludedBundleNames)
        let treeTime = ContinuousClock.now - clock
        print("1,000-file bundle digest: cold \(coldTime), warm (new process) \(warmTime); the former tree digest, warm: \(treeTime)")

        // Plant a lie in the memo: a warm fingerprinter must serve it, so it did not stream the files.
        let memoPath = directory + "/cache/bundle-digests.json"
        var memo = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: memoPath)))
        XCTAssertEqual(memo.count, 1)
        memo[memo.keys.first!] = Digest.of("remembered").hex
        try JSONEncoder().encode(memo).write(to: URL(fileURLWithPath: memoPath))
        XCTAssertEqual(try Fingerprinter(statCache: StatCache(file: cachePath)).bundle(at: bundle).digest, Digest.of("remembered"))

        // Any change to a file gives a new listing, hence a fresh, true digest.
        try Data("value = -1\n".utf8).write(to: URL(fileURLWithPath: bundle + "/lib/module7.py"))
        let changed = try Fingerprinter(statCache: StatCache(file: cachePath)).bundle(at: bundle)
        XCTAssertEqual(changed.digest, try BundleArchive.digest(of: BundleArchive.entries(of: bundle)))
        XCTAssertNotEqual(changed.digest, first.digest)
    }
}
