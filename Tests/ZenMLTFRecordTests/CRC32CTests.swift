import Foundation
import XCTest
import ZenMLTFRecord

final class CRC32CTests: XCTestCase {
    /// The implementations to check: the portable one, and the hardware one when this CPU has it.
    private var implementations: [CRC32C.Implementation] {
        [.portable] + (CRC32C.hardwareImplementation.map { [$0] } ?? [])
    }

    func testKnownAnswersForEveryImplementation() {
        // The CRC catalogue's check value and RFC 3720 (iSCSI) appendix B.4.
        let vectors: [(bytes: [UInt8], crc: UInt32)] = [
            (Array("123456789".utf8), 0xE306_9283),
            ([], 0),
            ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
            ([UInt8](repeating: 0xff, count: 32), 0x62A8_AB43),
            (Array(0...31), 0x46DD_794E),
            (Array((0...31).reversed()), 0x113F_DB5C),
            (
                [
                    0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
                    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                ], 0xD996_3A56
            ),
        ]
        for implementation in implementations {
            for (bytes, crc) in vectors {
                XCTAssertEqual(CRC32C.checksum(bytes, using: implementation), crc, "\(implementation), \(bytes.count) bytes")
            }
        }
        XCTAssertEqual(CRC32C.checksum(Data("123456789".utf8)), 0xE306_9283, "default implementation")
    }

    func testHardwareImplementationIsDetectedOnCommonCPUs() throws {
        #if arch(x86_64)
        let expected = CRC32C.Implementation.sse42
        #elseif arch(arm64)
        let expected = CRC32C.Implementation.armv8
        #else
        throw XCTSkip("no hardware CRC32C implementation for this architecture")
        #endif
        guard let hardware = CRC32C.hardwareImplementation else {
            throw XCTSkip("this CPU lacks \(expected); only the portable implementation runs here")
        }
        XCTAssertEqual(hardware, expected)
        XCTAssertEqual(CRC32C.activeImplementation, expected)
    }

    func testHardwareAndPortableAgreeOnRandomBuffers() throws {
        guard let hardware = CRC32C.hardwareImplementation else {
            throw XCTSkip("this CPU has no hardware CRC32C implementation to compare with")
        }
        var generator = SplitMix64(seed: 0x5EED)
        let pool = [UInt8](Data.random(count: 1 << 20 + 64, using: &generator))
        pool.withUnsafeBytes { pool in
            for trial in 0..<2000 {
                // Every misalignment and every tail length, and now and then a long buffer.
                let start = Int.random(in: 0..<64, using: &generator)
                let count = trial % 100 == 0 ? Int.random(in: 0...(1 << 20), using: &generator) : Int.random(in: 0...600, using: &generator)
                let bytes = UnsafeRawBufferPointer(rebasing: pool[start..<start + count])
                let seed = trial % 2 == 0 ? 0 : UInt32.random(in: 0...UInt32.max, using: &generator)
                let portable = CRC32C.checksum(bytes, extending: seed, using: .portable)
                let accelerated = CRC32C.checksum(bytes, extending: seed, using: hardware)
                if portable != accelerated {
                    XCTFail("trial \(trial): \(count) bytes at offset \(start): portable \(portable) != \(hardware) \(accelerated)")
                    return
                }
            }
        }
    }

    /// The hardware paths run three chains over blocks of 3 x 256 and 3 x 4096 bytes and join them;
    /// every length up to 5,000 (one and more rounds of the small blocks, with every tail) at every
    /// misalignment, from a nonzero CRC, and lengths around the big blocks' rounds.
    func testHardwareAndPortableAgreeOnEveryLengthAndAlignment() throws {
        guard let hardware = CRC32C.hardwareImplementation else {
            throw XCTSkip("this CPU has no hardware CRC32C implementation to compare with")
        }
        var generator = SplitMix64(seed: 0xC0FFEE)
        let pool = [UInt8](Data.random(count: 3 * 3 * 4096 + 2 * 768 + 64, using: &generator))
        let roundBoundaries = [12288, 24576, 36864].flatMap { round in
            [-769, -768, -767, -9, -8, -7, -1, 0, 1, 7, 8, 9, 767, 768, 769].map { round + $0 }
        }
        pool.withUnsafeBytes { pool in
            for count in Array(0...5000) + roundBoundaries {
                for start in 0..<8 {
                    let bytes = UnsafeRawBufferPointer(rebasing: pool[start..<start + count])
                    let seed = UInt32(truncatingIfNeeded: count &* 2_654_435_761)
                    let portable = CRC32C.checksum(bytes, extending: seed, using: .portable)
                    let accelerated = CRC32C.checksum(bytes, extending: seed, using: hardware)
                    if portable != accelerated {
                        XCTFail("\(count) bytes at offset \(start): portable \(portable) != \(hardware) \(accelerated)")
                        return
                    }
                }
            }
        }
    }

    /// A CRC computed bit by bit from the definition, for a check that does not lean on the tables.
    func testLongBuffersMatchTheBitwiseDefinition() {
        var generator = SplitMix64(seed: 7)
        let bytes = [UInt8](Data.random(count: 100_003, using: &generator))
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        for implementation in implementations {
            XCTAssertEqual(CRC32C.checksum(bytes, using: implementation), ~crc, "\(implementation)")
            XCTAssertEqual(CRC32C.checksum(bytes[1...], using: implementation), CRC32C.checksum(Array(bytes[1...]), using: .portable), "\(implementation), misaligned")
        }
    }

    func testExtendingEqualsChecksumOfConcatenation() {
        var generator = SplitMix64(seed: 42)
        let whole = Data.random(count: 1000, using: &generator)
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            for implementation in implementations {
                let first = CRC32C.checksum(whole.prefix(split), using: implementation)
                let both = CRC32C.checksum(whole.suffix(from: split), extending: first, using: implementation)
                XCTAssertEqual(both, CRC32C.checksum(whole, using: implementation), "split at \(split), \(implementation)")
            }
        }
    }

    func testForcingThePortableImplementation() {
        defer { CRC32C.forcePortableImplementation(false) }
        let hardwareResult = CRC32C.checksum(Data("123456789".utf8))
        CRC32C.forcePortableImplementation(true)
        XCTAssertEqual(CRC32C.activeImplementation, .portable)
        XCTAssertEqual(CRC32C.checksum(Data("123456789".utf8)), hardwareResult)
        CRC32C.forcePortableImplementation(false)
        XCTAssertEqual(CRC32C.activeImplementation, CRC32C.hardwareImplementation ?? .portable)
    }

    func testMaskMatchesTensorFlowFraming() throws {
        let vectors = try TestVectors.load()
        for record in try vectors.records(of: "raw.tfrecord") + vectors.records(of: "examples.tfrecord") {
            var length = record.length.littleEndian
            let lengthBytes = Data(bytes: &length, count: 8)
            XCTAssertEqual(CRC32C.mask(CRC32C.checksum(lengthBytes)), record.maskedCRCLength, "record \(record.index)")
            XCTAssertEqual(CRC32C.mask(CRC32C.checksum(try record.data)), record.maskedCRCData, "record \(record.index)")
            XCTAssertEqual(CRC32C.mask(CRC32C.unmask(record.maskedCRCData)), record.maskedCRCData)
        }
        XCTAssertEqual(CRC32C.unmask(CRC32C.mask(0xE306_9283)), 0xE306_9283)
    }
}
