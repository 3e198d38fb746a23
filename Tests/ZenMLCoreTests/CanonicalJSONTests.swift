import XCTest
@testable import ZenMLCore

final class CanonicalJSONTests: XCTestCase {
    func testKeysAreSortedByBytesAndThereIsNoWhitespace() {
        let value: JSONValue = ["b": 1, "a": ["z": true, "é": nil, "Z": "x"], "A": []]
        XCTAssertEqual(CanonicalJSON.encode(value), #"{"A":[],"a":{"Z":"x","z":true,"é":null},"b":1}"#)
    }

    func testNumbers() {
        XCTAssertEqual(CanonicalJSON.encode(.double(1.0)), "1", "integral doubles print as integers")
        XCTAssertEqual(CanonicalJSON.encode(.double(0.1)), "0.1")
        XCTAssertEqual(CanonicalJSON.encode(.double(-2.5)), "-2.5")
        XCTAssertEqual(CanonicalJSON.encode(.double(1e-7)), "1e-07")
        XCTAssertEqual(CanonicalJSON.encode(.int(-42)), "-42")
        XCTAssertEqual(CanonicalJSON.encode(.double(.nan)), "null")
        XCTAssertEqual(CanonicalJSON.encode(.double(1e300)), "1e+300")
        // Integral values are integers whichever parser read them (JSON reads 2.5e16 as an Int64, YAML as a Double).
        XCTAssertEqual(CanonicalJSON.encode(.double(9_007_199_254_740_992)), "9007199254740992")
        XCTAssertEqual(CanonicalJSON.encode(.double(2.5e16)), CanonicalJSON.encode(.int(25_000_000_000_000_000)))
        XCTAssertEqual(CanonicalJSON.encode(.double(1e19)), "1e+19")
    }

    func testStringEscapes() {
        XCTAssertEqual(CanonicalJSON.encode(.string("a\"b\\c\n\t\u{01}/é")), #""a\"b\\c\n\t\u0001/é""#)
        XCTAssertEqual(CanonicalJSON.encode(.string("\r\u{08}\u{0C}\u{1F}\u{7F}😀")), #""\r\b\f\u001f\#u{7F}😀""#)
    }

    func testParsingKeepsIntegersAndDoublesApart() throws {
        let value = try JSONValue.parse(Data(#"{"i": 3, "d": 3.5, "b": true, "n": null, "s": "x", "a": [1, "2"]}"#.utf8))
        XCTAssertEqual(value["i"], .int(3))
        XCTAssertEqual(value["d"], .double(3.5))
        XCTAssertEqual(value["b"], .bool(true))
        XCTAssertEqual(value["n"], .null)
        XCTAssertEqual(value["a"], [1, "2"])
    }

    func testDigestOfCanonicalFormIsStable() {
        // Golden value: changing the canonical encoding changes every cache key, so it must be deliberate.
        let digest = Digest.of(canonical: ["contract": 1, "config": ["rate": 0.5, "layers": [64, 32]]])
        XCTAssertEqual(digest.description, "sha256:" + Digest.of(#"{"config":{"layers":[64,32],"rate":0.5},"contract":1}"#).hex)
        XCTAssertEqual(Digest.of("abc").hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testDigestParsing() {
        XCTAssertNotNil(Digest("sha256:" + String(repeating: "a", count: 64)))
        XCTAssertNil(Digest("sha256:" + String(repeating: "A", count: 64)))
        XCTAssertNil(Digest("sha256:abc"))
    }
}

final class TreeDigestTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "tree-\(UUID().uuidString)"
        try FileTree.makeDirectory(root + "/sub")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: root + "/a.txt"))
        try Data("world".utf8).write(to: URL(fileURLWithPath: root + "/sub/b.txt"))
    }

    override func tearDownWithError() throws {
        try FileTree.remove(root)
    }

    func testDigestIgnoresTimesButNotContentNamesOrExecuteBit() throws {
        let first = try TreeDigest.compute(root: root)
        XCTAssertEqual(first.fileCount, 2)
        XCTAssertEqual(first.totalSize, 10)
        XCTAssertEqual(first.entries.map(\.path), ["a.txt", "sub", "sub/b.txt"])

        var times = [timespec(tv_sec: 1000, tv_nsec: 0), timespec(tv_sec: 1000, tv_nsec: 0)]
        utimensat(AT_FDCWD, root + "/a.txt", &times, 0)
        XCTAssertEqual(try TreeDigest.compute(root: root).digest, first.digest, "timestamps do not count")

        chmod(root + "/a.txt", 0o755)
        let executable = try TreeDigest.compute(root: root).digest
        XCTAssertNotEqual(executable, first.digest, "the execute bit counts")
        chmod(root + "/a.txt", 0o600)
        XCTAssertEqual(try TreeDigest.compute(root: root).digest, first.digest, "other mode bits do not")

        try Data("hellO".utf8).write(to: URL(fileURLWithPath: root + "/a.txt"))
        XCTAssertNotEqual(try TreeDigest.compute(root: root).digest, first.digest)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: root + "/a.txt"))
        try FileManager.default.moveItem(atPath: root + "/a.txt", toPath: root + "/c.txt")
        XCTAssertNotEqual(try TreeDigest.compute(root: root).digest, first.digest, "names count")
    }

    func testSymlinksAreHashedAsTheirTarget() throws {
        let before = try TreeDigest.compute(root: root).digest
        symlink("sub/b.txt", root + "/link")
        let tree = try TreeDigest.compute(root: root)
        XCTAssertNotEqual(tree.digest, before)
        XCTAssertEqual(tree.entries.first { $0.path == "link" }?.target, "sub/b.txt")
    }

    func testExcludedNames() throws {
        let before = try TreeDigest.compute(root: root, excluding: ["__pycache__"]).digest
        try FileTree.makeDirectory(root + "/__pycache__")
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/__pycache__/m.pyc"))
        XCTAssertEqual(try TreeDigest.compute(root: root, excluding: ["__pycache__"]).digest, before)
        XCTAssertNotEqual(try TreeDigest.compute(root: root).digest, before)
    }

    func testLargeFileHashesInChunks() throws {
        let path = root + "/big.bin"
        let data = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try data.write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try Digest.ofFile(atPath: path), Digest.of(data))
    }

    /// A mapped file that shrinks under its reader: the read goes on (zeros, no SIGBUS) and the
    /// mapping reports it, so hashing or uploading it fails with an error instead of a crash.
    func testMappedFileThatShrinksIsAnErrorNotACrash() throws {
        let root = NSTemporaryDirectory() + "zenml-mapping-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/shrinking.bin"
        let size = 4 << 20
        try Data(repeating: 7, count: size).write(to: URL(fileURLWithPath: path))
        let descriptor = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        defer { close(descriptor) }
        let mapping = try FileMapping(descriptor: descriptor, size: Int64(size), path: path)
        XCTAssertEqual(mapping.bytes(offset: 0, length: 16).reduce(0) { $0 + Int($1) }, 16 * 7)
        XCTAssertFalse(mapping.shrank)
        XCTAssertNoThrow(try mapping.checkUnchanged(descriptor: descriptor, doing: "hash"))
        XCTAssertEqual(truncate(path, 1 << 20), 0)
        // Past the new end: zeros instead of SIGBUS, for the rest of the mapping.
        let tail = mapping.bytes(offset: Int64(size - (2 << 20)), length: 2 << 20)
        XCTAssertEqual(tail.reduce(0) { $0 + Int($1) }, 0)
        XCTAssertTrue(mapping.shrank)
        XCTAssertThrowsError(try mapping.checkUnchanged(descriptor: descriptor, doing: "hash")) { error in
            XCTAssertTrue("\(error)".contains("changed size while being read"), "\(error)")
        }
        // Before the new end the file is still readable.
        XCTAssertEqual(mapping.bytes(offset: 0, length: 16).reduce(0) { $0 + Int($1) }, 16 * 7)
        // A fresh mapping of another file is not marked.
        let other = root + "/other.bin"
        try Data(repeating: 1, count: 2 << 20).write(to: URL(fileURLWithPath: other))
        XCTAssertEqual(try Digest.ofFile(atPath: other), Digest.of(Data(repeating: 1, count: 2 << 20)))
    }
}

final class JSONParserTests: XCTestCase {
    func testParsesWhatJSONDecoderParses() throws {
        let text = #"{"a":[1,-2,3.5,1e3,-0.0,9223372036854775807,18446744073709551616],"s":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","t":true,"f":false,"n":null,"o":{}, "e": [ ] }"#
        let value = try JSONValue.parse(Data(text.utf8))
        XCTAssertEqual(value["a"], [.int(1), .int(-2), .double(3.5), .double(1000), .double(-0.0), .int(.max), .double(18446744073709551616)])
        XCTAssertEqual(value["s"], .string("x\"\\/\u{08}\u{0C}\n\r\té😀"))
        XCTAssertEqual(value["t"], true)
        XCTAssertEqual(value["n"], .null)
        XCTAssertEqual(value["o"], .object([:]))
        XCTAssertEqual(value["e"], .array([]))
        // Canonical text reads back to the same canonical text (1e3 and -0.0 become integers on the way).
        let canonical = CanonicalJSON.encode(value)
        XCTAssertEqual(CanonicalJSON.encode(try JSONValue.parse(Data(canonical.utf8))), canonical)
    }

    func testRejectsInvalidJSON() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"a\nb\"", "{} {}", "tru", "[1] x", "\"\\ud800\""] {
            XCTAssertThrowsError(try JSONValue.parse(Data(text.utf8)), "accepted: \(text)")
        }
    }
}
