import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLBundles

/// A fresh folder per test, removed afterwards.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "zenml-bundles-\(UUID().uuidString)"
    try FileTree.makeDirectory(path)
    return path
}

func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
    try FileTree.makeDirectory((path as NSString).deletingLastPathComponent)
    try FileTree.writeAtomically(Data(text.utf8), to: path)
    chmod(path, mode)
}

/// Runs a Python script (the reference tar implementation, to read and to forge archives).
@discardableResult
func python(_ script: String, _ arguments: [String] = []) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "python failed")
    return String(decoding: data, as: UTF8.self)
}

/// A small bundle with a subfolder, an executable, a link inside and a link to a shared SDK file outside.
func makeBundle(at root: String, sdk: String) throws {
    try write("name: demo\nversion: \"1.0.0\"\nentrypoint: main.py\n", to: root + "/step.yaml")
    try write("#!/usr/bin/env python3\nprint('hi')\n", to: root + "/main.py", mode: 0o700)
    try write("data\n", to: root + "/lib/data.txt", mode: 0o600)
    try write(String(repeating: "long name ", count: 5), to: root + "/lib/" + String(repeating: "n", count: 120) + ".txt")
    XCTAssertEqual(symlink("lib/data.txt", root + "/alias.txt"), 0)
    XCTAssertEqual(symlink(sdk, root + "/zenml_step.py"), 0)
    try write("cache", to: root + "/__pycache__/main.cpython-311.pyc")
}

final class BundleArchiveTests: XCTestCase {
    func testPackingIsByteIdenticalAcrossFoldersAndUmasks() throws {
        let base = try temporaryDirectory()
        defer { try? FileTree.remove(base) }
        try write("SDK = 1\n", to: base + "/shared/zenml_step.py")
        let old = umask(0o077)
        try makeBundle(at: base + "/one/demo", sdk: "../shared/zenml_step.py")
        umask(0o002)
        try makeBundle(at: base + "/two/deeper/other-name", sdk: base + "/shared/zenml_step.py")
        // Different timestamps too.
        var times = [timespec(tv_sec: 12345, tv_nsec: 0), timespec(tv_sec: 12345, tv_nsec: 0)]
        utimensat(AT_FDCWD, base + "/two/deeper/other-name/main.py", &times, 0)
        umask(old)
        // The outside link is relative in one bundle (../shared is two levels up there, so fix it up).
        unlink(base + "/one/demo/zenml_step.py")
        XCTAssertEqual(symlink("../../shared/zenml_step.py", base + "/one/demo/zenml_step.py"), 0)

        let first = try BundleArchive.pack(base + "/one/demo", to: base + "/one.tar")
        let second = try BundleArchive.pack(base + "/two/deeper/other-name", to: base + "/two.tar")
        XCTAssertEqual(first, second)
        XCTAssertEqual(try FileTree.read(base + "/one.tar"), try FileTree.read(base + "/two.tar"))
        XCTAssertEqual(Digest.of(try FileTree.read(base + "/one.tar")), first, "the digest is the archive's SHA-256")
        // Streaming digest == written archive's digest.
        XCTAssertEqual(try BundleArchive.digest(of: BundleArchive.entries(of: base + "/one/demo")), first)

        // Read by Python's tarfile: names, modes, owners, times, link kinds.
        let listing = try python("""
            import sys, tarfile
            with tarfile.open(sys.argv[1]) as t:
                for m in t.getmembers():
                    kind = 'd' if m.isdir() else 'l' if m.issym() else 'f'
                    print(kind, oct(m.mode), m.uid, m.gid, repr(m.uname), repr(m.gname), m.mtime, m.name, m.linkname)
            """, [base + "/one.tar"])
        let lines = listing.split(separator: "\n").map(String.init)
        let longName = "lib/" + String(repeating: "n", count: 120) + ".txt"
        XCTAssertEqual(lines, [
            "l 0o777 0 0 '' '' 0 alias.txt lib/data.txt",
            "d 0o755 0 0 '' '' 0 lib ",
            "f 0o644 0 0 '' '' 0 lib/data.txt ",
            "f 0o644 0 0 '' '' 0 \(longName) ",
            "f 0o755 0 0 '' '' 0 main.py ",
            "f 0o644 0 0 '' '' 0 step.yaml ",
            "f 0o644 0 0 '' '' 0 zenml_step.py ",
        ])
    }

    /// The same tree as `make_sharing_bundle` in protocol/tests/test_digests.py: the Python
    /// reference writes the same archive bytes, so both check this value.
    func testGoldenDigestSharedWithThePythonReference() throws {
        let base = try temporaryDirectory()
        defer { try? FileTree.remove(base) }
        let root = base + "/example"
        try write("#!/bin/sh\necho hi\n", to: root + "/run.sh", mode: 0o755)
        try write("hello\n", to: root + "/data/a.txt")
        try write("SDK\n", to: base + "/shared/sdk.py")
        XCTAssertEqual(symlink("../shared/sdk.py", root + "/sdk.py"), 0)
        XCTAssertEqual(symlink("data/a.txt", root + "/alias"), 0)
        try write("x", to: root + "/" + String(repeating: "d", count: 60) + "/" + String(repeating: "f", count: 60))
        try write("name: example\nversion: \"1.0.0\"\nentrypoint: run.sh\n", to: root + "/step.yaml")
        XCTAssertEqual(
            try BundleArchive.digest(of: BundleArchive.entries(of: root)).description,
            "sha256:ea8ad3a1c928ca33f5884f96ff7d1aa690cb2e8fc6cdcf72b1431f039ca88429")
    }

    func testContentModeAndNamesChangeTheDigestButTimesDoNot() throws {
        let base = try temporaryDirectory()
        defer { try? FileTree.remove(base) }
        try write("a", to: base + "/b/f.txt")
        let digest = { try BundleArchive.digest(of: BundleArchive.entries(of: base + "/b")) }
        let original = try digest()
        var times = [timespec(tv_sec: 1, tv_nsec: 0), timespec(tv_sec: 1, tv_nsec: 0)]
        utimensat(AT_FDCWD, base + "/b/f.txt", &times, 0)
        XCTAssertEqual(try digest(), original)
        chmod(base + "/b/f.txt", 0o755)
        let executable = try digest()
        XCTAssertNotEqual(executable, original)
        chmod(base + "/b/f.txt", 0o600)
        XCTAssertEqual(try digest(), original, "only the execute bit counts")
        try write("b", to: base + "/b/f.txt")
        XCTAssertNotEqual(try digest(), original)
    }

    func testDanglingLinkIsRefusedWhenPacking() throws {
        let base = try temporaryDirectory()
        defer { try? FileTree.remove(base) }
        try write("a", to: base + "/b/f.txt")
        XCTAssertEqual(symlink("missing.txt", base + "/b/broken"), 0)
        XCTAssertThrowsError(try BundleArchive.entries(of: base + "/b")) { error in
            XCTAssertTrue("\(error)".contains("broken -> missing.txt points to nothing"), "\(error)")
        }
    }

    func testUnpackRoundTripRestoresTheSameBundle() throws {
        let base = try temporaryDirectory()
        defer { try? FileTree.remove(base) }
        try write("SDK = 1\n", to: base + "/shared/zenml_step.py")
        try makeBundle(at: base + "/demo", sdk: "../shared/zenml_step.py")
        let digest = try BundleArchive.pack(base + "/demo", to: base + "/demo.tar")
        try BundleUnpacker.unpack(base + "/demo.tar", into: base + "/out/demo")
        XCTAssertEqual(try BundleArchive.digest(of: BundleArchive.entries(of: base + "/out/demo")), digest)
        XCTAssertEqual(try FileTree.linkTarget(base + "/out/demo/alias.txt"), "lib/data.txt")
        XCTAssertEqual(try FileStatus.of(base + "/out/demo/zenml_step.py")?.kind, .file, "the outside link became its content")
        XCTAssertEqual(try FileStatus.of(base + "/out/demo/main.py")?.mode, 0o755)
        XCTAssertNil(try FileStatus.of(base + "/out/demo/__pycache__"), "excluded names are not archived")
        // Unpacking never lands in an existing, non-empty folder.
        XCTAssertThrowsError(try BundleUnpacker.unpack(base + "/demo.tar", into: base + "/out/demo"))
    }

    func testDigesterRemembersUnchangedBundles() throws {
        let base = try temporaryDirectory()
        defer { try? FileTree.remove(base) }
        try write("a", to: base + "/b/f.txt")
        let counting = CountingHasher()
        let digester = BundleDigester(hasher: counting, memoFile: base + "/memo.json")
        let first = try digester.digest(of: base + "/b").digest
        try digester.save()
        let reloaded = BundleDigester(hasher: counting, memoFile: base + "/memo.json")
        XCTAssertEqual(try reloaded.digest(of: base + "/b").digest, first)
        XCTAssertEqual(first, try BundleArchive.digest(of: BundleArchive.entries(of: base + "/b")))
        try write("bb", to: base + "/b/f.txt")
        XCTAssertNotEqual(try reloaded.digest(of: base + "/b").digest, first)
    }
}

final class CountingHasher: FileHasher, @unchecked Sendable {
    var count = 0
    func digest(ofFileAtPath path: String, status: FileStatus) throws -> Digest {
        count += 1
        return try Digest.ofFile(atPath: path)
    }
}
