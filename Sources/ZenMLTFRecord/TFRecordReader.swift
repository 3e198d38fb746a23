import Foundation

/// Reads the records of a TFRecord file one at a time, checking every CRC.
///
/// The file is streamed through a fixed buffer, so files far larger than memory read in constant
/// memory (plus the record being returned). GZIP and ZLIB files are decompressed on the fly; by
/// default the compression is detected from the file's first bytes.
///
/// ```swift
/// let reader = try TFRecordReader(path: "data-00000-of-00004.tfrecord.gz")
/// while let record = try reader.next() {
///     let example = try Example(serializedData: record)
///     ...
/// }
/// ```
///
/// A reader never hands out bytes that failed a check: a corrupt length or data CRC, a truncated
/// record or an over-long length throws a ``TFRecordError`` naming the file and the 0-based record
/// index, and every later call throws it again. The reader is a single stream: use it from one
/// task at a time (it can be handed from one to another).
public final class TFRecordReader {
    /// How to read a file.
    public struct Options: Sendable, Equatable {
        /// The file's compression, or `nil` (the default) to detect it from the first bytes.
        public var compression: TFRecordCompression?
        /// The largest record accepted, in bytes (default 1 GiB). A length header beyond it is
        /// reported as ``TFRecordError/recordTooLarge(path:recordIndex:offset:length:limit:)``
        /// before any memory is allocated for it.
        public var maximumRecordLength: Int
        /// The size of the read buffer (and of the compressed-input buffer), in bytes.
        public var bufferSize: Int

        public init(compression: TFRecordCompression? = nil, maximumRecordLength: Int = 1 << 30, bufferSize: Int = 256 << 10) {
            self.compression = compression
            self.maximumRecordLength = maximumRecordLength
            self.bufferSize = bufferSize
        }
    }

    /// The file being read.
    public let path: String
    /// The file's compression, as given in the options or detected.
    public var compression: TFRecordCompression { input.compression }
    /// The index the next record will have: the number of records read so far.
    public private(set) var recordIndex = 0

    private let input: ByteInput
    /// Scratch space for a record's 12-byte header, reused for every record.
    private let header: UnsafeMutableRawBufferPointer
    private let maximumRecordLength: Int
    private var failure: TFRecordError?
    private var isFinished = false
    /// Reused by ``nextExample()`` for each record's data and CRC, so decoding allocates no record.
    private var scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
    private var decoder = ExampleDecoder()

    /// Opens `path` for reading.
    public init(path: String, options: Options = Options()) throws(TFRecordError) {
        self.path = path
        self.maximumRecordLength = min(max(0, options.maximumRecordLength), Int.max - Self.footerSize)
        do {
            input = try ByteInput(path: path, compression: options.compression, bufferSize: options.bufferSize)
        } catch {
            throw TFRecordError(reading: error, path: path, compression: options.compression ?? .none, recordIndex: 0)
        }
        header = .allocate(byteCount: Self.headerSize, alignment: 8)
    }

    deinit {
        header.deallocate()
        scratch.deallocate()
    }

    /// The next record's bytes, or `nil` after the last one.
    public func next() throws(TFRecordError) -> Data? {
        if let failure { throw failure }
        if isFinished { return nil }
        do {
            guard let record = try readRecord() else {
                isFinished = true
                return nil
            }
            recordIndex += 1
            return record
        } catch {
            failure = error
            throw error
        }
    }

    /// The next record decoded as a `tf.train.Example`, or `nil` after the last one.
    ///
    /// Faster than decoding ``next()``'s records: the record is read into a buffer the reader
    /// reuses, and feature names repeated from earlier records are reused (``ExampleDecoder``).
    public func nextExample() throws(TFRecordError) -> Example? {
        if let failure { throw failure }
        if isFinished { return nil }
        let data: UnsafeRawBufferPointer
        do {
            guard let count = try readHeader() else {
                isFinished = true
                return nil
            }
            if scratch.count < count + Self.footerSize {
                let grown = UnsafeMutableRawBufferPointer.allocate(
                    byteCount: max(count + Self.footerSize, 2 * scratch.count), alignment: 8)
                scratch.deallocate()
                scratch = grown
            }
            data = try readData(count: count, into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<(count + Self.footerSize)]))
        } catch {
            failure = error
            throw error
        }
        let index = recordIndex
        recordIndex += 1
        // A record that is not an Example is reported, and reading can go on past it (as with `next()`).
        defer {
            // A huge record should not pin its buffer for the rest of the file.
            if scratch.count > 1 << 20 {
                scratch.deallocate()
                scratch = .allocate(byteCount: 4096, alignment: 8)
            }
        }
        do {
            return try decoder.decode(data)
        } catch {
            throw .malformedExample(path: path, recordIndex: index, error)
        }
    }

    // Framing: uint64 length | uint32 masked CRC32C(length) | data | uint32 masked CRC32C(data),
    // all little-endian.
    private static let headerSize = 12
    private static let footerSize = 4

    /// Where the record being read starts in the (uncompressed) stream, for error reports.
    private var recordOffset: UInt64 = 0

    private func readRecord() throws(TFRecordError) -> Data? {
        guard let count = try readHeader() else { return nil }
        // Data and its CRC are read in one go; the record is handed over without a copy.
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: count + Self.footerSize, alignment: 8)
        var handedOver = false
        defer { if !handedOver { storage.deallocate() } }
        _ = try readData(count: count, into: storage)
        guard count > 0, let base = storage.baseAddress else { return Data() }
        handedOver = true
        return Data(bytesNoCopy: base, count: count, deallocator: .custom { pointer, _ in pointer.deallocate() })
    }

    /// Reads and checks the next record's header: its data length, or `nil` at the end of the file.
    private func readHeader() throws(TFRecordError) -> Int? {
        let offset = input.position
        recordOffset = offset
        let headerCount = try read(into: header)
        if headerCount == 0 { return nil }
        guard headerCount == Self.headerSize else {
            throw .truncatedRecord(
                path: path, recordIndex: recordIndex, offset: offset,
                expectedBytes: UInt64(Self.headerSize), availableBytes: UInt64(headerCount))
        }
        let length = UInt64(littleEndian: header.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let lengthCRC = UInt32(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard CRC32C.maskedChecksum(UnsafeRawBufferPointer(rebasing: header[..<8])) == lengthCRC else {
            throw .corruptLength(path: path, recordIndex: recordIndex, offset: offset)
        }
        guard length <= UInt64(maximumRecordLength) else {
            throw .recordTooLarge(
                path: path, recordIndex: recordIndex, offset: offset, length: length, limit: maximumRecordLength)
        }
        return Int(length)
    }

    /// Reads the data and CRC of the record whose header gave `count` into `storage` (exactly
    /// `count` + 4 bytes) and checks the CRC; the data.
    private func readData(count: Int, into storage: UnsafeMutableRawBufferPointer) throws(TFRecordError) -> UnsafeRawBufferPointer {
        let offset = recordOffset
        let available = try read(into: storage)
        guard available == storage.count else {
            throw .truncatedRecord(
                path: path, recordIndex: recordIndex, offset: offset,
                expectedBytes: UInt64(Self.headerSize + storage.count),
                availableBytes: UInt64(Self.headerSize + available))
        }
        let dataCRC = UInt32(littleEndian: storage.loadUnaligned(fromByteOffset: count, as: UInt32.self))
        let data = UnsafeRawBufferPointer(rebasing: storage[..<count])
        guard CRC32C.maskedChecksum(data) == dataCRC else {
            throw .corruptData(path: path, recordIndex: recordIndex, offset: offset + UInt64(Self.headerSize), length: UInt64(count))
        }
        return data
    }

    private func read(into buffer: UnsafeMutableRawBufferPointer) throws(TFRecordError) -> Int {
        do {
            return try input.read(into: buffer)
        } catch {
            throw TFRecordError(reading: error, path: path, compression: input.compression, recordIndex: recordIndex)
        }
    }
}

extension Example {
    /// Decodes a record read from a file, reporting failure as a ``TFRecordError``.
    init(record: Data, path: String, recordIndex: Int) throws(TFRecordError) {
        do {
            try self.init(serializedData: record)
        } catch {
            throw .malformedExample(path: path, recordIndex: recordIndex, error)
        }
    }
}
