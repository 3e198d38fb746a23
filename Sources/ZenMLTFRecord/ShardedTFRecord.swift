import Foundation

/// A sharded TFRecord artifact: the files `<prefix>-NNNNN-of-MMMMM.tfrecord` (or `.tfrecord.gz`,
/// `.tfrecord.zlib`) of one directory, where `NNNNN` is the 0-based shard index and `MMMMM` the
/// shard count, both zero-padded to at least five digits: `data-00000-of-00004.tfrecord.gz`.
///
/// ```swift
/// // Writing: one writer per shard.
/// let name = ShardedTFRecord.shardFileName(index: 0, count: 4, compression: .gzip)
///
/// // Reading every record of every shard, in shard order.
/// let reader = try ShardedTFRecord(directory: artifactDirectory).makeReader()
/// while let record = try reader.next() { ... }
/// ```
public struct ShardedTFRecord: Sendable, Equatable {
    /// The artifact directory.
    public let directory: String
    /// The shard name prefix (`data` by default).
    public let prefix: String
    /// The shard files' paths, in shard order.
    public let paths: [String]

    /// The name of shard `index` (0-based) of `count`:
    /// `shardFileName(index: 2, count: 4, compression: .gzip) == "data-00002-of-00004.tfrecord.gz"`.
    ///
    /// - Precondition: `0 <= index < count`.
    public static func shardFileName(
        prefix: String = "data", index: Int, count: Int, compression: TFRecordCompression = .none
    ) -> String {
        precondition(count > 0 && (0..<count).contains(index), "shard index \(index) is not in 0..<\(count)")
        return "\(prefix)-\(zeroPadded(index))-of-\(zeroPadded(count))\(compression.fileExtension)"
    }

    /// Finds the shards named `<prefix>-NNNNN-of-MMMMM.tfrecord[.gz|.zlib]` in `directory` and checks
    /// that they form one complete set: one count, every index from 0 to count − 1 exactly once.
    /// Other files in the directory are ignored.
    public init(directory: String, prefix: String = "data") throws(TFRecordError) {
        var shards: [(name: String, index: Int, count: Int)] = []
        for name in try Self.fileNames(in: directory) {
            if let (index, count) = Self.parse(name, prefix: prefix) {
                shards.append((name, index, count))
            }
        }
        guard let first = shards.min(by: { $0.name < $1.name }) else {
            throw .noShards(directory: directory, prefix: prefix)
        }
        func inconsistent(_ problem: String) -> TFRecordError {
            .inconsistentShards(directory: directory, prefix: prefix, problem: problem)
        }
        if let other = shards.first(where: { $0.count != first.count }) {
            throw inconsistent(
                "\(first.name) says there are \(first.count) shards but \(other.name) says \(other.count); remove the stale ones")
        }
        var names = [String?](repeating: nil, count: first.count)
        for shard in shards.sorted(by: { $0.name < $1.name }) {
            guard shard.index < shard.count else {
                throw inconsistent("\(shard.name) has an index beyond the shard count")
            }
            if let earlier = names[shard.index] {
                throw inconsistent("shard \(shard.index) is there twice, as \(earlier) and \(shard.name); remove one")
            }
            names[shard.index] = shard.name
        }
        let missing = names.indices.filter { names[$0] == nil }
        if !missing.isEmpty {
            let listed = missing.prefix(5).map(String.init).joined(separator: ", ") + (missing.count > 5 ? ", ..." : "")
            let example = "\(prefix)-\(Self.zeroPadded(missing[0]))-of-\(Self.zeroPadded(first.count)).tfrecord[.gz|.zlib]"
            throw inconsistent(
                "\(missing.count) of \(first.count) shards are missing (index \(listed)): there is no \(example); "
                    + "the artifact was not fully written")
        }
        self.directory = directory
        self.prefix = prefix
        self.paths = names.compactMap { $0 }.map { Self.join(directory, $0) }
    }

    /// The number of shards.
    public var shardCount: Int { paths.count }

    /// A reader over every record of every shard, in shard order.
    public func makeReader(options: TFRecordReader.Options = TFRecordReader.Options()) -> ShardedTFRecordReader {
        ShardedTFRecordReader(paths: paths, options: options)
    }

    // MARK: Names

    private static func zeroPadded(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// Whether `name` is a shard file name, `<prefix>-NNNNN-of-MMMMM.tfrecord[.gz|.zlib]`, without
    /// looking at the file or at the other shards.
    public static func isShardFileName(_ name: String, prefix: String = "data") -> Bool {
        parse(name, prefix: prefix) != nil
    }

    /// The prefixes of the shard files in `directory` (names `<prefix>-NNNNN-of-MMMMM.tfrecord[.gz|.zlib]`
    /// with any non-empty prefix), sorted; empty if it holds none. Whether each prefix's shards
    /// form a complete set is for ``init(directory:prefix:)`` to check.
    public static func prefixes(in directory: String) throws(TFRecordError) -> [String] {
        var prefixes = Set<String>()
        for name in try fileNames(in: directory) {
            // The prefix ends at one of the name's dashes; at most one of them parses.
            for dash in name.indices where name[dash] == "-" && dash > name.startIndex {
                let prefix = String(name[..<dash])
                if parse(name, prefix: prefix) != nil {
                    prefixes.insert(prefix)
                    break
                }
            }
        }
        return prefixes.sorted()
    }

    /// The index and count in a shard file name, or `nil` if `name` is not one.
    static func parse(_ name: String, prefix: String) -> (index: Int, count: Int)? {
        guard name.hasPrefix(prefix + "-") else { return nil }
        var rest = name.dropFirst(prefix.count + 1)
        // Longest extension first: ".tfrecord" is a prefix of the others.
        let extensions = TFRecordCompression.allCases.map(\.fileExtension).sorted { $0.count > $1.count }
        guard let matched = extensions.first(where: { rest.hasSuffix($0) }) else { return nil }
        rest = rest.dropLast(matched.count)
        let parts = rest.split(separator: "-of-", omittingEmptySubsequences: false)
        guard parts.count == 2,
            parts.allSatisfy({ $0.count >= 5 && $0.utf8.allSatisfy { (48...57).contains($0) } }),
            let index = Int(parts[0]), let count = Int(parts[1]), count > 0
        else { return nil }
        return (index, count)
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func fileNames(in directory: String) throws(TFRecordError) -> [String] {
        guard let stream = opendir(directory) else {
            throw .io(path: directory, operation: "list the directory", errno: errno)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) {
                    String(cString: $0)
                }
            }
            names.append(name)
        }
        return names
    }
}

/// Reads every record of a ``ShardedTFRecord``, shard after shard; get one from
/// ``ShardedTFRecord/makeReader(options:)``.
///
/// Errors name the shard file and the record's index within it.
public final class ShardedTFRecordReader {
    /// The shard files, in the order they are read.
    public let paths: [String]
    /// The index of the shard being read (equal to the shard count once all are read).
    public private(set) var shardIndex = 0

    private let options: TFRecordReader.Options
    private var current: TFRecordReader?

    init(paths: [String], options: TFRecordReader.Options) {
        self.paths = paths
        self.options = options
    }

    /// The next record's bytes, or `nil` after the last record of the last shard.
    public func next() throws(TFRecordError) -> Data? {
        try nextAcrossShards { reader throws(TFRecordError) in try reader.next() }
    }

    /// The next record decoded as a `tf.train.Example`, or `nil` after the last one.
    public func nextExample() throws(TFRecordError) -> Example? {
        try nextAcrossShards { reader throws(TFRecordError) in try reader.nextExample() }
    }

    /// Reads from the current shard, moving to the next when one ends.
    private func nextAcrossShards<Value>(_ read: (TFRecordReader) throws(TFRecordError) -> Value?) throws(TFRecordError) -> Value? {
        while shardIndex < paths.count {
            let reader: TFRecordReader
            if let current {
                reader = current
            } else {
                reader = try TFRecordReader(path: paths[shardIndex], options: options)
                current = reader
            }
            if let value = try read(reader) { return value }
            current = nil
            shardIndex += 1
        }
        return nil
    }
}
