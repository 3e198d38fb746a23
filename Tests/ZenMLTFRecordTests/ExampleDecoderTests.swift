import Foundation
import XCTest
import ZenMLTFRecord

/// `ExampleDecoder` and `TFRecordReader.nextExample()` reuse feature names and buffers across
/// records; these tests hold them to `Example(serializedData:)`'s results whatever the records do.
final class ExampleDecoderTests: XCTestCase {
    func testDecodesTensorFlowsVectorsLikeTheOneShotDecoder() throws {
        let vectors = try TestVectors.load()
        let records = try vectors.records(of: "examples.tfrecord")
        var decoder = ExampleDecoder()
        // Twice over, so the second pass runs on remembered names.
        for pass in 0..<2 {
            for record in records {
                let decoded = try decoder.decode(try record.data)
                XCTAssertEqual(decoded, try Example(serializedData: try record.data), "pass \(pass), record \(record.index)")
                XCTAssertEqual(decoded, try record.example, "pass \(pass), record \(record.index)")
            }
        }
    }

    func testRandomExamplesWhoseNamesAndOrderChangeRoundTrip() throws {
        var generator = SplitMix64(seed: 0xDEC0DE)
        // Names that share prefixes, lengths and bytes, long ones (heap strings), non-ASCII ones.
        let names = ["id", "ie", "i", "floats", "payload", "payloae", "a_rather_long_feature_name_past_15_bytes",
                     "a_rather_long_feature_name_past_15_byteZ", "naïve", "日本語", ""]
        var decoder = ExampleDecoder()
        for trial in 0..<3000 {
            var features: [String: Feature] = [:]
            let count = Int(generator.next() % 6)
            for _ in 0..<count {
                let name = names[Int(generator.next() % UInt64(names.count))]
                switch generator.next() % 4 {
                case 0: features[name] = .int64List((0..<Int(generator.next() % 4)).map { _ in Int64(bitPattern: generator.next()) })
                case 1: features[name] = .floatList((0..<Int(generator.next() % 4)).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) })
                case 2: features[name] = .bytesList((0..<Int(generator.next() % 3)).map { _ in Data.random(count: Int(generator.next() % 40), using: &generator) })
                default: features[name] = .unset
                }
            }
            var bytes = Example(features: features).serializedData()
            if trial % 3 == 0 {
                // Reverse the map entries: valid protobuf in another order than the encoder's.
                bytes = reversingEntries(bytes)
            }
            let decoded = try decoder.decode(bytes)
            XCTAssertEqual(decoded, Example(features: features), "trial \(trial)")
            XCTAssertEqual(decoded, try Example(serializedData: bytes), "trial \(trial)")
        }
    }

    func testInvalidUTF8IsRejectedEvenAfterValidNamesOfThatLength() throws {
        var decoder = ExampleDecoder()
        let valid: [UInt8] = [0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x78, 0x12, 0x00]  // feature "x", unset
        let invalid: [UInt8] = [0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x00]
        XCTAssertEqual(try decoder.decode(valid), Example(features: ["x": .unset]))
        XCTAssertThrowsError(try decoder.decode(invalid)) { error in
            guard let error = error as? ExampleDecodingError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.offset, 6)
            XCTAssertTrue(error.reason.contains("not valid UTF-8"), "\(error)")
        }
        XCTAssertEqual(try decoder.decode(valid), Example(features: ["x": .unset]), "the decoder goes on after an error")
    }

    func testReaderDecodesEveryRecordOfALargeFileLikeTheOneShotDecoder() throws {
        let directory = try makeTemporaryDirectory(for: self)
        var generator = SplitMix64(seed: 99)
        var records: [Data] = []
        for i in 0..<2000 {
            var features: [String: Feature] = ["id": .int64List([Int64(i)]), "floats": .floatList([Float(i), -1])]
            // Records of varying sizes, some far larger than the reader's reused buffer.
            let size = i % 1000 == 7 ? 3 << 19 : Int(generator.next() % 300)
            features[i % 2 == 0 ? "payload" : "other_payload_with_a_long_name"] = .bytesList([Data.random(count: size, using: &generator)])
            records.append(Example(features: features).serializedData())
        }
        for compression in [TFRecordCompression.none, .gzip] {
            let path = directory.appendingPathComponent("examples\(compression.fileExtension)").path
            try writeAll(records, to: path, options: .init(compression: compression))
            let reader = try TFRecordReader(path: path)
            var index = 0
            while let example = try reader.nextExample() {
                XCTAssertEqual(example, try Example(serializedData: records[index]), "\(compression) record \(index)")
                index += 1
                XCTAssertEqual(reader.recordIndex, index)
            }
            XCTAssertEqual(index, records.count)
        }
    }

    func testReaderReportsAMalformedRecordAndReadsOn() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let good = Example(features: ["id": .int64List([1])]).serializedData()
        let path = directory.appendingPathComponent("mixed.tfrecord").path
        try writeAll([good, Data([0x0a, 0x05, 0x0a]), good], to: path)
        let reader = try TFRecordReader(path: path)
        XCTAssertEqual(try reader.nextExample(), Example(features: ["id": .int64List([1])]))
        XCTAssertThrowsError(try reader.nextExample()) { error in
            guard case .malformedExample(path, 1, _)? = error as? TFRecordError else {
                return XCTFail("expected a malformed example at record 1, got \(error)")
            }
        }
        XCTAssertEqual(try reader.nextExample(), Example(features: ["id": .int64List([1])]), "the next record still reads")
        XCTAssertNil(try reader.nextExample())
    }

    func testCorruptDataIsReportedByNextExampleAndStaysReported() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let good = Example(features: ["id": .int64List([1])]).serializedData()
        let path = directory.appendingPathComponent("corrupt.tfrecord").path
        try writeAll([good, good], to: path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[12 + good.count + 16 + 3] ^= 0x01  // in the second record's data
        try bytes.write(to: URL(fileURLWithPath: path))
        let reader = try TFRecordReader(path: path)
        XCTAssertNotNil(try reader.nextExample())
        for _ in 0..<2 {
            XCTAssertThrowsError(try reader.nextExample()) { error in
                guard case .corruptData(path, 1, _, _)? = error as? TFRecordError else {
                    return XCTFail("expected corrupt data at record 1, got \(error)")
                }
            }
        }
    }

    /// The same Example with its map entries in reverse order (the encoder writes one `features`
    /// field holding one entry per feature, each with a one- or two-byte length).
    private func reversingEntries(_ bytes: Data) -> Data {
        let bytes = [UInt8](bytes)
        func varint(_ at: inout Int) -> Int {
            var value = 0, shift = 0
            while true {
                let byte = bytes[at]
                at += 1
                value |= Int(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }
        var position = 1
        let featuresLength = varint(&position)
        let featuresStart = position
        var entries: [[UInt8]] = []
        while position < featuresStart + featuresLength {
            let start = position
            position += 1
            let length = varint(&position)
            position += length
            entries.append(Array(bytes[start..<position]))
        }
        return Data(bytes[..<featuresStart] + entries.reversed().joined())
    }
}
