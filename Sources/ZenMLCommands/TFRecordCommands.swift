import ArgumentParser
import Foundation
import ZenMLCore
import ZenMLEngine
import ZenMLTFRecord

extension ZenMLRun {
    struct TFRecord: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tfrecord",
            abstract: "Look inside TFRecord files and artifacts (any compression, every shard).",
            discussion: """
                SOURCE is a .tfrecord file (plain, GZIP or ZLIB, detected), a folder, or an artifact \
                id or digest prefix. A folder (or artifact) with PREFIX-NNNNN-of-MMMMM.tfrecord[.gz|.zlib] \
                shards is read shard by shard and must hold every shard; one without shard names is \
                read as its *.tfrecord[.gz|.zlib] files in name order. Records print as \
                JSON lines: tf.train.Examples decoded as {"feature": {"int64": [...]}}, \
                {"float": [...]} or {"bytes": [...]} (bytes that are not UTF-8 as "bytes_base64").

                Examples:
                  zenml-run tfrecord count 3f2a9c
                  zenml-run tfrecord head data.tfrecord.gz -n 3
                  zenml-run tfrecord cat shards/ --raw
                """,
            subcommands: [Count.self, Head.self, Cat.self])

        struct Source: ParsableArguments {
            @Argument(help: "A .tfrecord file, a folder of shards, or an artifact id or digest prefix.")
            var source: String
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            /// The files to read, in order.
            func files() async throws -> [String] {
                let path = absolutePath(source)
                if let status = try FileStatus.of(path, followingLinks: true) {
                    return status.kind == .directory ? try Self.files(inFolder: path) : [path]
                }
                let inspector = try Inspector(workspace: workspaceOptions.resolve())
                let artifact = try inspector.artifact(source)
                guard let directory = try await inspector.store.localPath(of: artifact.digest) else {
                    throw ValidationError("artifact \(artifact.digest) is recorded but not in the store")
                }
                return try Self.files(inFolder: directory)
            }

            /// The files a folder contributes, in reading order.
            ///
            /// A folder holding any `<prefix>-NNNNN-of-MMMMM.tfrecord[.gz|.zlib]` file is sharded:
            /// each prefix's shards must form one complete set (a missing, doubled or miscounted
            /// shard is an error that names it, never a smaller count), and they are read prefix
            /// after prefix in name order, each in shard order; its other files are not read. A
            /// folder with no such name contributes its regular, non-hidden files whose names end in
            /// `.tfrecord`, `.tfrecord.gz` or `.tfrecord.zlib`, in the byte order of their names (so
            /// `x.tfrecord.tmp` or `.x.tfrecord`, a write in progress, is never read).
            static func files(inFolder directory: String) throws -> [String] {
                let prefixes = try ShardedTFRecord.prefixes(in: directory)
                if !prefixes.isEmpty {
                    return try prefixes.flatMap { try ShardedTFRecord(directory: directory, prefix: $0).paths }
                }
                let extensions = TFRecordCompression.allCases.map(\.fileExtension)
                var files: [String] = []
                for name in try FileTree.childNames(of: directory).sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) })
                where !name.hasPrefix(".") && extensions.contains(where: { name.hasSuffix($0) }) {
                    let path = directory + "/" + name
                    if try FileStatus.of(path, followingLinks: true)?.kind == .file { files.append(path) }
                }
                guard !files.isEmpty else {
                    throw ValidationError(
                        "\(directory) holds no TFRecord files: neither data-NNNNN-of-MMMMM.tfrecord[.gz|.zlib] shards nor *.tfrecord[.gz|.zlib] files")
                }
                return files
            }
        }

        struct Count: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "count", abstract: "Count the records (verifying every CRC).")
            @OptionGroup var source: Source
            @OptionGroup(title: "Output") var output: OutputOptions

            /// The total, and each file's count in the order the files are read.
            struct Counts: Encodable {
                struct File: Encodable { var path: String; var records: Int }
                var records: Int
                var files: [File]
            }

            func run() async throws {
                try await reportingErrors {
                    var total = 0
                    var perFile: [Counts.File] = []
                    for file in try await source.files() {
                        let reader = try TFRecordReader(path: file)
                        var count = 0
                        while try reader.next() != nil { count += 1 }
                        perFile.append(Counts.File(path: file, records: count))
                        total += count
                    }
                    if output.json { return try printJSON("count", Counts(records: total, files: perFile)) }
                    print(total)
                }
            }
        }

        struct Head: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "head", abstract: "Print the first records as JSON lines.")
            @OptionGroup var source: Source
            @Option(name: .shortAndLong, help: "How many records.") var number = 10
            @Flag(help: "Print each record's bytes (base64) instead of decoding it as a tf.train.Example.") var raw = false

            func run() async throws {
                try await reportingErrors { try dump(await source.files(), limit: number, raw: raw) }
            }
        }

        struct Cat: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "cat", abstract: "Print every record as JSON lines.")
            @OptionGroup var source: Source
            @Flag(help: "Print each record's bytes (base64) instead of decoding it as a tf.train.Example.") var raw = false

            func run() async throws {
                try await reportingErrors { try dump(await source.files(), limit: nil, raw: raw) }
            }
        }
    }
}

private func dump(_ files: [String], limit: Int?, raw: Bool) throws {
    var printed = 0
    var buffer = Data()
    for file in files {
        let reader = try TFRecordReader(path: file)
        while limit.map({ printed < $0 }) ?? true, let record = try reader.next() {
            let line: JSONValue
            if raw {
                line = ["bytes_base64": .string(record.base64EncodedString())]
            } else {
                line = try exampleJSON(Example(serializedData: record))
            }
            buffer.append(Data(CanonicalJSON.encode(line).utf8))
            buffer.append(10)
            printed += 1
            if buffer.count > 1 << 16 {
                writeOutput(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }
    writeOutput(buffer)
}

private func exampleJSON(_ example: Example) -> JSONValue {
    var object: [String: JSONValue] = [:]
    for (name, feature) in example.features {
        switch feature {
        case .int64List(let values): object[name] = ["int64": .array(values.map { .int($0) })]
        case .floatList(let values): object[name] = ["float": .array(values.map { .double(Double($0)) })]
        case .bytesList(let values):
            let texts = values.map { String(data: $0, encoding: .utf8) }
            if texts.allSatisfy({ $0 != nil }) {
                object[name] = ["bytes": .array(texts.map { .string($0 ?? "") })]
            } else {
                object[name] = ["bytes_base64": .array(values.map { .string($0.base64EncodedString()) })]
            }
        case .unset: object[name] = [:]
        }
    }
    return .object(object)
}
