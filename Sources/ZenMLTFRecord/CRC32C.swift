import CZenMLTFRecord
import Foundation

/// CRC-32C (Castagnoli), the checksum TFRecord framing uses, and TensorFlow's masking of it.
///
/// The checksum runs on the SSE4.2 `crc32` instruction on x86-64 and on the ARMv8 CRC32 extension on
/// aarch64 when the CPU has them, and on slicing-by-8 tables otherwise; the choice is made once, at
/// run time. Every implementation computes the same function.
///
/// ```swift
/// CRC32C.checksum(Data("123456789".utf8))  // 0xE3069283
/// ```
public enum CRC32C {
    /// A way of computing CRC-32C.
    public enum Implementation: Sendable, Hashable, CustomStringConvertible {
        /// Slicing-by-8 tables: runs anywhere.
        case portable
        /// The SSE4.2 `crc32` instruction (x86-64).
        case sse42
        /// The ARMv8 CRC32 extension (aarch64).
        case armv8

        public var description: String {
            switch self {
            case .portable: return "portable (slicing-by-8)"
            case .sse42: return "SSE4.2"
            case .armv8: return "ARMv8 CRC32"
            }
        }

        init(_ raw: czenml_crc32c_impl) {
            switch raw {
            case CZENML_CRC32C_SSE42: self = .sse42
            case CZENML_CRC32C_ARMV8: self = .armv8
            default: self = .portable
            }
        }

        var raw: czenml_crc32c_impl {
            switch self {
            case .portable: return CZENML_CRC32C_PORTABLE
            case .sse42: return CZENML_CRC32C_SSE42
            case .armv8: return CZENML_CRC32C_ARMV8
            }
        }
    }

    /// The hardware implementation this CPU supports, or `nil` when only the portable one runs here.
    public static var hardwareImplementation: Implementation? {
        let implementation = Implementation(czenml_crc32c_hardware_impl())
        return implementation == .portable ? nil : implementation
    }

    /// The implementation ``checksum(_:extending:)`` uses now.
    public static var activeImplementation: Implementation {
        Implementation(czenml_crc32c_active_impl())
    }

    /// Makes every checksum in the process use the portable implementation (`true`), or the best
    /// one again (`false`). Meant for tests and for ruling out a faulty CPU; it changes speed, never
    /// results.
    public static func forcePortableImplementation(_ force: Bool) {
        czenml_crc32c_force_portable(force ? 1 : 0)
    }

    /// The CRC-32C of `bytes`, continuing `crc`, the checksum of the bytes before them (0 for none),
    /// so `checksum(b, extending: checksum(a)) == checksum(a + b)`.
    public static func checksum(
        _ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0, using implementation: Implementation? = nil
    ) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        if let implementation {
            return czenml_crc32c_extend_using(implementation.raw, crc, base, bytes.count)
        }
        return czenml_crc32c_extend(crc, base, bytes.count)
    }

    /// The CRC-32C of `bytes` (any contiguous bytes: `Data`, `[UInt8]`, ...), continuing `crc`.
    public static func checksum(
        _ bytes: some ContiguousBytes, extending crc: UInt32 = 0, using implementation: Implementation? = nil
    ) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, extending: crc, using: implementation) }
    }

    /// TensorFlow's masked form of a CRC, the one stored in TFRecord files:
    /// `((crc >> 15) | (crc << 17)) &+ 0xA282EAD8`. Masking keeps a CRC of data that itself holds
    /// CRCs from being degenerate.
    public static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The CRC a masked value was made from; `unmask(mask(c)) == c`.
    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }

    /// The masked CRC-32C of `bytes`, as TFRecord framing stores it.
    static func maskedChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        mask(checksum(bytes))
    }
}
