import Foundation
import XCTest
import ZenMLTFRecord

/// The TensorFlow-written files in `shared/testdata/tfrecord/` and their description, `vectors.json`.
///
/// `shared/` sits beside the repository (CI clones the repository next to it), so the directory is
/// found from this file's path: `<repo>/Tests/ZenMLTFRecordTests/TestSupport.swift` →
/// `<repo>/../shared/testdata/tfrecord`. `ZENML_TFRECORD_TESTDATA` overrides it.
struct TestVectors {
    let directory: URL
    let files: [String: VectorFile]

    static func load(file: StaticString = #filePath, line: UInt = #line) throws -> TestVectors {
        let directory: URL
        if let override = ProcessInfo.processInfo.environment["ZENML_TFRECORD_TESTDATA"] {
            directory = URL(fileURLWithPath: override)
        } else {
            let repositoryRoot = URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            directory = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata/tfrecord")
        }
        let vectorsURL = directory.appendingPathComponent("vectors.json")
        guard FileManager.default.fileExists(atPath: vectorsURL.path) else {
            let message = """
                TFRecord test vectors not found at \(vectorsURL.path). They live in shared/testdata/tfrecord/, \
                a sibling of the repository directory; check out shared/ next to the repository or set \
                ZENML_TFRECORD_TESTDATA to the directory holding vectors.json.
                """
            XCTFail(message, file: file, line: line)
            throw XCTSkip(message)
        }
        let decoded = try JSONDecoder().decode(VectorsDocument.self, from: Data(contentsOf: vectorsURL))
        return TestVectors(directory: directory, files: decoded.files)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func file(_ name: String) throws -> VectorFile {
        try XCTUnwrap(files[name], "vectors.json does not describe \(name)")
    }

    /// The records of a file, following `same_records_as` for the compressed variants.
    func records(of name: String) throws -> [VectorRecord] {
        let described = try file(name)
        if let records = described.records { return records }
        let original = try XCTUnwrap(described.sameRecordsAs, "\(name) lists no records")
        return try records(of: original)
    }

    func bytes(_ name: String) throws -> Data { try Data(contentsOf: directory.appendingPathComponent(name)) }
}

struct VectorsDocument: Decodable {
    let files: [String: VectorFile]
}

struct VectorFile: Decodable {
    let compression: String
    let sizeBytes: Int
    let kind: String
    let recordCount: Int?
    let records: [VectorRecord]?
    let sameRecordsAs: String?
    let corruptRecordIndex: Int?
    let corruptRecordOffset: UInt64?
    let corruptRecordLength: UInt64?
    let validRecordsBeforeError: Int?

    enum CodingKeys: String, CodingKey {
        case compression, kind, records
        case sizeBytes = "size_bytes", recordCount = "record_count", sameRecordsAs = "same_records_as"
        case corruptRecordIndex = "corrupt_record_index", corruptRecordOffset = "corrupt_record_offset"
        case corruptRecordLength = "corrupt_record_length", validRecordsBeforeError = "valid_records_before_error"
    }
}

struct VectorRecord: Decodable {
    let index: Int
    let offset: UInt64
    let length: UInt64
    let maskedCRCLength: UInt32
    let maskedCRCData: UInt32
    let dataBase64: String?
    let serializedBase64: String?
    let features: [String: VectorFeature]?
    let canonicalLine: String?

    enum CodingKeys: String, CodingKey {
        case index, offset, length, features
        case maskedCRCLength = "masked_crc_length", maskedCRCData = "masked_crc_data"
        case dataBase64 = "data_b64", serializedBase64 = "serialized_b64", canonicalLine = "canonical_line"
    }

    /// The record's bytes: `data_b64` for raw files, `serialized_b64` for examples.
    var data: Data {
        get throws {
            let base64 = try XCTUnwrap(dataBase64 ?? serializedBase64, "record \(index) has no bytes")
            return try XCTUnwrap(Data(base64Encoded: base64), "record \(index): bad base64")
        }
    }

    /// The Example the vector describes, built from its JSON (not from the serialized bytes).
    var example: Example {
        get throws {
            let features = try XCTUnwrap(self.features, "record \(index) has no features")
            return Example(features: try features.mapValues { try $0.feature })
        }
    }
}

struct VectorFeature: Decodable {
    let kind: String
    let int64Values: [Int64]?
    let bytesBase64: [String]?
    let float32Hex: [String]?

    enum CodingKeys: String, CodingKey {
        case kind, values
        case bytesBase64 = "values_b64", float32Hex = "f32_hex"
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decode(String.self, forKey: .kind)
        int64Values = kind == "int64_list" ? try container.decode([Int64].self, forKey: .values) : nil
        bytesBase64 = try container.decodeIfPresent([String].self, forKey: .bytesBase64)
        float32Hex = try container.decodeIfPresent([String].self, forKey: .float32Hex)
    }

    var feature: Feature {
        get throws {
            switch kind {
            case "bytes_list":
                return .bytesList(try XCTUnwrap(bytesBase64).map { try XCTUnwrap(Data(base64Encoded: $0)) })
            case "float_list":
                return .floatList(try XCTUnwrap(float32Hex).map { Float(bitPattern: try XCTUnwrap(UInt32($0, radix: 16))) })
            case "int64_list":
                return .int64List(try XCTUnwrap(int64Values))
            default:
                throw XCTSkip("unknown feature kind \(kind) in vectors.json")
            }
        }
    }
}

/// The `canonical_line` of vectors.json for an example: keys sorted by code point, each feature as
/// `{"int64":[decimal strings]}`, `{"float":[big-endian hex bits]}`, `{"bytes":[base64]}` or `{"none":[]}`.
func canonicalLine(_ example: Example) -> String {
    let keys = example.features.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    let members = keys.map { key -> String in
        let value: String
        switch example.features[key] ?? .unset {
        case .int64List(let values): value = #"{"int64":["# + values.map { "\"\($0)\"" }.joined(separator: ",") + "]}"
        case .floatList(let values):
            value = #"{"float":["# + values.map { "\"\(hex32($0.bitPattern))\"" }.joined(separator: ",") + "]}"
        case .bytesList(let values):
            value = #"{"bytes":["# + values.map { "\"\($0.base64EncodedString())\"" }.joined(separator: ",") + "]}"
        case .unset: value = #"{"none":[]}"#
        }
        return jsonString(key) + ":" + value
    }
    return "{" + members.joined(separator: ",") + "}"
}

private func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

/// A JSON string literal as Python's `json.dumps(ensure_ascii=True)` writes it.
private func jsonString(_ text: String) -> String {
    var out = "\""
    for unit in text.utf16 {
        switch unit {
        case 0x22: out += "\\\""
        case 0x5c: out += "\\\\"
        case 0x20..<0x7f: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
        default:
            let digits = String(unit, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
        }
    }
    return out + "\""
}

/// A fresh directory removed when the test ends.
func makeTemporaryDirectory(for test: XCTestCase) throws -> URL {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("zenml-tfrecord-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    return directory
}

/// Reads every record of a file.
func readAll(_ path: String, options: TFRecordReader.Options = TFRecordReader.Options()) throws -> [Data] {
    let reader = try TFRecordReader(path: path, options: options)
    var records: [Data] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

/// Writes records to a file.
func writeAll(_ records: [Data], to path: String, options: TFRecordWriter.Options = TFRecordWriter.Options()) throws {
    let writer = try TFRecordWriter(path: path, options: options)
    for record in records { try writer.write(record) }
    try writer.close()
}

/// Reads records until the reader throws, returning the records read and the error (or `nil`).
func readUntilError(_ reader: TFRecordReader) -> (records: [Data], error: TFRecordError?) {
    var records: [Data] = []
    do {
        while let record = try reader.next() { records.append(record) }
        return (records, nil)
    } catch {
        return (records, error)
    }
}

/// A deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Data {
    static func random(count: Int, using generator: inout SplitMix64) -> Data {
        Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
