import Foundation
import XCTest
import ZenMLTFRecord

final class TFRecordReaderTests: XCTestCase {
    func testReadsEveryTensorFlowFileExactly() throws {
        let vectors = try TestVectors.load()
        let expectations: [(name: String, compression: TFRecordCompression)] = [
            ("empty.tfrecord", .none), ("raw.tfrecord", .none), ("examples.tfrecord", .none),
            ("examples.gz.tfrecord", .gzip), ("examples.zlib.tfrecord", .zlib),
        ]
        for (name, compression) in expectations {
            let expected = try vectors.records(of: name)
            XCTAssertEqual(try vectors.file(name).compression, compression.rawValue, name)
            for options in [TFRecordReader.Options(), TFRecordReader.Options(compression: compression)] {
                let reader = try TFRecordReader(path: vectors.path(name), options: options)
                XCTAssertEqual(reader.compression, compression, name)
                var records: [Data] = []
                while let record = try reader.next() { records.append(record) }
                XCTAssertEqual(records.count, expected.count, name)
                XCTAssertEqual(records, try expected.map { try $0.data }, name)
                XCTAssertEqual(reader.recordIndex, expected.count)
                XCTAssertNil(try reader.next(), "\(name): the end stays the end")
            }
        }
    }

    func testReadsTheZeroByteRecord() throws {
        let vectors = try TestVectors.load()
        let records = try readAll(vectors.path("raw.tfrecord"))
        XCTAssertEqual(records.first, Data())
        XCTAssertEqual(records.map(\.count), [0, 1, 14, 128, 300])
    }

    func testCorruptFileReportsTheDataCRCErrorAtTheRightRecord() throws {
        let vectors = try TestVectors.load()
        let corrupt = try vectors.file("corrupt.tfrecord")
        let path = vectors.path("corrupt.tfrecord")
        let reader = try TFRecordReader(path: path)
        let (records, error) = readUntilError(reader)
        let index = try XCTUnwrap(corrupt.corruptRecordIndex)
        XCTAssertEqual(records.count, corrupt.validRecordsBeforeError)
        XCTAssertEqual(records, try vectors.records(of: "examples.tfrecord").prefix(index).map { try $0.data })
        XCTAssertEqual(
            error,
            .corruptData(
                path: path, recordIndex: index, offset: try XCTUnwrap(corrupt.corruptRecordOffset) + 12,
                length: try XCTUnwrap(corrupt.corruptRecordLength)))
        XCTAssertEqual(error?.recordIndex, 7)
        XCTAssertEqual(error?.path, path)
        let message = try XCTUnwrap(error?.description)
        XCTAssertTrue(message.contains("record 7"), message)
        XCTAssertTrue(message.contains("CRC32C"), message)
        XCTAssertTrue(message.contains("the 7 records before it are intact"), message)
        // Never a silent skip: the reader keeps failing.
        XCTAssertThrowsError(try reader.next()) { XCTAssertEqual($0 as? TFRecordError, error) }
    }

    func testCorruptLengthIsReportedAtTheRightRecord() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        let record = try vectors.records(of: "examples.tfrecord")[3]
        var bytes = try vectors.bytes("examples.tfrecord")
        bytes[Int(record.offset) + 1] ^= 0x04
        let path = directory.appendingPathComponent("bad-length.tfrecord").path
        try bytes.write(to: URL(fileURLWithPath: path))

        let (records, error) = readUntilError(try TFRecordReader(path: path))
        XCTAssertEqual(records.count, 3)
        XCTAssertEqual(error, .corruptLength(path: path, recordIndex: 3, offset: record.offset))
    }

    func testTruncatedFilesReportTheCutRecord() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        let bytes = try vectors.bytes("examples.tfrecord")
        let records = try vectors.records(of: "examples.tfrecord")
        for index in [0, 7, 19] {
            let record = records[index]
            let start = Int(record.offset), length = Int(record.length)
            let fullSize = UInt64(12 + length + 4)
            // (bytes of the record kept, bytes the reader should say it expected)
            let cuts: [(kept: Int, expected: UInt64)] = [
                (1, 12), (7, 12), (8, 12), (11, 12),  // in the length or its CRC
                (12, fullSize), (12 + length / 2, fullSize), (12 + length, fullSize), (12 + length + 3, fullSize),
            ]
            for (kept, expected) in cuts {
                let path = directory.appendingPathComponent("cut-\(index)-\(kept).tfrecord").path
                try bytes.prefix(start + kept).write(to: URL(fileURLWithPath: path))
                let (read, error) = readUntilError(try TFRecordReader(path: path))
                XCTAssertEqual(read.count, index, "cut \(kept) bytes into record \(index)")
                XCTAssertEqual(
                    error,
                    .truncatedRecord(
                        path: path, recordIndex: index, offset: record.offset, expectedBytes: expected,
                        availableBytes: UInt64(kept)),
                    "cut \(kept) bytes into record \(index)")
                if let message = error?.description {
                    XCTAssertTrue(message.contains("record \(index)") && message.contains("cut short"), message)
                }
            }
            // A cut exactly between records is a shorter, valid file.
            let path = directory.appendingPathComponent("cut-\(index)-clean.tfrecord").path
            try bytes.prefix(start).write(to: URL(fileURLWithPath: path))
            XCTAssertEqual(try readAll(path).count, index)
        }
    }

    func testTruncatedCompressedFilesAreReportedNotShortened() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        let expected = try vectors.records(of: "examples.tfrecord").map { try $0.data }
        for (name, compression) in [("examples.gz.tfrecord", TFRecordCompression.gzip), ("examples.zlib.tfrecord", .zlib)] {
            let bytes = try vectors.bytes(name)
            for kept in [20, bytes.count / 2, bytes.count - 3] {
                let path = directory.appendingPathComponent("cut-\(kept)-\(name)").path
                try bytes.prefix(kept).write(to: URL(fileURLWithPath: path))
                let (records, error) = readUntilError(try TFRecordReader(path: path, options: .init(compression: compression)))
                XCTAssertEqual(records, Array(expected.prefix(records.count)), "\(name) cut at \(kept)")
                guard case .corruptCompressedStream(path, compression, let index, _)? = error else {
                    XCTFail("\(name) cut at \(kept): expected a compressed-stream error, got \(String(describing: error))")
                    continue
                }
                XCTAssertEqual(index, records.count)
            }
        }
    }

    func testCorruptCompressedDataIsReported() throws {
        let vectors = try TestVectors.load()
        let directory = try makeTemporaryDirectory(for: self)
        var bytes = try vectors.bytes("examples.gz.tfrecord")
        bytes[bytes.count / 2] ^= 0xff
        let path = directory.appendingPathComponent("damaged.tfrecord.gz").path
        try bytes.write(to: URL(fileURLWithPath: path))
        let (_, error) = readUntilError(try TFRecordReader(path: path))
        // Either zlib notices (bad code, bad checksum) or, rarely, the record CRCs do: never silence.
        XCTAssertNotNil(error)
    }

    func testWrongExplicitCompressionGivesAnActionableError() throws {
        let vectors = try TestVectors.load()
        let gzipPath = vectors.path("examples.gz.tfrecord")
        let (_, asPlain) = readUntilError(try TFRecordReader(path: gzipPath, options: .init(compression: TFRecordCompression.none)))
        XCTAssertEqual(asPlain, .corruptLength(path: gzipPath, recordIndex: 0, offset: 0))
        XCTAssertTrue(asPlain?.description.contains("compression") ?? false)

        let plainPath = vectors.path("examples.tfrecord")
        let (_, asGzip) = readUntilError(try TFRecordReader(path: plainPath, options: .init(compression: .gzip)))
        guard case .corruptCompressedStream(plainPath, .gzip, 0, _)? = asGzip else {
            return XCTFail("expected a gzip stream error, got \(String(describing: asGzip))")
        }
    }

    func testDetectionPrefersAValidPlainHeaderOverLookalikeMagic() throws {
        let directory = try makeTemporaryDirectory(for: self)
        // A first record of 376 bytes starts 78 01 (a valid zlib header); 35615 bytes start 1f 8b (gzip's magic).
        for length in [376, 35615, 0x9c78] {
            let path = directory.appendingPathComponent("lookalike-\(length).tfrecord").path
            let records = [Data(repeating: 7, count: length), Data("tail".utf8)]
            try writeAll(records, to: path)
            let reader = try TFRecordReader(path: path)
            XCTAssertEqual(reader.compression, TFRecordCompression.none, "first record of \(length) bytes")
            XCTAssertEqual(readUntilError(reader).records, records)
        }
    }

    func testLengthsBeyondTheLimitAreRejectedBeforeAllocating() throws {
        let directory = try makeTemporaryDirectory(for: self)
        // A header announcing 2^40 bytes, with a valid CRC: only the limit stands in the way.
        var header = Data()
        withUnsafeBytes(of: (UInt64(1) << 40).littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32C.mask(CRC32C.checksum(header)).littleEndian) { header.append(contentsOf: $0) }
        let hugePath = directory.appendingPathComponent("huge.tfrecord").path
        try header.write(to: URL(fileURLWithPath: hugePath))
        let (_, error) = readUntilError(try TFRecordReader(path: hugePath))
        XCTAssertEqual(error, .recordTooLarge(path: hugePath, recordIndex: 0, offset: 0, length: 1 << 40, limit: 1 << 30))
        XCTAssertTrue(error?.description.contains("maximumRecordLength") ?? false)

        let path = directory.appendingPathComponent("limit.tfrecord").path
        try writeAll([Data(count: 10), Data(count: 100), Data(count: 101)], to: path)
        let (records, limited) = readUntilError(try TFRecordReader(path: path, options: .init(maximumRecordLength: 100)))
        XCTAssertEqual(records.map(\.count), [10, 100])
        XCTAssertEqual(limited, .recordTooLarge(path: path, recordIndex: 2, offset: 2 * 16 + 110, length: 101, limit: 100))
    }

    func testMissingFileGivesAnIOError() {
        let path = "/nonexistent/zenml/data.tfrecord"
        XCTAssertThrowsError(try TFRecordReader(path: path)) { error in
            XCTAssertEqual(error as? TFRecordError, .io(path: path, operation: "open", errno: ENOENT))
            XCTAssertEqual("\(error)", "cannot open '\(path)': No such file or directory")
        }
    }

    func testReadsExamples() throws {
        let vectors = try TestVectors.load()
        let reader = try TFRecordReader(path: vectors.path("examples.gz.tfrecord"))
        var examples: [Example] = []
        while let example = try reader.nextExample() { examples.append(example) }
        XCTAssertEqual(examples, try vectors.records(of: "examples.tfrecord").map { try $0.example })

        let raw = try TFRecordReader(path: vectors.path("raw.tfrecord"))
        XCTAssertEqual(try raw.nextExample(), Example(), "the empty record is the empty message")
        // "a" is the tag of field 12 with wire type fixed64, and then the message ends.
        XCTAssertThrowsError(try raw.nextExample()) { error in
            guard case .malformedExample(raw.path, 1, let cause)? = error as? TFRecordError else {
                return XCTFail("expected a malformed example at record 1, got \(error)")
            }
            XCTAssertEqual(cause.offset, 1)
        }
    }
}
