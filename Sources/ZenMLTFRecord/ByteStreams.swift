import CZenMLTFRecord
import Foundation

// The byte layer under the record reader and writer: buffered POSIX file access, with zlib in
// between for GZIP and ZLIB files. Nothing here knows about records; failures are reported as
// `StreamFailure`, and the record layer adds the path and record index.

/// A failure below the record layer.
enum StreamFailure: Error {
    /// A system call failed.
    case system(operation: String, errno: Int32)
    /// zlib rejected the compressed data, or the compressed stream ended early.
    case compressedData(reason: String)
}

/// Thin wrappers over the POSIX calls, retrying on `EINTR`.
enum POSIXFile {
    static func openForReading(_ path: String) throws(StreamFailure) -> Int32 {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(operation: "open", errno: errno) }
        return descriptor
    }

    static func createForWriting(_ path: String) throws(StreamFailure) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .system(operation: "create", errno: errno) }
        return descriptor
    }

    /// One `read(2)`: the number of bytes read, 0 only at the end of the file.
    static func readSome(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(StreamFailure) -> Int {
        while true {
            let count = read(descriptor, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno != EINTR { throw .system(operation: "read", errno: errno) }
        }
    }

    /// Reads until `buffer` is full or the file ends; the number of bytes read.
    static func readFully(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(StreamFailure) -> Int {
        var filled = 0
        while filled < buffer.count {
            let count = try readSome(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if count == 0 { break }
            filled += count
        }
        return filled
    }

    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(StreamFailure) {
        var written = 0
        while written < bytes.count {
            let count = write(descriptor, bytes.baseAddress.map { $0 + written }, bytes.count - written)
            if count < 0 {
                if errno == EINTR { continue }
                throw .system(operation: "write", errno: errno)
            }
            written += count
        }
    }

    static func close(_ descriptor: Int32) throws(StreamFailure) {
        // Linux closes the descriptor even when close(2) fails, so it is never retried.
        if Foundation.close(descriptor) != 0 && errno != EINTR {
            throw .system(operation: "close", errno: errno)
        }
    }
}

// MARK: - Input

/// The uncompressed TFRecord byte stream of one file, read through a buffer.
final class ByteInput {
    /// The file's compression, as given or detected.
    let compression: TFRecordCompression
    /// Bytes of the uncompressed stream handed out so far.
    private(set) var position: UInt64 = 0

    private let descriptor: Int32
    private let inflater: Inflater?
    private let buffer: UnsafeMutableRawBufferPointer
    private var bufferStart = 0
    private var bufferEnd = 0
    private var sourceEnded = false

    /// Opens `path`; `compression` nil means detect it from the first bytes.
    init(path: String, compression requested: TFRecordCompression?, bufferSize: Int) throws(StreamFailure) {
        let descriptor = try POSIXFile.openForReading(path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bufferSize, 64), alignment: 16)
        do {
            // The first bytes go through the same path whether they decide the compression or not,
            // so reading works on pipes too.
            let prefixLength = try POSIXFile.readFully(
                descriptor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<TFRecordCompression.detectionPrefixLength]))
            let prefix = UnsafeRawBufferPointer(rebasing: buffer[..<prefixLength])
            let compression = requested ?? TFRecordCompression.detect(fromPrefix: Array(prefix))
            if let windowBits = compression.zlibWindowBits {
                inflater = try Inflater(windowBits: windowBits, bufferSize: bufferSize, initialInput: prefix)
                bufferEnd = 0
            } else {
                inflater = nil
                bufferEnd = prefixLength
            }
            self.compression = compression
            self.descriptor = descriptor
            self.buffer = buffer
        } catch {
            buffer.deallocate()
            _ = Foundation.close(descriptor)
            throw error
        }
    }

    deinit {
        buffer.deallocate()
        _ = Foundation.close(descriptor)
    }

    /// Fills `destination` unless the stream ends first; the number of bytes copied.
    func read(into destination: UnsafeMutableRawBufferPointer) throws(StreamFailure) -> Int {
        var copied = 0
        while copied < destination.count {
            if bufferStart < bufferEnd {
                let count = min(bufferEnd - bufferStart, destination.count - copied)
                UnsafeMutableRawBufferPointer(rebasing: destination[copied..<copied + count])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[bufferStart..<bufferStart + count]))
                bufferStart += count
                copied += count
                continue
            }
            if sourceEnded { break }
            let rest = UnsafeMutableRawBufferPointer(rebasing: destination[copied...])
            if rest.count >= buffer.count {
                // A large record: fill it straight from the source instead of through the buffer.
                let count = try produce(into: rest)
                if count == 0 { sourceEnded = true }
                copied += count
            } else {
                bufferStart = 0
                bufferEnd = try produce(into: buffer)
                if bufferEnd == 0 { sourceEnded = true }
            }
        }
        position += UInt64(copied)
        return copied
    }

    private func produce(into destination: UnsafeMutableRawBufferPointer) throws(StreamFailure) -> Int {
        if let inflater {
            return try inflater.decompress(into: destination, from: descriptor)
        }
        return try POSIXFile.readSome(descriptor, into: destination)
    }
}

/// A zlib inflate stream fed from a file descriptor.
final class Inflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    private var inputEnded = false
    private var memberEnded = false

    init(windowBits: Int32, bufferSize: Int, initialInput: UnsafeRawBufferPointer) throws(StreamFailure) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = .allocate(byteCount: max(bufferSize, initialInput.count, 64), alignment: 16)
        let status = czenml_inflate_init(stream, windowBits)
        guard status == Z_OK else {
            stream.deallocate()
            input.deallocate()
            throw .compressedData(reason: "zlib inflateInit2 failed with status \(status)")
        }
        UnsafeMutableRawBufferPointer(rebasing: input[..<initialInput.count]).copyMemory(from: initialInput)
        stream.pointee.next_in = input.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = UInt32(initialInput.count)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    /// Decompresses into `destination`; the number of bytes produced, 0 only once the compressed
    /// data has ended cleanly. Several gzip members one after another read as one stream.
    func decompress(into destination: UnsafeMutableRawBufferPointer, from descriptor: Int32) throws(StreamFailure) -> Int {
        guard let output = destination.baseAddress, !destination.isEmpty else { return 0 }
        let capacity = UInt32(clamping: destination.count)
        while true {
            if stream.pointee.avail_in == 0 && !inputEnded {
                let count = try POSIXFile.readSome(descriptor, into: input)
                if count == 0 {
                    inputEnded = true
                } else {
                    stream.pointee.next_in = input.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_in = UInt32(count)
                }
            }
            if memberEnded {
                guard stream.pointee.avail_in > 0 else { return 0 }
                // More bytes after the end: the next gzip member, or trailing garbage that inflate rejects.
                inflateReset(stream)
                memberEnded = false
            }
            stream.pointee.next_out = output.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = capacity
            let status = inflate(stream, Z_NO_FLUSH)
            let produced = Int(capacity - stream.pointee.avail_out)
            switch status {
            case Z_OK:
                break
            case Z_STREAM_END:
                memberEnded = true
            case Z_BUF_ERROR where inputEnded && stream.pointee.avail_in == 0:
                throw .compressedData(reason: "the compressed stream ends before its end marker: the file is truncated")
            case Z_BUF_ERROR:
                break
            default:
                throw .compressedData(reason: zlibMessage(stream, status: status))
            }
            if produced > 0 { return produced }
        }
    }
}

// MARK: - Output

/// A buffered byte sink writing a file, through a zlib deflate stream for GZIP and ZLIB.
final class ByteOutput {
    private let descriptor: Int32
    private let deflater: Deflater?
    private let buffer: UnsafeMutableRawBufferPointer
    private var count = 0
    private var isOpen = true

    /// Creates (or truncates) `path`.
    init(path: String, compression: TFRecordCompression, compressionLevel: Int32, bufferSize: Int) throws(StreamFailure) {
        let descriptor = try POSIXFile.createForWriting(path)
        do {
            if let windowBits = compression.zlibWindowBits {
                deflater = try Deflater(windowBits: windowBits, level: compressionLevel, bufferSize: bufferSize)
            } else {
                deflater = nil
            }
        } catch {
            _ = Foundation.close(descriptor)
            throw error
        }
        self.descriptor = descriptor
        self.buffer = .allocate(byteCount: max(bufferSize, 64), alignment: 16)
    }

    deinit {
        buffer.deallocate()
        if isOpen { _ = Foundation.close(descriptor) }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(StreamFailure) {
        if bytes.count > buffer.count - count {
            try drain(flush: Z_NO_FLUSH)
            if bytes.count >= buffer.count {
                try emit(bytes, flush: Z_NO_FLUSH)
                return
            }
        }
        UnsafeMutableRawBufferPointer(rebasing: buffer[count..<count + bytes.count]).copyMemory(from: bytes)
        count += bytes.count
    }

    /// Hands everything appended so far to the operating system; a compressed stream is
    /// sync-flushed, so the file decompresses up to here.
    func flush() throws(StreamFailure) {
        try drain(flush: Z_SYNC_FLUSH)
    }

    /// Writes what is buffered, ends the compressed stream, and closes the file.
    func finish() throws(StreamFailure) {
        guard isOpen else { return }
        try drain(flush: Z_FINISH)
        isOpen = false
        try POSIXFile.close(descriptor)
    }

    private func drain(flush: Int32) throws(StreamFailure) {
        guard count > 0 || (deflater != nil && flush != Z_NO_FLUSH) else { return }
        try emit(UnsafeRawBufferPointer(rebasing: buffer[..<count]), flush: flush)
        count = 0
    }

    private func emit(_ bytes: UnsafeRawBufferPointer, flush: Int32) throws(StreamFailure) {
        if let deflater {
            try deflater.compress(bytes, flush: flush, to: descriptor)
        } else {
            try POSIXFile.writeAll(descriptor, bytes)
        }
    }
}

/// A zlib deflate stream writing to a file descriptor.
final class Deflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawBufferPointer
    private var pending = 0

    /// `level`: zlib's 0–9, or `Z_DEFAULT_COMPRESSION` (-1, which TensorFlow uses).
    init(windowBits: Int32, level: Int32, bufferSize: Int) throws(StreamFailure) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = .allocate(byteCount: max(bufferSize, 64), alignment: 16)
        // memLevel 9 as TensorFlow's ZlibCompressionOptions; with level -1 the bytes match TF's.
        let status = czenml_deflate_init(stream, level, windowBits, 9)
        guard status == Z_OK else {
            stream.deallocate()
            output.deallocate()
            throw .compressedData(reason: "zlib deflateInit2 failed with status \(status) (compression level \(level))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
        output.deallocate()
    }

    /// Compresses `input`. With `Z_NO_FLUSH` output waits in the buffer until it fills; with
    /// `Z_SYNC_FLUSH` or `Z_FINISH` everything is written out.
    func compress(_ input: UnsafeRawBufferPointer, flush: Int32, to descriptor: Int32) throws(StreamFailure) {
        var remaining = input
        repeat {
            let chunk = min(remaining.count, Int(UInt32.max))
            let mode = chunk == remaining.count ? flush : Z_NO_FLUSH
            stream.pointee.next_in = UnsafeMutablePointer(mutating: remaining.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = UInt32(chunk)
            while true {
                let space = output.count - pending
                stream.pointee.next_out = output.baseAddress?.advanced(by: pending).assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = UInt32(space)
                let status = deflate(stream, mode)
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    throw .compressedData(reason: zlibMessage(stream, status: status))
                }
                pending = output.count - Int(stream.pointee.avail_out)
                // With room left over, deflate has taken all input and done what `mode` asks.
                guard pending == output.count else { break }
                try POSIXFile.writeAll(descriptor, UnsafeRawBufferPointer(output))
                pending = 0
            }
            remaining = UnsafeRawBufferPointer(rebasing: remaining[chunk...])
        } while !remaining.isEmpty
        if flush != Z_NO_FLUSH && pending > 0 {
            try POSIXFile.writeAll(descriptor, UnsafeRawBufferPointer(rebasing: output[..<pending]))
            pending = 0
        }
    }
}

private func zlibMessage(_ stream: UnsafeMutablePointer<z_stream>, status: Int32) -> String {
    if let message = stream.pointee.msg { return String(cString: message) }
    switch status {
    case Z_DATA_ERROR: return "invalid compressed data"
    case Z_NEED_DICT: return "the stream needs a preset dictionary"
    case Z_MEM_ERROR: return "zlib ran out of memory"
    default: return "zlib status \(status)"
    }
}
