import Foundation
import XCTest
import ZenMLTFRecord

final class ExampleTests: XCTestCase {
    func testDecodesEveryVectorExactly() throws {
        let vectors = try TestVectors.load()
        for record in try vectors.records(of: "examples.tfrecord") {
            let decoded = try Example(serializedData: try record.data)
            XCTAssertEqual(decoded, try record.example, "record \(record.index)")
            XCTAssertEqual(canonicalLine(decoded), record.canonicalLine, "record \(record.index)")
        }
    }

    func testEmptyListsArePresentAndMissingFeaturesAbsent() throws {
        let vectors = try TestVectors.load()
        let records = try vectors.records(of: "examples.tfrecord")
        for record in records {
            let example = try Example(serializedData: try record.data)
            XCTAssertEqual([3, 8, 13, 18].contains(record.index), example["label"] == nil, "record \(record.index)")
            XCTAssertNotNil(example["tags"], "record \(record.index)")
        }
        XCTAssertEqual(try Example(serializedData: try records[0].data)["tags"], .bytesList([]))
    }

    func testEdgeValuesSurviveExactly() throws {
        let vectors = try TestVectors.load()
        let examples = try vectors.records(of: "examples.tfrecord").map { try Example(serializedData: try $0.data) }
        XCTAssertEqual(examples[16]["id"], .int64List([4_294_967_296]))
        XCTAssertEqual(examples[17]["id"], .int64List([-1]))
        XCTAssertEqual(examples[18]["id"], .int64List([.max]))
        XCTAssertEqual(examples[19]["id"], .int64List([.min]))
        guard case .floatList(let floats)? = examples[5]["x"], case .floatList(let small)? = examples[6]["x"] else {
            return XCTFail("x is not a float list")
        }
        XCTAssertEqual(floats.map(\.bitPattern), [Float(0.1).bitPattern, (-0.0 as Float).bitPattern, Float.greatestFiniteMagnitude.bitPattern])
        XCTAssertEqual(small.first, .leastNonzeroMagnitude)
        XCTAssertEqual(examples[3]["tags"], .bytesList([Data("x".utf8), Data(), Data([0x00, 0xff, 0xfe, 0x62, 0x69, 0x6e])]))
        guard case .bytesList(let tags)? = examples[10]["tags"] else { return XCTFail("tags is not a bytes list") }
        XCTAssertEqual(tags.map(\.count), [3, 200])
    }

    func testReencodingGivesTensorFlowsBytes() throws {
        let vectors = try TestVectors.load()
        for record in try vectors.records(of: "examples.tfrecord") {
            let bytes = try record.data
            XCTAssertEqual(try Example(serializedData: bytes).serializedData(), bytes, "record \(record.index), re-encoded")
            XCTAssertEqual(try record.example.serializedData(), bytes, "record \(record.index), built from its JSON")
        }
    }

    func testEncodingSortsKeysByUTF8Bytes() {
        // "Z" (0x5a) < "a" (0x61) < "é" (0xc3 0xa9) < "😀" (0xf0 ...), whatever order the dictionary keeps.
        let example = Example(features: ["😀": .unset, "a": .unset, "é": .unset, "Z": .unset])
        let encoded = [UInt8](example.serializedData())
        let keys = [[0x5a], [0x61], [0xc3, 0xa9], [0xf0, 0x9f, 0x98, 0x80]] as [[UInt8]]
        var expected: [UInt8] = []
        for key in keys {
            let entry = [0x0a, UInt8(key.count)] + key + [0x12, 0x00]
            expected += [0x0a, UInt8(entry.count)] + entry
        }
        XCTAssertEqual(encoded, [0x0a, UInt8(expected.count)] + expected)
    }

    func testFeatureWithNoKindAndEmptyExample() throws {
        // Example { features { feature { key: "k" value {} } } }, as Python writes tf.train.Feature().
        let bytes = Data([0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x6b, 0x12, 0x00])
        let example = try Example(serializedData: bytes)
        XCTAssertEqual(example, Example(features: ["k": .unset]))
        XCTAssertEqual(example.serializedData(), bytes)
        XCTAssertNotEqual(Feature.unset, .bytesList([]))

        XCTAssertEqual(Example().serializedData(), Data([0x0a, 0x00]))
        XCTAssertEqual(try Example(serializedData: Data()), Example())
        XCTAssertEqual(try Example(serializedData: Data([0x0a, 0x00])), Example())
        // Empty lists: the kind is set, its list message is empty.
        XCTAssertEqual(Example(features: ["f": .floatList([])]).serializedData(), Data([0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x01, 0x66, 0x12, 0x02, 0x12, 0x00]))
    }

    func testDecodesUnpackedListsAndSkipsUnknownFields() throws {
        // float_list written unpacked (0d + 4 bytes each), int64_list unpacked (08 + varint each),
        // with unknown fields of every wire type sprinkled in.
        let unknown: [UInt8] = [
            0x28, 0x96, 0x01,  // field 5, varint 150
            0x31, 1, 2, 3, 4, 5, 6, 7, 8,  // field 6, fixed64
            0x3d, 1, 2, 3, 4,  // field 7, fixed32
            0x42, 0x02, 0xaa, 0xbb,  // field 8, length-delimited
            0x4b, 0x08, 0x01, 0x4c,  // field 9, a group holding field 1 = 1
        ]
        let floats: [UInt8] = [0x0d, 0x00, 0x00, 0x80, 0x3f] + unknown + [0x0d, 0x00, 0x00, 0x00, 0xc0]
        let int64s: [UInt8] = [0x08, 0x05] + unknown + [0x08] + [UInt8](repeating: 0xff, count: 9) + [0x01]
        func entry(_ key: String, _ feature: [UInt8]) -> [UInt8] {
            lengthDelimited(1, lengthDelimited(1, Array(key.utf8)) + unknown + lengthDelimited(2, feature))
        }
        let features = entry("x", lengthDelimited(2, floats) + unknown) + entry("id", lengthDelimited(3, int64s))
        let bytes = unknown + lengthDelimited(1, features) + unknown

        let example = try Example(serializedData: Data(bytes))
        XCTAssertEqual(example, Example(features: ["x": .floatList([1, -2]), "id": .int64List([5, -1])]))
        // Re-encoding writes TensorFlow's canonical form: packed, no unknown fields.
        XCTAssertEqual(try Example(serializedData: example.serializedData()), example)
    }

    func testMergesRepeatedFieldsAsProtobufDoes() throws {
        func entry(_ key: UInt8, _ feature: [UInt8]) -> [UInt8] {
            [0x0a, UInt8(5 + feature.count), 0x0a, 0x01, key, 0x12, UInt8(feature.count)] + feature
        }
        let packedInts = [0x1a, 0x03, 0x0a, 0x01, 0x07] as [UInt8]  // int64_list { value: [7] }
        let moreInts = [0x1a, 0x03, 0x0a, 0x01, 0x08] as [UInt8]  // int64_list { value: [8] }
        let bytesList = [0x0a, 0x03, 0x0a, 0x01, 0x62] as [UInt8]  // bytes_list { value: ["b"] }
        let firstFeatures = entry(0x61, packedInts + moreInts) + entry(0x62, packedInts) + entry(0x63, packedInts + bytesList)
        let secondFeatures = entry(0x62, moreInts)
        let bytes = [0x0a, UInt8(firstFeatures.count)] + firstFeatures + [0x0a, UInt8(secondFeatures.count)] + secondFeatures
        let example = try Example(serializedData: Data(bytes))
        XCTAssertEqual(example["a"], .int64List([7, 8]), "the same kind twice appends")
        XCTAssertEqual(example["b"], .int64List([8]), "a later map entry replaces an earlier one")
        XCTAssertEqual(example["c"], .bytesList([Data("b".utf8)]), "another kind replaces the first")
    }

    func testMalformedRecordsAreRejectedWithTheirOffset() {
        let cases: [(bytes: [UInt8], offset: Int, reason: String)] = [
            ([0x0a], 1, "ends inside a varint"),
            ([0x0a, 0x05, 0x0a], 1, "runs past the end"),
            ([0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 1, "longer than 10 bytes"),
            ([0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x01, 0x78, 0x12, 0x02, 0x12, 0x01], 10, "runs past the end"),
            ([0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 0x78, 0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x00], 13, "not a multiple of 4"),
            ([0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x00], 6, "not valid UTF-8"),
            ([0x0c], 1, "without its start"),
            ([0x00], 0, "invalid field tag"),
            ([0x0f], 0, "invalid field tag"),
        ]
        for (bytes, offset, reason) in cases {
            XCTAssertThrowsError(try Example(serializedData: Data(bytes)), "\(bytes)") { error in
                guard let error = error as? ExampleDecodingError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.offset, offset, "\(bytes): \(error)")
                XCTAssertTrue(error.reason.contains(reason), "\(bytes): \(error)")
            }
        }
    }

    func testFloatEqualityIsBitwise() {
        XCTAssertNotEqual(Feature.floatList([0.0]), .floatList([-0.0]))
        XCTAssertEqual(Feature.floatList([.nan]), .floatList([.nan]))
        let signalingNaN = Float(bitPattern: 0x7fa0_0001)
        let roundTripped = try? Example(serializedData: Example(features: ["n": .floatList([signalingNaN])]).serializedData())
        guard case .floatList(let values)? = roundTripped?["n"] else { return XCTFail("no float list") }
        XCTAssertEqual(values.map(\.bitPattern), [0x7fa0_0001])
    }
}

/// A length-delimited protobuf field (numbered below 16): tag, varint length, contents.
private func lengthDelimited(_ field: UInt8, _ contents: [UInt8]) -> [UInt8] {
    var length: [UInt8] = []
    var remaining = contents.count
    while remaining >= 0x80 {
        length.append(UInt8(remaining & 0x7f) | 0x80)
        remaining >>= 7
    }
    length.append(UInt8(remaining))
    return [field << 3 | 2] + length + contents
}
