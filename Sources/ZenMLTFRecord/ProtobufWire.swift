import Foundation

// The protocol-buffer wire format, only as far as tf.train.Example needs it.
//
// Why hand-written: the four messages involved (Example, Features, Feature and the three value
// lists) have been frozen in TensorFlow's example.proto for years and use six wire-format rules.
// Writing them out keeps this module free of code generation and of swift-protobuf's build time
// and runtime, and lets the encoder produce exactly TensorFlow's bytes (sorted map keys, packed
// numeric lists) on purpose rather than by a library's accident. The tests prove it byte for byte
// against records TensorFlow wrote.

/// A protocol-buffer wire type.
enum WireType: UInt8 {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5
}

/// Reads protocol-buffer fields from a byte range.
struct WireReader {
    private let bytes: UnsafeRawBufferPointer
    /// The absolute offset of the next byte, counted from the start of the whole message.
    private(set) var position: Int
    private let end: Int

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
    }

    private init(bytes: UnsafeRawBufferPointer, position: Int, end: Int) {
        self.bytes = bytes
        self.position = position
        self.end = end
    }

    var isAtEnd: Bool { position >= end }

    func failure(_ reason: String) -> ExampleDecodingError {
        ExampleDecodingError(offset: position, reason: reason)
    }

    mutating func readVarint() throws(ExampleDecodingError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while position < end {
            let byte = bytes[position]
            position += 1
            // A tenth byte contributes its lowest bit only; protobuf parsers drop the rest.
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift >= 70 {
                position = start
                throw failure("a varint runs longer than 10 bytes")
            }
        }
        position = start
        throw failure("the message ends inside a varint")
    }

    /// The next field's number and wire type.
    mutating func readTag() throws(ExampleDecodingError) -> (field: UInt64, wireType: WireType) {
        let start = position
        let tag = try readVarint()
        guard let wireType = WireType(rawValue: UInt8(tag & 7)), tag >> 3 != 0 else {
            position = start
            throw failure("invalid field tag \(tag)")
        }
        return (tag >> 3, wireType)
    }

    /// A length-delimited field's contents, as a reader of their own (offsets stay absolute).
    mutating func readLengthDelimited() throws(ExampleDecodingError) -> WireReader {
        let start = position
        let length = try readVarint()
        guard length <= UInt64(end - position) else {
            position = start
            throw failure("a length-delimited field of \(length) bytes runs past the end of its message")
        }
        let contentEnd = position + Int(length)
        let contents = WireReader(bytes: bytes, position: position, end: contentEnd)
        position = contentEnd
        return contents
    }

    /// The unread bytes, left unread.
    var remainingBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[position..<end])
    }

    /// The unread bytes, consuming them.
    mutating func readRemainingBytes() -> UnsafeRawBufferPointer {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<end])
        position = end
        return slice
    }

    mutating func readFixed32() throws(ExampleDecodingError) -> UInt32 {
        guard end - position >= 4 else { throw failure("the message ends inside a 4-byte field") }
        let value = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self))
        position += 4
        return value
    }

    /// Skips a field this decoder does not know, as protobuf parsers do.
    mutating func skipField(_ field: UInt64, wireType: WireType, depth: Int = 0) throws(ExampleDecodingError) {
        switch wireType {
        case .varint:
            _ = try readVarint()
        case .fixed64:
            guard end - position >= 8 else { throw failure("the message ends inside an 8-byte field") }
            position += 8
        case .fixed32:
            _ = try readFixed32()
        case .lengthDelimited:
            _ = try readLengthDelimited()
        case .startGroup:
            guard depth < 64 else { throw failure("groups nest more than 64 deep") }
            while true {
                guard !isAtEnd else { throw failure("the message ends inside group \(field)") }
                let (inner, innerType) = try readTag()
                if innerType == .endGroup {
                    guard inner == field else { throw failure("group \(field) is closed as group \(inner)") }
                    return
                }
                try skipField(inner, wireType: innerType, depth: depth + 1)
            }
        case .endGroup:
            throw failure("end of group \(field) without its start")
        }
    }
}

/// Writes protocol-buffer fields into a buffer sized beforehand.
struct WireWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var position = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    /// The number of bytes `value` takes as a varint.
    static func varintSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }

    /// The size of a length-delimited field with a one-byte tag (every field here is numbered < 16).
    static func lengthDelimitedFieldSize(_ contentSize: Int) -> Int {
        1 + varintSize(UInt64(contentSize)) + contentSize
    }

    mutating func writeVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            buffer[position] = UInt8(truncatingIfNeeded: value) | 0x80
            position += 1
            value >>= 7
        }
        buffer[position] = UInt8(value)
        position += 1
    }

    mutating func writeTag(_ field: UInt64, _ wireType: WireType) {
        writeVarint(field << 3 | UInt64(wireType.rawValue))
    }

    /// The tag and length of a length-delimited field; its `contentSize` bytes come next.
    mutating func writeLengthDelimitedHeader(_ field: UInt64, contentSize: Int) {
        writeTag(field, .lengthDelimited)
        writeVarint(UInt64(contentSize))
    }

    mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        UnsafeMutableRawBufferPointer(rebasing: buffer[position..<position + bytes.count]).copyMemory(from: bytes)
        position += bytes.count
    }

    mutating func writeFixed32(_ value: UInt32) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: position, as: UInt32.self)
        position += 4
    }
}
