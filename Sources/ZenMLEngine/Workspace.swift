import Foundation
import ZenMLArtifacts
import ZenMLCache
import ZenMLCore
import ZenMLMetadata
import ZenMLObjectStore

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

    /// The local cache of a remote artifact store.
    public var artifactCacheDirectory: String { stateDirectory + "/cache/artifacts" }

    /// Opens the workspace's artifact store: a bucket (with a local cache) or a folder.
    public func openArtifactStore(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any ArtifactStore {
        let settings = try configuration()
        if let remote = settings.remoteArtifacts {
            return try openRemoteArtifactStore(remote, cacheMaxSize: settings.cacheMaxSize, environment: environment)
        }
        if let shared = settings.artifacts {
            // Staging must be on the store's file system, so that publishing stays one rename.
            return try Self.folderStore(root: shared, staging: shared + "/.staging", environment: environment)
        }
        return try Self.folderStore(root: artifactsDirectory, staging: stagingDirectory, environment: environment)
    }

    /// A folder store, opened the same way on the host and on a cluster node.
    static func folderStore(root: String, staging: String, environment: [String: String]) throws -> LocalArtifactStore {
        // ZENML_DURABLE_PUBLISH=1 flushes every artifact before publishing it (see LocalArtifactStore.durable).
        try LocalArtifactStore(root: root, stagingRoot: staging, durable: environment["ZENML_DURABLE_PUBLISH"] == "1")
    }
}

extension Workspace {
    /// The local cache of a remote store, bounded by the settings (or `ZENML_CACHE_MAX_SIZE`).
    public func openArtifactCache(maxSize: Int64?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ArtifactCache {
        let limit = maxSize ?? environment["ZENML_CACHE_MAX_SIZE"].flatMap { parseByteSize($0) } ?? ArtifactCache.defaultMaxSize
        return try ArtifactCache(root: artifactCacheDirectory, stagingRoot: stagingDirectory, maxSize: limit)
    }

    /// A bucket store from settings, with credentials from the environment.
    public func openRemoteArtifactStore(
        _ remote: WorkspaceConfiguration.RemoteArtifactSettings, cacheMaxSize: Int64?, environment: [String: String]
    ) throws -> RemoteArtifactStore {
        let location = try ObjectStoreLocation(parsing: remote.url)
        let objects = try openObjectStore(location, endpoint: remote.endpoint, region: remote.region, environment: environment)
        return RemoteArtifactStore(objects: objects, location: location, cache: try openArtifactCache(maxSize: cacheMaxSize, environment: environment))
    }
}

extension Workspace {
    /// A client for a bucket (artifact store or registry), with credentials from the environment.
    public func openObjectStore(_ location: ObjectStoreLocation, endpoint: String?, region: String?, environment: [String: String]) throws -> any ObjectStore {
        try Self.objectStore(location, endpoint: endpoint, region: region, environment: environment)
    }

    /// A client for a bucket, outside any workspace (a worker on a cluster node opens the store this way).
    public static func objectStore(_ location: ObjectStoreLocation, endpoint: String?, region: String?, environment: [String: String]) throws -> any ObjectStore {
        // libcurl is opened at first use: a machine without it learns so here, before a run starts.
        try HTTPClient.loadLibcurl()
        let transfer = TransferSettings.fromEnvironment(environment)
        switch location.scheme {
        case .gs:
            let endpoint = endpoint ?? environment["STORAGE_EMULATOR_HOST"]
            var credentialEnvironment = environment
            // An emulator endpoint in the settings is as good as STORAGE_EMULATOR_HOST for "no credentials needed".
            if let endpoint { credentialEnvironment["STORAGE_EMULATOR_HOST"] = endpoint }
            return GCSObjectStore(bucket: location.bucket, endpoint: endpoint, credentials: try GCSCredentials.fromEnvironment(credentialEnvironment), settings: transfer)
        case .s3:
            let region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
            return S3ObjectStore(bucket: location.bucket, region: region, endpoint: endpoint, credentials: try S3Credentials.fromEnvironment(environment), settings: transfer)
        }
    }
}

/// `500M`, `10G`, `1.5GiB`, `2048` (bytes); `nil` if it is not a size.
public func parseByteSize(_ text: String) -> Int64? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [(String, Double)] = [("TIB", 0x1p40), ("GIB", 0x1p30), ("MIB", 0x1p20), ("KIB", 0x1p10), ("TB", 0x1p40), ("GB", 0x1p30), ("MB", 0x1p20), ("KB", 0x1p10),
                                     ("T", 0x1p40), ("G", 0x1p30), ("M", 0x1p20), ("K", 0x1p10), ("B", 1)]
    for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
        guard let number = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number >= 0 else { return nil }
        return Int64(number * factor)
    }
    return Int64(trimmed).flatMap { $0 >= 0 ? $0 : nil }
}
