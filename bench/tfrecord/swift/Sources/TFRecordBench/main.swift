// TFRecord benchmark of the Swift library ZenMLTFRecord; see bench/tfrecord/README.md.
//
//   TFRecordBench write DIR N   build and serialize N examples, write DIR/data.tfrecord and .gz
//   TFRecordBench read DIR N    read both files (framing, both CRCs checked), then decode every example
//   TFRecordBench crc           CRC-32C over 1 GiB (a 64 MiB buffer, 16 times)
//
// Prints "swift<TAB>metric<TAB>value" lines. Example i is the same as in the C and Python runners.

import Foundation
import ZenMLTFRecord

func seconds(_ clock: clockid_t) -> Double {
    var time = timespec()
    clock_gettime(clock, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// The last two `now()` calls' wall-clock and process CPU times: a rate reported right after the end
/// of a timed interval is also reported per CPU second ("<metric>_cpu"), which a machine shared with
/// other work moves much less than the wall-clock rate.
nonisolated(unsafe) var marks = [(wall: 0.0, cpu: 0.0), (wall: 0.0, cpu: 0.0)]

func now() -> Double {
    marks[0] = marks[1]
    marks[1] = (seconds(CLOCK_MONOTONIC), seconds(CLOCK_PROCESS_CPUTIME_ID))
    return marks[1].wall
}

func report(_ metric: String, _ value: Double) {
    print("swift\t\(metric)\t\(value)")
    let wall = marks[1].wall - marks[0].wall, cpu = marks[1].cpu - marks[0].cpu
    if ["_rps", "_MBps", "_GBps"].contains(where: metric.hasSuffix), cpu > 0 {
        print("swift\t\(metric)_cpu\t\(value * wall / cpu)")
    }
}

func peakRSSMegabytes() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1024 / 1024  // bytes on macOS
    #endif
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("bench: \(message)\n".utf8))
    exit(1)
}

func example(_ i: Int64) -> Example {
    var payload = Data(count: 16)
    payload.withUnsafeMutableBytes { bytes in
        bytes.storeBytes(of: UInt64(bitPattern: i).littleEndian, toByteOffset: 0, as: UInt64.self)
        bytes.storeBytes(of: (UInt64(bitPattern: i) &* 0x9E37_79B9_7F4A_7C15).littleEndian, toByteOffset: 8, as: UInt64.self)
    }
    return Example(features: [
        "floats": .floatList([Float(i) * 0.5, -Float(i) * 0.25]),
        "id": .int64List([i]),
        "payload": .bytesList([payload]),
    ])
}

func benchWrite(directory: String, count: Int) throws {
    var start = now()
    var records: [Data] = []
    records.reserveCapacity(count)
    var bytes = 0
    for i in 0..<count {
        let record = example(Int64(i)).serializedData()
        bytes += record.count
        records.append(record)
    }
    var elapsed = now() - start
    report("build_serialize_rps", Double(count) / elapsed)
    report("example_bytes", Double(bytes) / Double(count))
    for (name, compression, metric) in [
        ("data.tfrecord", TFRecordCompression.none, "write_none"), ("data.tfrecord.gz", .gzip, "write_gzip"),
    ] {
        start = now()
        let writer = try TFRecordWriter(path: directory + "/" + name, options: .init(compression: compression))
        for record in records { try writer.write(record) }
        try writer.close()
        elapsed = now() - start
        report("\(metric)_rps", Double(count) / elapsed)
        report("\(metric)_MBps", Double(bytes + 16 * count) / elapsed / 1e6)
    }
    report("write_peak_rss_MB", peakRSSMegabytes())
}

func benchRead(directory: String, count: Int) throws {
    for (name, metric) in [("data.tfrecord", "read_none"), ("data.tfrecord.gz", "read_gzip")] {
        let start = now()
        let reader = try TFRecordReader(path: directory + "/" + name)
        var records = 0, bytes = 0
        while let record = try reader.next() {
            records += 1
            bytes += record.count + 16
        }
        let elapsed = now() - start
        guard records == count else { fail("read \(records) records from \(name), expected \(count)") }
        report("\(metric)_rps", Double(records) / elapsed)
        report("\(metric)_MBps", Double(bytes) / elapsed / 1e6)
    }
    let start = now()
    let reader = try TFRecordReader(path: directory + "/data.tfrecord")
    var records = 0
    var sum: Int64 = 0
    while let decoded = try reader.nextExample() {
        guard case .int64List(let ids)? = decoded["id"] else { fail("record \(records) has no id") }
        sum &+= ids[0]
        records += 1
    }
    let elapsed = now() - start
    guard records == count, sum == Int64(count) * Int64(count - 1) / 2 else { fail("decode: wrong content") }
    report("decode_rps", Double(records) / elapsed)
    report("read_peak_rss_MB", peakRSSMegabytes())
}

func benchCRC() {
    let size = 64 << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
    defer { buffer.deallocate() }
    for i in 0..<size { buffer[i] = UInt8(truncatingIfNeeded: i &* 131 &+ (i >> 9)) }
    var crc = CRC32C.checksum(UnsafeRawBufferPointer(buffer))
    let start = now()
    for _ in 0..<16 { crc = CRC32C.checksum(UnsafeRawBufferPointer(buffer), extending: crc) }
    let elapsed = now() - start
    report("crc_GBps", Double(size) * 16 / elapsed / 1e9)
    FileHandle.standardError.write(Data("swift: CRC-32C \(CRC32C.activeImplementation) (\(String(crc, radix: 16)))\n".utf8))
}

let arguments = CommandLine.arguments
do {
    switch (arguments.count, arguments.dropFirst().first) {
    case (4, "write"): try benchWrite(directory: arguments[2], count: Int(arguments[3])!)
    case (4, "read"): try benchRead(directory: arguments[2], count: Int(arguments[3])!)
    case (2, "crc"): benchCRC()
    default:
        FileHandle.standardError.write(Data("usage: TFRecordBench write|read DIR N | crc\n".utf8))
        exit(2)
    }
} catch {
    fail("\(error)")
}
