import CZenMLTFRecord

/// How a TFRecord file is compressed, as `tf.io.TFRecordOptions(compression_type:)` names it.
///
/// A compressed file is one GZIP (RFC 1952) or ZLIB (RFC 1950) stream over the whole uncompressed
/// TFRecord byte stream, exactly as TensorFlow writes it; records are not compressed one by one.
public enum TFRecordCompression: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Plain TFRecord framing (`compression_type=""` or `"NONE"`).
    case none = "NONE"
    /// A gzip stream: deflate with a gzip header and trailer (`compression_type="GZIP"`).
    case gzip = "GZIP"
    /// A zlib stream: deflate with a zlib header and Adler-32 trailer (`compression_type="ZLIB"`).
    case zlib = "ZLIB"

    public var description: String { rawValue }

    /// The file name suffix this project gives shards so compressed: `.tfrecord`, `.tfrecord.gz`,
    /// `.tfrecord.zlib`. Readers never rely on it; they look at the bytes.
    public var fileExtension: String {
        switch self {
        case .none: return ".tfrecord"
        case .gzip: return ".tfrecord.gz"
        case .zlib: return ".tfrecord.zlib"
        }
    }

    /// zlib's `windowBits` for this format: 15 for ZLIB, 16 + 15 for GZIP (as TensorFlow uses).
    var zlibWindowBits: Int32? {
        switch self {
        case .none: return nil
        case .gzip: return 16 + MAX_WBITS
        case .zlib: return MAX_WBITS
        }
    }

    /// The number of leading bytes ``detect(fromPrefix:)`` wants: one TFRecord length header and its CRC.
    static let detectionPrefixLength = 12

    /// Guesses the compression of a file from its first bytes (up to ``detectionPrefixLength``).
    ///
    /// An uncompressed file whose first length header carries a valid CRC wins first, since the first
    /// bytes of a plain file can look like a compression header (a first record of 376 bytes starts
    /// `78 01`, a valid zlib header). Otherwise `1f 8b` means GZIP and a valid zlib header (deflate
    /// method, window ≤ 32 KiB, header checksum a multiple of 31) means ZLIB. Anything else is read
    /// as uncompressed, so its damage is reported as TFRecord framing errors.
    static func detect(fromPrefix prefix: [UInt8]) -> TFRecordCompression {
        if prefix.count >= detectionPrefixLength {
            let storedCRC = prefix[8..<12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let computedCRC = prefix.withUnsafeBytes {
                CRC32C.maskedChecksum(UnsafeRawBufferPointer(rebasing: $0[0..<8]))
            }
            if storedCRC == computedCRC { return .none }
        }
        guard prefix.count >= 2 else { return .none }
        if prefix[0] == 0x1f && prefix[1] == 0x8b { return .gzip }
        let method = prefix[0] & 0x0f, windowLog = prefix[0] >> 4
        if method == 8 && windowLog <= 7 && (UInt16(prefix[0]) << 8 | UInt16(prefix[1])) % 31 == 0 {
            return .zlib
        }
        return .none
    }
}
