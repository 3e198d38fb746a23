import Foundation
import XCTest
import ZenMLTFRecord

final class ShardedTFRecordTests: XCTestCase {
    func testShardFileNames() {
        XCTAssertEqual(ShardedTFRecord.shardFileName(index: 0, count: 4), "data-00000-of-00004.tfrecord")
        XCTAssertEqual(ShardedTFRecord.shardFileName(index: 3, count: 4, compression: .gzip), "data-00003-of-00004.tfrecord.gz")
        XCTAssertEqual(ShardedTFRecord.shardFileName(index: 9, count: 10, compression: .zlib), "data-00009-of-00010.tfrecord.zlib")
        XCTAssertEqual(ShardedTFRecord.shardFileName(prefix: "train", index: 123_456, count: 200_000), "train-123456-of-200000.tfrecord")
    }

    /// Writes `counts[i]` records to shard `i`, named "shard i record j", compressed in turn.
    private func writeShards(_ counts: [Int], in directory: URL, prefix: String = "data") throws -> [String] {
        var all: [String] = []
        for (index, count) in counts.enumerated() {
            let compression = TFRecordCompression.allCases[index % 3]
            let name = ShardedTFRecord.shardFileName(prefix: prefix, index: index, count: counts.count, compression: compression)
            let records = (0..<count).map { "shard \(index) record \($0)" }
            try writeAll(records.map { Data($0.utf8) }, to: directory.appendingPathComponent(name).path, options: .init(compression: compression))
            all += records
        }
        return all
    }

    private func readAll(_ reader: ShardedTFRecordReader) throws -> [String] {
        var records: [String] = []
        while let record = try reader.next() { records.append(String(decoding: record, as: UTF8.self)) }
        return records
    }

    func testReadsEveryShardInOrder() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let expected = try writeShards([3, 0, 5, 1], in: directory)
        // Neighbours that are not shards of this artifact are ignored.
        for junk in ["README", "data-00000-of-00004.tfrecord.tmp", "eval-00000-of-00001.tfrecord", "data-0-of-4.tfrecord", "data-00000-of-00004"] {
            try Data("junk".utf8).write(to: directory.appendingPathComponent(junk))
        }
        let sharded = try ShardedTFRecord(directory: directory.path)
        XCTAssertEqual(sharded.shardCount, 4)
        XCTAssertEqual(sharded.paths.map { URL(fileURLWithPath: $0).lastPathComponent }, [
            "data-00000-of-00004.tfrecord", "data-00001-of-00004.tfrecord.gz",
            "data-00002-of-00004.tfrecord.zlib", "data-00003-of-00004.tfrecord",
        ])
        let reader = sharded.makeReader()
        XCTAssertEqual(try readAll(reader), expected)
        XCTAssertEqual(reader.shardIndex, 4)
        XCTAssertNil(try reader.next())
    }

    func testOtherPrefixesAndTheVectorsAsOneShard() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let expected = try writeShards([2, 2], in: directory, prefix: "train")
        _ = try writeShards([1], in: directory, prefix: "eval")
        XCTAssertEqual(try readAll(ShardedTFRecord(directory: directory.path, prefix: "train").makeReader()), expected)

        let vectors = try TestVectors.load()
        let examples = directory.appendingPathComponent("examples")
        try FileManager.default.createDirectory(at: examples, withIntermediateDirectories: true)
        try vectors.bytes("examples.gz.tfrecord").write(to: examples.appendingPathComponent("data-00000-of-00001.tfrecord.gz"))
        let reader = try ShardedTFRecord(directory: examples.path).makeReader()
        var decoded: [Example] = []
        while let example = try reader.nextExample() { decoded.append(example) }
        XCTAssertEqual(decoded, try vectors.records(of: "examples.tfrecord").map { try $0.example })
    }

    func testIncompleteOrInconsistentShardSetsAreRejected() throws {
        let directory = try makeTemporaryDirectory(for: self)
        XCTAssertThrowsError(try ShardedTFRecord(directory: directory.path)) {
            XCTAssertEqual($0 as? TFRecordError, .noShards(directory: directory.path, prefix: "data"))
        }
        _ = try writeShards([1, 1, 1, 1], in: directory)

        let missing = directory.appendingPathComponent("data-00002-of-00004.tfrecord.zlib")
        try FileManager.default.removeItem(at: missing)
        assertInconsistent(directory, mentioning: "1 of 4 shards are missing (index 2)")

        try writeAll([], to: directory.appendingPathComponent("data-00002-of-00004.tfrecord.gz").path)
        XCTAssertNoThrow(try ShardedTFRecord(directory: directory.path))
        try writeAll([], to: directory.appendingPathComponent("data-00002-of-00004.tfrecord").path)
        assertInconsistent(directory, mentioning: "shard 2 is there twice")
        try FileManager.default.removeItem(at: directory.appendingPathComponent("data-00002-of-00004.tfrecord"))

        try writeAll([], to: directory.appendingPathComponent("data-00000-of-00003.tfrecord").path)
        assertInconsistent(directory, mentioning: "says there are")
    }

    private func assertInconsistent(_ directory: URL, mentioning text: String, line: UInt = #line) {
        XCTAssertThrowsError(try ShardedTFRecord(directory: directory.path), line: line) { error in
            guard case .inconsistentShards(directory.path, "data", let problem)? = error as? TFRecordError else {
                return XCTFail("expected inconsistent shards, got \(error)", line: line)
            }
            XCTAssertTrue(problem.contains(text), problem, line: line)
        }
    }

    func testErrorsNameTheShardAndTheRecordWithinIt() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        try writeAll([Data("fine".utf8)], to: directory.appendingPathComponent("data-00000-of-00002.tfrecord").path)
        let corrupt = directory.appendingPathComponent("data-00001-of-00002.tfrecord")
        try vectors.bytes("corrupt.tfrecord").write(to: corrupt)
        let reader = try ShardedTFRecord(directory: directory.path).makeReader()
        var count = 0
        do {
            while try reader.next() != nil { count += 1 }
            XCTFail("the corrupt shard must fail")
        } catch {
            XCTAssertEqual(count, 1 + 7)
            XCTAssertEqual(error.path, corrupt.path)
            XCTAssertEqual(error.recordIndex, 7)
        }
    }

    func testMissingDirectoryGivesAnIOError() {
        XCTAssertThrowsError(try ShardedTFRecord(directory: "/nonexistent/zenml/artifact")) { error in
            XCTAssertEqual(error as? TFRecordError, .io(path: "/nonexistent/zenml/artifact", operation: "list the directory", errno: ENOENT))
        }
    }
}
