import Foundation

/// A `tf.train.Example`: named features, each a list of byte strings, floats or 64-bit integers.
///
/// ``serializedData()`` writes the bytes TensorFlow's deterministic serialization writes: features
/// sorted by key (byte-wise on UTF-8), float and int64 lists packed. Decoding accepts any valid
/// encoding of the message: keys in any order, packed or unpacked lists, unknown fields.
///
/// ```swift
/// let example = Example(features: [
///     "label": .bytesList([Data("cat".utf8)]),
///     "x": .floatList([0.5, 1.5]),
///     "id": .int64List([7]),
/// ])
/// try writer.write(example.serializedData())
/// ```
public struct Example: Sendable, Equatable {
    /// The features by name. A feature with an empty list is present; a missing key is absent.
    ///
    /// Keys compare as Swift strings, so two keys that differ only in Unicode normalization, which
    /// protobuf would keep apart, are one key here.
    public var features: [String: Feature]

    public init(features: [String: Feature] = [:]) {
        self.features = features
    }

    /// The feature named `key`, or `nil` when the example has none of that name.
    public subscript(key: String) -> Feature? {
        get { features[key] }
        set { features[key] = newValue }
    }
}

/// One feature of an ``Example``: TensorFlow's `tf.train.Feature`.
///
/// Two features are equal when they hold the same kind and the same values, floats compared by
/// bit pattern (so `-0.0 != 0.0`, and a NaN equals the same NaN), as befits serialized data.
public enum Feature: Sendable, Equatable {
    /// `bytes_list`: byte strings (text is UTF-8 by convention, never by requirement).
    case bytesList([Data])
    /// `float_list`: IEEE-754 single-precision floats.
    case floatList([Float])
    /// `int64_list`: signed 64-bit integers.
    case int64List([Int64])
    /// A `Feature` message with no kind set (Python's `tf.train.Feature()`); it is present but holds
    /// no list, which is not the same as an empty list.
    case unset

    public static func == (lhs: Feature, rhs: Feature) -> Bool {
        switch (lhs, rhs) {
        case (.bytesList(let a), .bytesList(let b)): return a == b
        case (.floatList(let a), .floatList(let b)): return a.map(\.bitPattern) == b.map(\.bitPattern)
        case (.int64List(let a), .int64List(let b)): return a == b
        case (.unset, .unset): return true
        default: return false
        }
    }
}

/// A record that is not a valid serialized `tf.train.Example`.
public struct ExampleDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where in the record the problem was found.
    public let offset: Int
    /// What is wrong.
    public let reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        "\(reason) (at byte \(offset) of the record); check that the records are serialized tf.train.Example messages"
    }
}

// MARK: - Encoding

// Field numbers from tensorflow/core/example/{example,feature}.proto:
//   Example { Features features = 1; }
//   Features { map<string, Feature> feature = 1; }      (entry: string key = 1; Feature value = 2;)
//   Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed = true]; }
//   Int64List { repeated int64 value = 1 [packed = true]; }

extension Example {
    /// The example as TensorFlow serializes it (`SerializeToString(deterministic=True)`).
    ///
    /// The `features` field is always written, so an example without features encodes as `0a 00`,
    /// as `tf.train.Example(features=tf.train.Features(feature={}))` does.
    public func serializedData() -> Data {
        let entries = features.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        let layouts = entries.map { FeatureLayout($0.value) }
        var entrySizes: [Int] = []
        entrySizes.reserveCapacity(entries.count)
        var featuresSize = 0
        for (entry, layout) in zip(entries, layouts) {
            let entrySize = WireWriter.lengthDelimitedFieldSize(entry.key.utf8.count)
                + WireWriter.lengthDelimitedFieldSize(layout.featureSize)
            entrySizes.append(entrySize)
            featuresSize += WireWriter.lengthDelimitedFieldSize(entrySize)
        }
        let totalSize = WireWriter.lengthDelimitedFieldSize(featuresSize)

        var data = Data(count: totalSize)
        data.withUnsafeMutableBytes { buffer in
            var writer = WireWriter(buffer)
            writer.writeLengthDelimitedHeader(1, contentSize: featuresSize)
            for index in entries.indices {
                writer.writeLengthDelimitedHeader(1, contentSize: entrySizes[index])
                var key = entries[index].key
                key.withUTF8 { utf8 in
                    writer.writeLengthDelimitedHeader(1, contentSize: utf8.count)
                    writer.writeBytes(UnsafeRawBufferPointer(utf8))
                }
                writer.writeLengthDelimitedHeader(2, contentSize: layouts[index].featureSize)
                layouts[index].write(entries[index].value, to: &writer)
            }
            assert(writer.position == totalSize)
        }
        return data
    }
}

/// The sizes of one feature's nested messages, computed before writing it.
private struct FeatureLayout {
    /// The size of the packed payload of a float or int64 list.
    let packedSize: Int
    /// The size of the BytesList / FloatList / Int64List message.
    let listSize: Int
    /// The size of the Feature message.
    let featureSize: Int

    init(_ feature: Feature) {
        switch feature {
        case .bytesList(let values):
            packedSize = 0
            listSize = values.reduce(0) { $0 + WireWriter.lengthDelimitedFieldSize($1.count) }
        case .floatList(let values):
            packedSize = 4 * values.count
            listSize = values.isEmpty ? 0 : WireWriter.lengthDelimitedFieldSize(packedSize)
        case .int64List(let values):
            packedSize = values.reduce(0) { $0 + WireWriter.varintSize(UInt64(bitPattern: $1)) }
            listSize = values.isEmpty ? 0 : WireWriter.lengthDelimitedFieldSize(packedSize)
        case .unset:
            packedSize = 0
            listSize = 0
        }
        if case .unset = feature {
            featureSize = 0
        } else {
            featureSize = WireWriter.lengthDelimitedFieldSize(listSize)
        }
    }

    func write(_ feature: Feature, to writer: inout WireWriter) {
        switch feature {
        case .bytesList(let values):
            writer.writeLengthDelimitedHeader(1, contentSize: listSize)
            for value in values {
                writer.writeLengthDelimitedHeader(1, contentSize: value.count)
                value.withUnsafeBytes { writer.writeBytes($0) }
            }
        case .floatList(let values):
            writer.writeLengthDelimitedHeader(2, contentSize: listSize)
            guard !values.isEmpty else { return }
            writer.writeLengthDelimitedHeader(1, contentSize: packedSize)
            for value in values { writer.writeFixed32(value.bitPattern) }
        case .int64List(let values):
            writer.writeLengthDelimitedHeader(3, contentSize: listSize)
            guard !values.isEmpty else { return }
            writer.writeLengthDelimitedHeader(1, contentSize: packedSize)
            for value in values { writer.writeVarint(UInt64(bitPattern: value)) }
        case .unset:
            break
        }
    }
}

// MARK: - Decoding

extension Example {
    /// Decodes a serialized `tf.train.Example`.
    public init(serializedData data: Data) throws(ExampleDecodingError) {
        self = try data.withUnsafeBytesTyped { (bytes) throws(ExampleDecodingError) in
            try Example(serializedBytes: bytes)
        }
    }

    /// Decodes a serialized `tf.train.Example` from raw bytes.
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(ExampleDecodingError) {
        var names = FeatureNameCache(capacity: 0)
        self = try Self.decode(bytes, names: &names, expectedFeatureCount: 0)
    }

    fileprivate static func decode(
        _ bytes: UnsafeRawBufferPointer, names: inout FeatureNameCache, expectedFeatureCount: Int
    ) throws(ExampleDecodingError) -> Example {
        var reader = WireReader(bytes)
        var features = [String: Feature](minimumCapacity: expectedFeatureCount)
        var entryIndex = 0
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readTag()
            guard field == 1, wireType == .lengthDelimited else {
                try reader.skipField(field, wireType: wireType)
                continue
            }
            // A message field that occurs twice is merged: its map entries accumulate.
            var featuresReader = try reader.readLengthDelimited()
            while !featuresReader.isAtEnd {
                let (field, wireType) = try featuresReader.readTag()
                guard field == 1, wireType == .lengthDelimited else {
                    try featuresReader.skipField(field, wireType: wireType)
                    continue
                }
                var entryReader = try featuresReader.readLengthDelimited()
                let (key, feature) = try Self.decodeEntry(&entryReader, names: &names, entryIndex: entryIndex)
                entryIndex += 1
                features[key] = feature  // A later entry for the same key replaces an earlier one.
            }
        }
        return Example(features: features)
    }

    private static func decodeEntry(
        _ reader: inout WireReader, names: inout FeatureNameCache, entryIndex: Int
    ) throws(ExampleDecodingError) -> (String, Feature) {
        var key = ""
        var feature = Feature.unset
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readTag()
            switch (field, wireType) {
            case (1, .lengthDelimited):
                var keyReader = try reader.readLengthDelimited()
                let start = keyReader.position
                key = try names.name(for: keyReader.readRemainingBytes(), entryIndex: entryIndex, offset: start)
            case (2, .lengthDelimited):
                var featureReader = try reader.readLengthDelimited()
                feature = try Feature(decoding: &featureReader, mergingInto: feature)
            default:
                try reader.skipField(field, wireType: wireType)
            }
        }
        return (key, feature)
    }
}

/// Decodes serialized `tf.train.Example`s one after another, faster than
/// ``Example/init(serializedBytes:)`` when the records share feature names, as a dataset's do.
///
/// It remembers the feature names of the records it decoded (up to 64) and how many features they
/// had: a name whose bytes equal a remembered one reuses that `String` (no UTF-8 validation, no
/// new string storage), and the dictionary is sized for the features once. The results are
/// exactly ``Example/init(serializedBytes:)``'s.
///
/// ```swift
/// var decoder = ExampleDecoder()
/// while let record = try reader.next() {
///     let example = try decoder.decode(record)
/// }
/// ```
public struct ExampleDecoder: Sendable {
    private var names = FeatureNameCache(capacity: 64)
    private var lastFeatureCount = 0

    public init() {}

    /// Decodes one serialized `tf.train.Example`.
    public mutating func decode(_ bytes: UnsafeRawBufferPointer) throws(ExampleDecodingError) -> Example {
        let example = try Example.decode(bytes, names: &names, expectedFeatureCount: lastFeatureCount)
        lastFeatureCount = example.features.count
        return example
    }

    /// Decodes one serialized `tf.train.Example` (any contiguous bytes: `Data`, `[UInt8]`, ...).
    public mutating func decode(_ bytes: some ContiguousBytes) throws(ExampleDecodingError) -> Example {
        try bytes.withUnsafeBytesTyped { (buffer) throws(ExampleDecodingError) in try decode(buffer) }
    }
}

/// Feature names seen before, by their position in the record, so a repeated name costs a byte
/// comparison instead of a validation and a new string.
struct FeatureNameCache: Sendable {
    private struct Entry: Sendable {
        var utf8: [UInt8]
        var name: String
    }

    private var entries: [Entry] = []
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The name `utf8` spells, checked to be valid UTF-8; `offset` locates it for errors.
    mutating func name(for utf8: UnsafeRawBufferPointer, entryIndex: Int, offset: Int) throws(ExampleDecodingError) -> String {
        // Records of one dataset put their features in the same order, so the entry at the same
        // index is nearly always the match; otherwise a scan of the (few) others.
        if entryIndex < entries.count, Self.equal(entries[entryIndex].utf8, utf8) {
            return entries[entryIndex].name
        }
        for entry in entries where Self.equal(entry.utf8, utf8) {
            return entry.name
        }
        let text = String(decoding: utf8, as: UTF8.self)
        guard text.utf8.elementsEqual(utf8) else {
            throw ExampleDecodingError(offset: offset, reason: "a feature name is not valid UTF-8")
        }
        if entryIndex < capacity {
            let entry = Entry(utf8: Array(utf8), name: text)
            if entryIndex < entries.count {
                entries[entryIndex] = entry
            } else if entryIndex == entries.count {
                entries.append(entry)
            }
        }
        return text
    }

    private static func equal(_ known: [UInt8], _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard known.count == bytes.count else { return false }
        return known.withUnsafeBytes { known in
            guard let a = known.baseAddress, let b = bytes.baseAddress else { return true }
            return memcmp(a, b, bytes.count) == 0
        }
    }
}

extension Feature {
    /// Decodes a `tf.train.Feature`, merged into `existing` as protobuf merges a repeated message
    /// field: the same kind again appends values; another kind replaces it.
    fileprivate init(decoding reader: inout WireReader, mergingInto existing: Feature) throws(ExampleDecodingError) {
        var feature = existing
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readTag()
            guard (1...3).contains(field), wireType == .lengthDelimited else {
                try reader.skipField(field, wireType: wireType)
                continue
            }
            var list = try reader.readLengthDelimited()
            switch field {
            case 1:
                var values: [Data] = []
                if case .bytesList(let existing) = feature { values = existing }
                try Self.decodeBytes(&list, into: &values)
                feature = .bytesList(values)
            case 2:
                var values: [Float] = []
                if case .floatList(let existing) = feature { values = existing }
                try Self.decodeFloats(&list, into: &values)
                feature = .floatList(values)
            default:
                var values: [Int64] = []
                if case .int64List(let existing) = feature { values = existing }
                try Self.decodeInt64s(&list, into: &values)
                feature = .int64List(values)
            }
        }
        self = feature
    }

    private static func decodeBytes(_ reader: inout WireReader, into values: inout [Data]) throws(ExampleDecodingError) {
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readTag()
            guard field == 1, wireType == .lengthDelimited else {
                try reader.skipField(field, wireType: wireType)
                continue
            }
            var value = try reader.readLengthDelimited()
            values.append(Data(value.readRemainingBytes()))
        }
    }

    private static func decodeFloats(_ reader: inout WireReader, into values: inout [Float]) throws(ExampleDecodingError) {
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readTag()
            switch (field, wireType) {
            case (1, .lengthDelimited):  // packed
                var packed = try reader.readLengthDelimited()
                let start = packed.position
                let payload = packed.readRemainingBytes()
                guard payload.count % 4 == 0 else {
                    throw ExampleDecodingError(
                        offset: start, reason: "a packed float list of \(payload.count) bytes is not a multiple of 4")
                }
                values.reserveCapacity(values.count + payload.count / 4)
                for offset in stride(from: 0, to: payload.count, by: 4) {
                    let bits = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                    values.append(Float(bitPattern: bits))
                }
            case (1, .fixed32):  // unpacked
                values.append(Float(bitPattern: try reader.readFixed32()))
            default:
                try reader.skipField(field, wireType: wireType)
            }
        }
    }

    private static func decodeInt64s(_ reader: inout WireReader, into values: inout [Int64]) throws(ExampleDecodingError) {
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readTag()
            switch (field, wireType) {
            case (1, .lengthDelimited):  // packed
                var packed = try reader.readLengthDelimited()
                // Every varint ends with one byte below 0x80: counting them sizes the array once.
                var terminators = 0
                for byte in packed.remainingBytes where byte < 0x80 { terminators += 1 }
                values.reserveCapacity(values.count + terminators)
                while !packed.isAtEnd {
                    values.append(Int64(bitPattern: try packed.readVarint()))
                }
            case (1, .varint):  // unpacked
                values.append(Int64(bitPattern: try reader.readVarint()))
            default:
                try reader.skipField(field, wireType: wireType)
            }
        }
    }
}

extension ContiguousBytes {
    /// `withUnsafeBytes` for a body that throws a typed error (Foundation's is `rethrows`).
    func withUnsafeBytesTyped<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let outcome: Swift.Result<Result, Failure> = withUnsafeBytes { bytes in
            Swift.Result { () throws(Failure) -> Result in try body(bytes) }
        }
        return try outcome.get()
    }
}
