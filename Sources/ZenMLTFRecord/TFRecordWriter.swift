import CZenMLTFRecord
import Foundation

/// Writes records to a TFRecord file, as `tf.io.TFRecordWriter` does.
///
/// Uncompressed output is byte-for-byte what TensorFlow writes for the same records. GZIP and
/// ZLIB output is one compressed stream over the whole file, as TensorFlow writes it, and with the
/// default compression level it matches TensorFlow's bytes whenever both use the same zlib.
///
/// ```swift
/// let writer = try TFRecordWriter(path: "data-00000-of-00001.tfrecord.gz", options: .init(compression: .gzip))
/// for example in examples {
///     try writer.write(example)
/// }
/// try writer.close()
/// ```
///
/// Output is buffered; ``close()`` writes the rest, ends the compressed stream and reports any
/// error. A writer dropped without ``close()`` closes itself but cannot report errors. After an
/// error, the writer refuses further writes. Use a writer from one task at a time.
public final class TFRecordWriter {
    /// How to write a file.
    public struct Options: Sendable, Equatable {
        /// The compression of the file (default none).
        public var compression: TFRecordCompression
        /// zlib's compression level, 0 (store) to 9 (smallest; values beyond are clamped); `nil` is
        /// zlib's default (6), which TensorFlow uses.
        public var compressionLevel: Int?
        /// The size of the write buffer (and of the compressed-output buffer), in bytes.
        public var bufferSize: Int

        public init(compression: TFRecordCompression = .none, compressionLevel: Int? = nil, bufferSize: Int = 256 << 10) {
            self.compression = compression
            self.compressionLevel = compressionLevel
            self.bufferSize = bufferSize
        }
    }

    /// The file being written.
    public let path: String
    /// The file's compression.
    public let compression: TFRecordCompression
    /// The number of records written so far.
    public private(set) var recordCount = 0

    private let output: ByteOutput
    /// Scratch space for a record's 12-byte header and 4-byte footer, reused for every record.
    private let framing: UnsafeMutableRawBufferPointer
    private var isOpen = true

    /// Creates `path`, replacing any file there.
    public init(path: String, options: Options = Options()) throws(TFRecordError) {
        self.path = path
        self.compression = options.compression
        let level = options.compressionLevel.map { Int32(min(max($0, 0), 9)) } ?? Z_DEFAULT_COMPRESSION
        do {
            output = try ByteOutput(
                path: path, compression: options.compression, compressionLevel: level, bufferSize: options.bufferSize)
        } catch {
            throw TFRecordError(writing: error, path: path)
        }
        framing = .allocate(byteCount: 16, alignment: 8)
    }

    deinit {
        if isOpen { try? output.finish() }
        framing.deallocate()
    }

    /// Appends one record.
    public func write(_ record: UnsafeRawBufferPointer) throws(TFRecordError) {
        guard isOpen else { throw .writerClosed(path: path) }
        framing.storeBytes(of: UInt64(record.count).littleEndian, toByteOffset: 0, as: UInt64.self)
        let lengthCRC = CRC32C.maskedChecksum(UnsafeRawBufferPointer(rebasing: framing[..<8]))
        framing.storeBytes(of: lengthCRC.littleEndian, toByteOffset: 8, as: UInt32.self)
        framing.storeBytes(of: CRC32C.maskedChecksum(record).littleEndian, toByteOffset: 12, as: UInt32.self)
        try perform { () throws(StreamFailure) in
            try output.append(UnsafeRawBufferPointer(rebasing: framing[..<12]))
            try output.append(record)
            try output.append(UnsafeRawBufferPointer(rebasing: framing[12...]))
        }
        recordCount += 1
    }

    /// Appends one record (`Data`, `[UInt8]`, ...).
    public func write(_ record: some ContiguousBytes) throws(TFRecordError) {
        try record.withUnsafeBytesTyped { (bytes) throws(TFRecordError) in try write(bytes) }
    }

    /// Appends one record: the example's serialization.
    public func write(_ example: Example) throws(TFRecordError) {
        try write(example.serializedData())
    }

    /// Hands every record written so far to the operating system. A compressed stream is
    /// sync-flushed, which costs a few bytes each time, so flush rarely.
    public func flush() throws(TFRecordError) {
        guard isOpen else { throw .writerClosed(path: path) }
        try perform { () throws(StreamFailure) in try output.flush() }
    }

    /// Writes what is buffered, ends the compressed stream and closes the file. Calling it again
    /// does nothing.
    public func close() throws(TFRecordError) {
        guard isOpen else { return }
        isOpen = false
        do {
            try output.finish()
        } catch {
            throw TFRecordError(writing: error, path: path)
        }
    }

    /// Runs an output operation; a failure closes the writer for good.
    private func perform(_ body: () throws(StreamFailure) -> Void) throws(TFRecordError) {
        do {
            try body()
        } catch {
            isOpen = false
            throw TFRecordError(writing: error, path: path)
        }
    }
}
