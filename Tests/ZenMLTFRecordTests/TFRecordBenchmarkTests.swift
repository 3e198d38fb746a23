import Foundation
import XCTest
import ZenMLTFRecord

/// Throughput of a ~100 MB file, skipped unless `ZENML_TFRECORD_BENCHMARK=1`; measure in release:
/// `ZENML_TFRECORD_BENCHMARK=1 swift test -c release --filter TFRecordBenchmarkTests`.
final class TFRecordBenchmarkTests: XCTestCase {
    func testThroughputOfAHundredMegabyteFile() throws {
        guard ProcessInfo.processInfo.environment["ZENML_TFRECORD_BENCHMARK"] == "1" else {
            throw XCTSkip("set ZENML_TFRECORD_BENCHMARK=1 to measure throughput")
        }
        let directory = try makeTemporaryDirectory(for: self)
        let record = Data((0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let count = 100_000_000 / (record.count + 16)
        for compression in TFRecordCompression.allCases {
            let path = directory.appendingPathComponent("bench\(compression.fileExtension)").path
            let clock = ContinuousClock()
            let writing = try clock.measure {
                let writer = try TFRecordWriter(path: path, options: .init(compression: compression))
                for _ in 0..<count { try writer.write(record) }
                try writer.close()
            }
            var read = 0
            let reading = try clock.measure {
                let reader = try TFRecordReader(path: path)
                while try reader.next() != nil { read += 1 }
            }
            XCTAssertEqual(read, count)
            let megabytes = Double(count * (record.count + 16)) / 1e6
            func rate(_ duration: Duration) -> Int {
                Int(megabytes / (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18))
            }
            print("\(compression): \(count) records of 1 KiB (\(Int(megabytes)) MB): write \(rate(writing)) MB/s, read \(rate(reading)) MB/s")
        }
    }
}
