import ArgumentParser
import Foundation
import ZenMLArtifacts
import ZenMLCore
import ZenMLEngine

extension ZenMLRun {
    struct Cache: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cache",
            abstract: "Manage the local cache of a bucket artifact store.", subcommands: [Prune.self])

        struct Prune: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "prune",
                abstract: "Remove least recently used artifacts from .zenml/cache/artifacts.",
                discussion: """
                    The cache holds local copies of a gs:// or s3:// store's artifacts, for steps to \\
                    read. Pruning never loses anything: a removed artifact is fetched again from the \\
                    bucket when a step needs it. Without --max-size, prunes to the configured bound \\
                    (config artifacts set ... --cache-max-size, default 10G); --max-size 0 empties it.

                    Examples:
                      zenml-run cache prune
                      zenml-run cache prune --max-size 2G
                    """)

            @Option(help: "Keep at most this much, e.g. 500M, 2G, 0.") var maxSize: String?
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            struct Report: Encodable { var removed: Int; var freedBytes: Int64; var remaining: Int; var remainingBytes: Int64; var limitBytes: Int64 }

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    let settings = try workspace.configuration()
                    var limit = settings.cacheMaxSize ?? ArtifactCache.defaultMaxSize
                    if let maxSize {
                        guard let bytes = parseByteSize(maxSize) else { throw ValidationError("'\(maxSize)' is not a size (examples: 500M, 2G, 0)") }
                        limit = bytes
                    }
                    let cache = try workspace.openArtifactCache(maxSize: limit)
                    let (removed, freed) = try cache.prune(to: limit)
                    let entries = try cache.entries()
                    let report = Report(removed: removed, freedBytes: freed, remaining: entries.count, remainingBytes: entries.reduce(0) { $0 + $1.size }, limitBytes: limit)
                    if output.json { return try printJSON("cache", report) }
                    let format = { (bytes: Int64) in ByteCountFormatter.string(fromByteCount: bytes, countStyle: .binary) }
                    print("removed \(removed) artifact\(removed == 1 ? "" : "s") (\(format(freed))); \(entries.count) left (\(format(report.remainingBytes)) of \(format(limit)))")
                }
            }
        }
    }
}
