import Foundation
import XCTest
import ZenMLTFRecord

final class TFRecordWriterTests: XCTestCase {
    func testUncompressedOutputIsByteIdenticalToTensorFlows() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        for name in ["empty.tfrecord", "raw.tfrecord", "examples.tfrecord"] {
            let path = directory.appendingPathComponent(name).path
            try writeAll(try vectors.records(of: name).map { try $0.data }, to: path)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), try vectors.bytes(name), name)
        }
    }

    func testWritingDecodedExamplesReproducesTensorFlowsFile() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("examples.tfrecord").path
        let writer = try TFRecordWriter(path: path)
        for record in try vectors.records(of: "examples.tfrecord") {
            try writer.write(try record.example)
        }
        XCTAssertEqual(writer.recordCount, 20)
        try writer.close()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), try vectors.bytes("examples.tfrecord"))
    }

    func testCompressedOutputRoundTripsAndIsAStandardStream() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        let records = try vectors.records(of: "examples.tfrecord").map { try $0.data }
        for compression in [TFRecordCompression.gzip, .zlib] {
            for level in [nil, 0, 1, 9] {
                let path = directory.appendingPathComponent("examples-\(level ?? -1)\(compression.fileExtension)").path
                try writeAll(records, to: path, options: .init(compression: compression, compressionLevel: level))
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                switch compression {
                case .gzip: XCTAssertEqual(Array(bytes.prefix(2)), [0x1f, 0x8b])
                default: XCTAssertEqual(bytes.first.map { $0 & 0x0f }, 8, "deflate method in the zlib header")
                }
                let reader = try TFRecordReader(path: path)
                XCTAssertEqual(reader.compression, compression)
                XCTAssertEqual(readUntilError(reader).records, records, "\(compression), level \(String(describing: level))")
            }
        }
    }

    func testConcatenatedGzipMembersReadAsOneFile() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let first = directory.appendingPathComponent("a.tfrecord.gz"), second = directory.appendingPathComponent("b.tfrecord.gz")
        try writeAll([Data("one".utf8), Data("two".utf8)], to: first.path, options: .init(compression: .gzip))
        try writeAll([Data("three".utf8)], to: second.path, options: .init(compression: .gzip))
        let joined = directory.appendingPathComponent("joined.tfrecord.gz")
        try (Data(contentsOf: first) + Data(contentsOf: second)).write(to: joined)
        XCTAssertEqual(try readAll(joined.path).map { String(decoding: $0, as: UTF8.self) }, ["one", "two", "three"])
    }

    func testRandomRecordsRoundTripThroughEveryBufferPath() throws {
        let directory = try makeTemporaryDirectory(for: self)
        var generator = SplitMix64(seed: 7)
        // Sizes around and far beyond the tiny buffers, so records straddle refills and skip the buffer.
        var records = (0..<300).map { _ in Data.random(count: Int.random(in: 0...300, using: &generator), using: &generator) }
        records += [Data(), Data.random(count: 3 << 20, using: &generator), Data(count: 1)]
        for compression in TFRecordCompression.allCases {
            for bufferSize in [16, 100, 4096, 256 << 10] {
                let path = directory.appendingPathComponent("random-\(bufferSize)\(compression.fileExtension)").path
                try writeAll(records, to: path, options: .init(compression: compression, bufferSize: bufferSize))
                let read = try readAll(path, options: .init(compression: compression, bufferSize: bufferSize))
                XCTAssertEqual(read.count, records.count, "\(compression), buffer \(bufferSize)")
                XCTAssertTrue(read == records, "\(compression), buffer \(bufferSize)")
                XCTAssertTrue(try readAll(path, options: .init(bufferSize: 37)) == records, "detected, odd buffer")
            }
        }
    }

    func testFlushHandsRecordsToTheFile() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("flushed.tfrecord").path
        let writer = try TFRecordWriter(path: path)
        try writer.write(Data("hello".utf8))
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, 0, "still buffered")
        try writer.flush()
        XCTAssertEqual(try readAll(path), [Data("hello".utf8)])
        try writer.close()

        let gzipPath = directory.appendingPathComponent("flushed.tfrecord.gz").path
        let gzipWriter = try TFRecordWriter(path: gzipPath, options: .init(compression: .gzip))
        try gzipWriter.write(Data("hello".utf8))
        try gzipWriter.flush()
        // The stream is not finished, but everything written so far decompresses.
        let (records, error) = readUntilError(try TFRecordReader(path: gzipPath))
        XCTAssertEqual(records, [Data("hello".utf8)])
        guard case .corruptCompressedStream(gzipPath, .gzip, 1, _)? = error else {
            return XCTFail("an unfinished stream must be reported, got \(String(describing: error))")
        }
        try gzipWriter.close()
        XCTAssertEqual(try readAll(gzipPath), [Data("hello".utf8)])
    }

    func testClosedWriterRefusesWrites() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("closed.tfrecord").path
        let writer = try TFRecordWriter(path: path)
        try writer.close()
        try writer.close()  // A second close does nothing.
        XCTAssertThrowsError(try writer.write(Data())) { XCTAssertEqual($0 as? TFRecordError, .writerClosed(path: path)) }
    }

    func testWriterDroppedWithoutCloseStillFinishesTheFile() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("dropped.tfrecord.zlib").path
        do {
            let writer = try TFRecordWriter(path: path, options: .init(compression: .zlib))
            try writer.write(Data("kept".utf8))
        }
        XCTAssertEqual(try readAll(path), [Data("kept".utf8)])
    }

    func testUnwritablePathGivesAnIOError() {
        let path = "/nonexistent/zenml/out.tfrecord"
        XCTAssertThrowsError(try TFRecordWriter(path: path)) { error in
            XCTAssertEqual(error as? TFRecordError, .io(path: path, operation: "create", errno: ENOENT))
        }
    }

    /// 200,000 records (~100 MB) stream through a fixed buffer: memory does not grow with the file.
    func testManyRecordsStreamInBoundedMemory() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("many.tfrecord").path
        let count = 200_000
        func record(_ index: Int) -> Data {
            var data = Data(count: 400 + index % 200)
            data.withUnsafeMutableBytes { bytes in
                bytes.storeBytes(of: UInt64(index).littleEndian, as: UInt64.self)
                for offset in 8..<bytes.count { bytes[offset] = UInt8(truncatingIfNeeded: index &* 31 &+ offset) }
            }
            return data
        }
        let baseline = peakResidentBytes()

        let writer = try TFRecordWriter(path: path)
        for index in 0..<count { try writer.write(record(index)) }
        try writer.close()
        let fileSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertGreaterThan(fileSize, 100_000_000)

        let reader = try TFRecordReader(path: path)
        var index = 0
        while let data = try reader.next() {
            XCTAssertEqual(data.count, 400 + index % 200)
            let stored = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            if stored != UInt64(index) || (index % 997 == 0 && data != record(index)) {
                return XCTFail("record \(index) came back wrong")
            }
            index += 1
        }
        XCTAssertEqual(index, count)

        if let baseline, let peak = peakResidentBytes() {
            // Holding the file (or even a tenth of it) in memory would show up here.
            XCTAssertLessThan(peak - baseline, fileSize / 10, "peak memory grew by \(peak - baseline) bytes")
        }
    }
}

/// The process's peak resident memory so far, in bytes (`nil` where unknown).
func peakResidentBytes() -> Int? {
    var usage = rusage()
    #if os(Linux)
    guard getrusage(Int32(RUSAGE_SELF.rawValue), &usage) == 0 else { return nil }
    return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
    #else
    guard getrusage(RUSAGE_SELF, &usage) == 0 else { return nil }
    return Int(usage.ru_maxrss)  // bytes on Darwin
    #endif
}
