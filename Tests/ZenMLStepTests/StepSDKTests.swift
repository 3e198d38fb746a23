import Foundation
import XCTest
@testable import ZenMLStep

final class StepSDKTests: XCTestCase {
    func request(contract: Int = 1, inputs: String = "{}", outputs: String = "{}") -> Data {
        Data(#"""
            {"contract":\#(contract),"pipeline":{"name":"p","version":"sha256:00"},"run":{"id":"r"},
             "step":{"name":"s","bundle":"b","bundle_version":"1","bundle_digest":"sha256:11","cache_key":"sha256:22"},
             "config":{"rate":0.5,"epochs":3,"name":"x","layers":[1,2]},"inputs":\#(inputs),"outputs":\#(outputs),
             "scratch":"/tmp/s","seed":4503599627370495}
            """#.utf8)
    }

    func testDecodesTheRequestAndItsConfig() throws {
        let decoded = try StepRequest.decode(request())
        let context = StepContext(request: decoded)
        XCTAssertEqual(try context.number("rate"), 0.5)
        XCTAssertEqual(context.config("epochs")?.intValue, 3)
        XCTAssertEqual(try context.string("name"), "x")
        XCTAssertEqual(context.config("layers")?.arrayValue?.count, 2)
        XCTAssertEqual(decoded.seed, 4_503_599_627_370_495)
        XCTAssertEqual(decoded.step.cacheKey, "sha256:22")
        XCTAssertThrowsError(try context.number("name"))
        XCTAssertThrowsError(try context.outputPath("model")) { error in
            XCTAssertTrue("\(error)".contains("no output 'model'"), "\(error)")
        }
    }

    func testRefusesOtherContractVersions() {
        XCTAssertThrowsError(try StepRequest.decode(request(contract: 2))) { error in
            XCTAssertTrue("\(error)".contains("the host sent version 2"), "\(error)")
        }
        XCTAssertThrowsError(try StepRequest.decode(Data("{}".utf8)))
    }

    func testReadsAndWritesExamplesAcrossArtifacts() throws {
        let root = NSTemporaryDirectory() + "sdk-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for directory in ["a", "b", "out"] {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        for (directory, values) in [("a", [1, 2]), ("b", [3])] {
            let writer = try TFRecordWriter(path: root + "/\(directory)/" + ShardedTFRecord.shardFileName(index: 0, count: 1))
            for value in values { try writer.write(Example(features: ["x": .int64List([Int64(value)])])) }
            try writer.close()
        }
        let context = StepContext(request: try StepRequest.decode(request(
            inputs: #"{"parts":[{"path":"\#(root)/a","type":"Examples","digest":"sha256:a","properties":{}},{"path":"\#(root)/b","type":"Examples","digest":"sha256:b","properties":{"records":1}}]}"#,
            outputs: #"{"out":{"path":"\#(root)/out","type":"Examples"}}"#)))
        let values = try context.examples(from: "parts").collect().compactMap { example -> Int64? in
            if case .int64List(let list) = example.features["x"] { return list.first }
            return nil
        }
        XCTAssertEqual(values, [1, 2, 3], "all artifacts, in order")
        XCTAssertThrowsError(try context.inputPath("parts"), "two artifacts are not one")

        let writer = try context.exampleWriter(output: "out", compression: .gzip)
        try writer.write(Example(features: ["y": .floatList([0.5])]))
        try writer.close()
        let reader = try ShardedTFRecord(directory: root + "/out").makeReader()
        XCTAssertEqual(try reader.nextExample()?.features["y"], .floatList([0.5]))
    }
}
