import Foundation
import XCTest
import ZenMLTFRecord

/// Every single-byte corruption and every truncation of small files, plain and compressed: the
/// reader reports each one, and never returns records other than the ones written.
///
/// Mirrors `protocol/tests/test_tfrecord_python.py` (`test_a_corrupt_byte_anywhere_in_*`,
/// `test_every_truncation_*`) so the Swift, Python and C readers make the same promises.
final class DamageSweepTests: XCTestCase {
    /// A few records: the empty record, one byte, text, and 40 bytes.
    static let records: [Data] = [Data(), Data("a".utf8), Data("hello tfrecord".utf8), Data(0..<40)]

    /// The plain framing of `records`, and where each record starts.
    static func framed(_ records: [Data]) throws -> (bytes: Data, starts: [Int]) {
        var starts: [Int] = []
        var total = 0
        for record in records {
            starts.append(total)
            total += 16 + record.count
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zenml-sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("plain.tfrecord").path
        try writeAll(records, to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(bytes.count, total)
        return (bytes, starts)
    }

    /// Reads `bytes` written to `path`, with the compression given and with detection.
    func readBothWays(_ bytes: Data, at path: String, compression: TFRecordCompression) throws -> [(records: [Data], error: TFRecordError?)] {
        try bytes.write(to: URL(fileURLWithPath: path))
        return try [TFRecordReader.Options(compression: compression), TFRecordReader.Options()].map {
            readUntilError(try TFRecordReader(path: path, options: $0))
        }
    }

    func testACorruptByteAnywhereInAPlainFileIsReportedAtItsRecord() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("flipped.tfrecord").path
        let (clean, starts) = try Self.framed(Self.records)
        for position in 0..<clean.count {
            let index = try XCTUnwrap(starts.lastIndex { $0 <= position })
            let start = starts[index]
            // CRC32C catches every error within 32 bits, so each flip is caught by the CRC that
            // covers the byte: the length's for the 12 header bytes, the data's for the rest.
            let expected: TFRecordError =
                position - start < 12
                ? .corruptLength(path: path, recordIndex: index, offset: UInt64(start))
                : .corruptData(
                    path: path, recordIndex: index, offset: UInt64(start + 12), length: UInt64(Self.records[index].count))
            for flip: UInt8 in [0x01, 0x80, 0xff] {
                var damaged = clean
                damaged[position] ^= flip
                for (mode, (records, error)) in zip(["NONE", "detected"], try readBothWays(damaged, at: path, compression: .none)) {
                    let context = "flip \(flip) at byte \(position), compression \(mode)"
                    XCTAssertEqual(records, Array(Self.records.prefix(index)), context)
                    XCTAssertEqual(error, expected, context)
                }
            }
        }
    }

    func testEveryTruncationOfAPlainFileIsReportedNotShortened() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("cut.tfrecord").path
        let (clean, starts) = try Self.framed(Self.records)
        for kept in 0..<clean.count {
            let index = try XCTUnwrap(starts.lastIndex { $0 <= kept })
            let start = starts[index], inRecord = kept - start
            for (mode, (records, error)) in zip(["NONE", "detected"], try readBothWays(clean.prefix(kept), at: path, compression: .none)) {
                let context = "cut at byte \(kept), compression \(mode)"
                XCTAssertEqual(records, Array(Self.records.prefix(index)), context)
                if inRecord == 0 {
                    // A cut exactly between records is a shorter valid file: the framing cannot tell.
                    XCTAssertNil(error, context)
                } else {
                    XCTAssertEqual(
                        error,
                        .truncatedRecord(
                            path: path, recordIndex: index, offset: UInt64(start),
                            expectedBytes: UInt64(inRecord < 12 ? 12 : 16 + Self.records[index].count), availableBytes: UInt64(inRecord)),
                        context)
                }
            }
        }
    }

    /// The compressed files of the sweep: our writer's, and TensorFlow's own.
    func compressedFiles(in directory: URL) throws -> [(name: String, compression: TFRecordCompression, bytes: Data, records: [Data])] {
        var files: [(String, TFRecordCompression, Data, [Data])] = []
        for compression in [TFRecordCompression.gzip, .zlib] {
            let path = directory.appendingPathComponent("written" + compression.fileExtension).path
            try writeAll(Self.records, to: path, options: .init(compression: compression))
            files.append(("written" + compression.fileExtension, compression, try Data(contentsOf: URL(fileURLWithPath: path)), Self.records))
        }
        let vectors = try TestVectors.load()
        let examples = try vectors.records(of: "examples.tfrecord").map { try $0.data }
        files.append(("examples.gz.tfrecord", .gzip, try vectors.bytes("examples.gz.tfrecord"), examples))
        files.append(("examples.zlib.tfrecord", .zlib, try vectors.bytes("examples.zlib.tfrecord"), examples))
        return files
    }

    /// Where flipping bits of a compressed file can go unnoticed by zlib and by the record CRCs.
    ///
    /// - The gzip (RFC 1952) header fields zlib reads past without checking (no FHCRC is written):
    ///   FLG's FTEXT bit (bit 0 of byte 3, a hint), MTIME (bytes 4-7), XFL (8) and OS (9). Any
    ///   other FLG bit changes how the header parses, or is reserved, and is reported.
    /// - The deflate data, where a different bit stream can decode to the same bytes, as deflate
    ///   has many encodings of one output. In TensorFlow's files the unnoticed flips (traced bit by
    ///   bit through the deflate stream) are the extra bits of a back-reference's distance, changed
    ///   to point at another identical earlier copy of the 3 or 8 bytes it repeats, and the padding
    ///   bits after the last block. Nothing can check these, and nothing needs to, since the
    ///   records are the same; a flip that changes the decoded bytes fails the gzip CRC-32 or the
    ///   ZLIB Adler-32 of the whole stream, or a record CRC.
    ///
    /// Everything else is checked: the gzip magic and method (bytes 0-2) and its CRC-32 and size
    /// trailer (last 8 bytes), the ZLIB header (bytes 0-1, FCHECK) and its Adler-32 trailer (last 4).
    enum Region: Equatable { case checkedHeader, uncheckedHeader, deflateData, trailer }

    func region(of position: Int, flip: UInt8, compression: TFRecordCompression, count: Int) -> Region {
        let header = compression == .gzip ? 10 : 2, trailer = compression == .gzip ? 8 : 4
        if position >= count - trailer { return .trailer }
        if position >= header { return .deflateData }
        if compression == .gzip && (position >= 4 || (position == 3 && flip == 0x01)) { return .uncheckedHeader }
        return .checkedHeader
    }

    func testACorruptByteAnywhereInACompressedFileNeverChangesTheRecords() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("flipped").path
        for (name, compression, clean, expected) in try compressedFiles(in: directory) {
            for flip: UInt8 in [0x01, 0x80, 0xff] {
                var unnoticedInData: [Int] = []
                for position in 0..<clean.count {
                    var damaged = clean
                    damaged[position] ^= flip
                    let region = region(of: position, flip: flip, compression: compression, count: clean.count)
                    for (mode, (records, error)) in zip(["explicit", "detected"], try readBothWays(damaged, at: path, compression: compression)) {
                        let context = "\(name): flip \(flip) at byte \(position) of \(clean.count) (\(region)), compression \(mode)"
                        // Whatever happens, only intact records come out, in order.
                        XCTAssertEqual(records, Array(expected.prefix(records.count)), context)
                        if let error {
                            XCTAssertEqual(error.recordIndex, records.count, "\(context): \(error)")
                            XCTAssertEqual(error.path, path, context)
                            continue
                        }
                        // Unnoticed: every record exactly as written, and only where nothing can check.
                        XCTAssertEqual(records, expected, context)
                        XCTAssertTrue(region == .uncheckedHeader || region == .deflateData, "\(context): went unnoticed")
                        if region == .deflateData && mode == "explicit" { unnoticedInData.append(position) }
                    }
                }
                // Same-output encodings are rare: a regression guard, not a property of deflate.
                XCTAssertLessThanOrEqual(
                    unnoticedInData.count, max(2, clean.count / 100),
                    "\(name): flip \(flip) went unnoticed in the deflate data at \(unnoticedInData)")
            }
        }
    }

    func testEveryTruncationOfACompressedFileIsReportedNotShortened() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let path = directory.appendingPathComponent("cut").path
        for (name, compression, clean, expected) in try compressedFiles(in: directory) {
            XCTAssertEqual(try readBothWays(clean, at: path, compression: compression).map(\.records), [expected, expected], name)
            for kept in 0..<clean.count {
                for (mode, (records, error)) in zip(["explicit", "detected"], try readBothWays(clean.prefix(kept), at: path, compression: compression)) {
                    let context = "\(name) cut to \(kept) of \(clean.count) bytes, compression \(mode)"
                    if kept == 0 && mode == "detected" {
                        // An empty file is a valid empty TFRecord file: with no bytes there is no
                        // compression to detect. Given the compression, it is reported (below).
                        XCTAssertEqual(records, [], context)
                        XCTAssertNil(error, context)
                        continue
                    }
                    // A cut in the trailer comes after the last record: all records, then the error.
                    XCTAssertEqual(records, Array(expected.prefix(records.count)), context)
                    switch error {
                    case .corruptCompressedStream(path, compression, let index, _)?:
                        XCTAssertEqual(index, records.count, context)
                    case .truncatedRecord(path, let index, _, _, _)?, .corruptLength(path, let index, _)?:
                        // A cut within the first two bytes is no longer recognisably compressed;
                        // read as plain framing it is cut short or fails its length CRC.
                        XCTAssertTrue(mode == "detected" && kept < 2, "\(context): \(String(describing: error))")
                        XCTAssertEqual(index, 0, context)
                    default:
                        XCTFail("\(context): expected the cut to be reported, got \(String(describing: error))")
                    }
                }
            }
        }
    }
}
