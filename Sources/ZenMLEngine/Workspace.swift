import Foundation
import ZenMLArtifacts
import ZenMLCache
import ZenMLCore
import ZenMLMetadata

/// A folder with a `.zenml/` directory: the local artifact store, the metadata store, logs and caches.
public struct Workspace: Sendable {
    /// The folder that holds `.zenml/`.
    public let root: String
    public var stateDirectory: String { root + "/.zenml" }
    public var artifactsDirectory: String { stateDirectory + "/artifacts" }
    public var metadataPath: String { stateDirectory + "/metadata.db" }
    public var logsDirectory: String { stateDirectory + "/logs" }
    public var stagingDirectory: String { stateDirectory + "/tmp" }
    public var statCachePath: String { stateDirectory + "/cache/stat-cache.json" }

    public init(root: String) {
        self.root = FileTree.normalize(root)
    }

    /// The nearest folder at or above `directory` that has a `.zenml/` directory.
    public static func find(from directory: String) -> Workspace? {
        var current = FileTree.normalize(directory)
        while true {
            if (try? FileStatus.of(current + "/.zenml", followingLinks: true))?.kind == .directory {
                return Workspace(root: current)
            }
            if current == "/" { return nil }
            current = (current as NSString).deletingLastPathComponent
        }
    }

    /// Whether `.zenml/` exists.
    public var exists: Bool { (try? FileStatus.of(stateDirectory, followingLinks: true))?.kind == .directory }

    /// Creates `.zenml/` and its stores (idempotent).
    @discardableResult
    public func initialize() throws -> Workspace {
        try createDirectories()
        _ = try openMetadataStore()
        return self
    }

    /// Creates `.zenml/` and its folders, without opening the metadata store (its opener creates
    /// the schema): for callers that open the store themselves right after.
    public func createDirectories() throws {
        for directory in [stateDirectory, artifactsDirectory, logsDirectory, stagingDirectory, stateDirectory + "/cache"] {
            try FileTree.makeDirectory(directory)
        }
        let ignore = stateDirectory + "/.gitignore"
        if (try FileStatus.of(ignore)) == nil {
            try FileTree.writeAtomically(Data("# zenml-run state: artifacts, metadata, logs. Not for version control.\n*\n".utf8), to: ignore)
        }
    }

    /// Opens the workspace's artifact store.
    public func openArtifactStore() throws -> LocalArtifactStore {
        // ZENML_DURABLE_PUBLISH=1 flushes every artifact before publishing it (see LocalArtifactStore.durable).
        let durable = ProcessInfo.processInfo.environment["ZENML_DURABLE_PUBLISH"] == "1"
        if let shared = try configuration().artifacts {
            // Staging must be on the store's file system, so that publishing stays one rename.
            return try LocalArtifactStore(root: shared, stagingRoot: shared + "/.staging", durable: durable)
        }
        return try LocalArtifactStore(root: artifactsDirectory, stagingRoot: stagingDirectory, durable: durable)
    }
}
