import Foundation

/// Why reading or writing a TFRecord file failed.
///
/// Errors about a record carry the file's path and the record's 0-based index, which is also the
/// number of records before it that were read intact. Byte offsets count bytes of the uncompressed
/// TFRecord stream, which for a GZIP or ZLIB file is the decompressed stream. A reader never returns
/// data that failed a check: after an error it throws the same error again.
public enum TFRecordError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed: `operation` is what was attempted ("open", "read", "write", ...).
    case io(path: String, operation: String, errno: Int32)

    /// The CRC of a record's 8-byte length header does not match, so the record's length, and with
    /// it where every later record starts, cannot be trusted.
    case corruptLength(path: String, recordIndex: Int, offset: UInt64)

    /// The CRC of a record's data does not match (its length header was intact).
    case corruptData(path: String, recordIndex: Int, offset: UInt64, length: UInt64)

    /// The stream ends inside a record: `availableBytes` of the `expectedBytes` its framing needs
    /// (12 header bytes, or header, data and 4-byte data CRC) are there.
    case truncatedRecord(path: String, recordIndex: Int, offset: UInt64, expectedBytes: UInt64, availableBytes: UInt64)

    /// A record's length header (with a valid CRC) announces more bytes than the reader's
    /// ``TFRecordReader/Options/maximumRecordLength``.
    case recordTooLarge(path: String, recordIndex: Int, offset: UInt64, length: UInt64, limit: Int)

    /// The GZIP or ZLIB stream is damaged or ends early; `reason` is zlib's account of it.
    case corruptCompressedStream(path: String, compression: TFRecordCompression, recordIndex: Int, reason: String)

    /// zlib failed while compressing output (it does so only when out of memory).
    case compressionFailed(path: String, reason: String)

    /// A record was read intact but is not a serialized `tf.train.Example`.
    case malformedExample(path: String, recordIndex: Int, ExampleDecodingError)

    /// The writer was used after ``TFRecordWriter/close()`` or after an earlier write failed.
    case writerClosed(path: String)

    /// An artifact directory has no files named `<prefix>-NNNNN-of-NNNNN.tfrecord[.gz|.zlib]`.
    case noShards(directory: String, prefix: String)

    /// An artifact directory's shard files do not form one complete set; `problem` says how.
    case inconsistentShards(directory: String, prefix: String, problem: String)

    /// The file the error is about, when there is one.
    public var path: String {
        switch self {
        case .io(let path, _, _), .corruptLength(let path, _, _), .corruptData(let path, _, _, _),
            .truncatedRecord(let path, _, _, _, _), .recordTooLarge(let path, _, _, _, _),
            .corruptCompressedStream(let path, _, _, _), .compressionFailed(let path, _),
            .malformedExample(let path, _, _), .writerClosed(let path):
            return path
        case .noShards(let directory, _), .inconsistentShards(let directory, _, _):
            return directory
        }
    }

    /// The 0-based index of the record the error is about, when there is one.
    public var recordIndex: Int? {
        switch self {
        case .corruptLength(_, let index, _), .corruptData(_, let index, _, _),
            .truncatedRecord(_, let index, _, _, _), .recordTooLarge(_, let index, _, _, _),
            .corruptCompressedStream(_, _, let index, _), .malformedExample(_, let index, _):
            return index
        case .io, .compressionFailed, .writerClosed, .noShards, .inconsistentShards:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .io(let path, let operation, let code):
            return "cannot \(operation) '\(path)': \(String(cString: strerror(code)))"
        case .corruptLength(let path, let index, let offset):
            return """
                '\(path)': the length header of record \(index) (at byte \(offset)) fails its CRC32C check, \
                so this record and all after it are unreadable; \(Self.intactPrefix(index)). \
                If the file is compressed, check the compression setting; otherwise the file is damaged: \
                re-create or re-copy it.
                """
        case .corruptData(let path, let index, let offset, let length):
            return """
                '\(path)': the data of record \(index) (\(length) bytes at byte \(offset)) fails its CRC32C \
                check; \(Self.intactPrefix(index)). The file is damaged: re-create or re-copy it.
                """
        case .truncatedRecord(let path, let index, let offset, let expected, let available):
            return """
                '\(path)': record \(index) (at byte \(offset)) is cut short: the file ends after \(available) of \
                its \(expected) bytes; \(Self.intactPrefix(index)). The file was probably not finished \
                (an interrupted write or copy): re-create or re-copy it.
                """
        case .recordTooLarge(let path, let index, let offset, let length, let limit):
            return """
                '\(path)': record \(index) (at byte \(offset)) announces \(length) bytes, more than the reader's \
                limit of \(limit). If the file really holds records this large, raise \
                TFRecordReader.Options.maximumRecordLength; otherwise the file is damaged.
                """
        case .corruptCompressedStream(let path, let compression, let index, let reason):
            return """
                '\(path)': the \(compression) stream is damaged or incomplete while reading record \(index) \
                (\(reason)); \(Self.intactPrefix(index)). Check that the file really is \(compression)-compressed \
                and complete, or re-create it.
                """
        case .compressionFailed(let path, let reason):
            return "'\(path)': zlib failed to compress the output (\(reason)); the file is incomplete: write it again"
        case .malformedExample(let path, let index, let error):
            return "'\(path)': record \(index) is not a tf.train.Example: \(error)"
        case .writerClosed(let path):
            return "'\(path)': the TFRecord writer is closed (closed explicitly or by an earlier error); open a new one"
        case .noShards(let directory, let prefix):
            return """
                '\(directory)' holds no TFRecord shards named \(prefix)-NNNNN-of-NNNNN.tfrecord[.gz|.zlib]; \
                check the artifact directory and the shard prefix
                """
        case .inconsistentShards(let directory, let prefix, let problem):
            return "'\(directory)': the \(prefix)-*.tfrecord shards do not form one complete set: \(problem)"
        }
    }

    private static func intactPrefix(_ index: Int) -> String {
        switch index {
        case 0: return "no record before it was read"
        case 1: return "the 1 record before it is intact"
        default: return "the \(index) records before it are intact"
        }
    }
}

extension TFRecordError {
    /// A byte-layer failure while reading `path`, in the record at `recordIndex`.
    init(reading failure: StreamFailure, path: String, compression: TFRecordCompression, recordIndex: Int) {
        switch failure {
        case .system(let operation, let code):
            self = .io(path: path, operation: operation, errno: code)
        case .compressedData(let reason):
            self = .corruptCompressedStream(path: path, compression: compression, recordIndex: recordIndex, reason: reason)
        }
    }

    /// A byte-layer failure while writing `path`.
    init(writing failure: StreamFailure, path: String) {
        switch failure {
        case .system(let operation, let code):
            self = .io(path: path, operation: operation, errno: code)
        case .compressedData(let reason):
            self = .compressionFailed(path: path, reason: reason)
        }
    }
}
