import Foundation

/// One split of an Examples artifact: a folder of TFRecord shards and the name it is reported by.
///
/// The layout is the one the standard steps share (`steps/README.md`): shards at the top of the
/// artifact (one split, called `all`), or split folders `train/`, `eval/`, `test/` (and any other
/// folder holding shards) each with its shards.
public struct ExampleSplit: Sendable, Equatable {
    /// `train`, `eval`, `test`, another folder's name, or `all` for shards at the top.
    public var name: String
    /// The folder holding the split's shards.
    public var directory: String

    public init(name: String, directory: String) {
        self.name = name
        self.directory = directory
    }

    /// The split's Examples, shard after shard; reading errors are thrown.
    public var examples: ExampleSequence { ExampleSequence(directories: [directory]) }

    /// The order splits are reported in: these first, then the other folders by name.
    public static let standardOrder = ["train", "eval", "test"]
}

extension StepContext {
    /// The splits of the single Examples artifact of an input: its subfolders that hold shards
    /// (`train`, `eval`, `test` first, then the others by name), or one split `all` when the
    /// shards are at its top. Throws when there are neither.
    public func exampleSplits(from input: String) throws -> [ExampleSplit] {
        let path = try inputPath(input)
        let subfolders = try Self.childNames(path).filter { name in
            var isDirectory: ObjCBool = false
            let folder = path + "/" + name
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else { return false }
            return try Self.childNames(folder).contains { ShardedTFRecord.isShardFileName($0) }
        }
        if !subfolders.isEmpty {
            // Byte order of UTF-8 is code point order: the same as the Python steps' sorted().
            let others = subfolders.filter { !ExampleSplit.standardOrder.contains($0) }
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            let ordered = ExampleSplit.standardOrder.filter(subfolders.contains) + others
            return ordered.map { ExampleSplit(name: $0, directory: path + "/" + $0) }
        }
        if try Self.childNames(path).contains(where: { ShardedTFRecord.isShardFileName($0) }) {
            return [ExampleSplit(name: "all", directory: path)]
        }
        throw StepSDKError(
            "\(path) holds no TFRecord shards (data-NNNNN-of-NNNNN.tfrecord[.gz]) and no split folders with them; "
                + "wire an Examples artifact (csv-source or split output)")
    }

    private static func childNames(_ path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw StepSDKError("cannot list \(path) (\(error.localizedDescription)); is the input an Examples artifact folder?")
        }
    }
}
