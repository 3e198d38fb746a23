import Foundation
import ZenMLCore
import ZenMLMetadata

/// A workspace's settings, in `.zenml/config.json`. Never holds a secret: a database password is
/// named by the environment variable it comes from.
public struct WorkspaceConfiguration: Codable, Sendable, Equatable {
    public var metadata: MetadataSettings
    /// An artifact store folder shared with others (absolute path); `nil` for `.zenml/artifacts`.
    public var artifacts: String?
    /// An artifact store in a bucket (`gs://` or `s3://`); takes precedence over `artifacts`.
    public var remoteArtifacts: RemoteArtifactSettings?
    /// The local cache of a remote store is pruned to this many bytes (default 10 GiB).
    public var cacheMaxSize: Int64?
    /// Bundle registries by name: a folder, gs://BUCKET/PREFIX or s3://BUCKET/PREFIX. `nil` when none is configured.
    public var registries: [String: RegistrySettings]?
    /// Public keys (`ed25519:<base64>`) whose signatures this workspace trusts.
    public var trustedKeys: [String]?
    /// Whether registry bundles must carry a signature by a trusted key before they are used.
    public var requireSignatures: Bool?

    public init(metadata: MetadataSettings = .sqlite, artifacts: String? = nil, remoteArtifacts: RemoteArtifactSettings? = nil, cacheMaxSize: Int64? = nil) {
        self.metadata = metadata
        self.artifacts = artifacts
        self.remoteArtifacts = remoteArtifacts
        self.cacheMaxSize = cacheMaxSize
    }

    /// Where steps run when `run` is not given `--backend`: `nil` for this machine.
    public var backend: BackendSettings?

    /// A cluster backend for steps.
    public struct BackendSettings: Codable, Sendable, Equatable {
        /// `slurm` (or `local`).
        public var kind: String
        /// The Slurm partition, when not the cluster's default.
        public var partition: String?

        public init(kind: String, partition: String? = nil) {
            self.kind = kind
            self.partition = partition
        }
    }

    enum CodingKeys: String, CodingKey {
        case metadata, artifacts, registries, backend
        case remoteArtifacts = "remote_artifacts"
        case cacheMaxSize = "cache_max_size"
        case trustedKeys = "trusted_keys"
        case requireSignatures = "require_signatures"
    }

    /// A bucket holding artifacts. Credentials are not here: they come from the environment
    /// (`AWS_*`, `~/.aws/credentials`, `GOOGLE_APPLICATION_CREDENTIALS`) each time.
    public struct RemoteArtifactSettings: Codable, Sendable, Equatable {
        /// `gs://BUCKET/PREFIX` or `s3://BUCKET/PREFIX`.
        public var url: String
        /// An S3-compatible server's `http(s)://host:port`, or a GCS emulator's; `nil` for the cloud.
        public var endpoint: String?
        /// The S3 region (default from `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1).
        public var region: String?

        public init(url: String, endpoint: String? = nil, region: String? = nil) {
            self.url = url
            self.endpoint = endpoint
            self.region = region
        }
    }

    /// Where a bundle registry is. Stored as a plain string (`"/mnt/registry"`, `"gs://b/p"`) when
    /// there is no endpoint or region, as settings files of earlier builds have it; credentials
    /// come from the environment, as for a bucket artifact store.
    public struct RegistrySettings: Codable, Sendable, Equatable {
        /// An absolute folder path, `gs://BUCKET/PREFIX` or `s3://BUCKET/PREFIX`.
        public var url: String
        /// An S3-compatible server's (or a GCS emulator's) `http(s)://host:port`; `nil` for the cloud.
        public var endpoint: String?
        /// The S3 region (default from `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1).
        public var region: String?

        public init(url: String, endpoint: String? = nil, region: String? = nil) {
            self.url = url
            self.endpoint = endpoint
            self.region = region
        }

        enum CodingKeys: String, CodingKey { case url, endpoint, region }

        public init(from decoder: Decoder) throws {
            if let url = try? decoder.singleValueContainer().decode(String.self) {
                self.init(url: url)
                return
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.init(url: try container.decode(String.self, forKey: .url),
                      endpoint: try container.decodeIfPresent(String.self, forKey: .endpoint),
                      region: try container.decodeIfPresent(String.self, forKey: .region))
        }

        public func encode(to encoder: Encoder) throws {
            if endpoint == nil && region == nil {
                var container = encoder.singleValueContainer()
                try container.encode(url)
                return
            }
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(url, forKey: .url)
            try container.encodeIfPresent(endpoint, forKey: .endpoint)
            try container.encodeIfPresent(region, forKey: .region)
        }

        /// For messages: the URL and its endpoint/region.
        public var summary: String {
            let extras = [endpoint.map { "endpoint \($0)" }, region.map { "region \($0)" }].compactMap { $0 }
            return url + (extras.isEmpty ? "" : " (" + extras.joined(separator: ", ") + ")")
        }
    }

    /// Where runs are recorded.
    public enum MetadataSettings: Codable, Sendable, Equatable {
        /// `.zenml/metadata.db` in the workspace.
        case sqlite
        /// A MySQL or MariaDB server shared by a team.
        case mysql(MySQLSettings)

        private enum CodingKeys: String, CodingKey { case backend, mysql }

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            switch try container.decode(String.self, forKey: .backend) {
            case "sqlite": self = .sqlite
            case "mysql": self = .mysql(try container.decode(MySQLSettings.self, forKey: .mysql))
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .backend, in: container, debugDescription: "unknown metadata backend '\(other)' (use sqlite or mysql)")
            }
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .sqlite:
                try container.encode("sqlite", forKey: .backend)
            case .mysql(let settings):
                try container.encode("mysql", forKey: .backend)
                try container.encode(settings, forKey: .mysql)
            }
        }
    }

    /// A MySQL/MariaDB store: everything but the password, which comes from `passwordVariable`.
    public struct MySQLSettings: Codable, Sendable, Equatable {
        public var host: String
        public var port: Int
        public var username: String
        public var database: String
        /// The environment variable holding the password (default `ZENML_METADATA_PASSWORD`).
        public var passwordVariable: String

        public init(host: String, port: Int, username: String, database: String, passwordVariable: String = "ZENML_METADATA_PASSWORD") {
            self.host = host
            self.port = port
            self.username = username
            self.database = database
            self.passwordVariable = passwordVariable
        }

        enum CodingKeys: String, CodingKey {
            case host, port, username, database
            case passwordVariable = "password_variable"
        }

        /// `mysql://USER@HOST:PORT/DATABASE`.
        public var url: String { "mysql://\(username)@\(host):\(port)/\(database)" }
    }
}

/// Why a workspace's settings cannot be used.
public enum WorkspaceConfigurationError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case missingPassword(variable: String, url: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "cannot read the workspace settings in \(path): \(reason); fix the file or set them again with 'zenml-run config metadata set'"
        case .missingPassword(let variable, let url):
            return "the metadata store \(url) needs a password: set the environment variable \(variable) (it is never written to disk)"
        }
    }
}

extension Workspace {
    public var configurationPath: String { stateDirectory + "/config.json" }

    /// The workspace's settings (the defaults when there is no settings file).
    public func configuration() throws -> WorkspaceConfiguration {
        guard (try? FileStatus.of(configurationPath)) != nil else { return WorkspaceConfiguration() }
        do {
            return try JSONDecoder().decode(WorkspaceConfiguration.self, from: FileTree.read(configurationPath))
        } catch {
            throw WorkspaceConfigurationError.unreadable(path: configurationPath, reason: "\(error)")
        }
    }

    /// Saves the workspace's settings.
    public func save(_ configuration: WorkspaceConfiguration) throws {
        try FileTree.makeDirectory(stateDirectory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileTree.writeAtomically(try encoder.encode(configuration) + Data("\n".utf8), to: configurationPath)
    }

    /// Opens the metadata store the settings name, taking a MySQL password from the environment.
    public func openMetadataStore(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any MetadataStore {
        try openMetadataStore(settings: configuration().metadata, environment: environment)
    }

    /// Opens the metadata store given settings (to try them before they are saved).
    public func openMetadataStore(settings: WorkspaceConfiguration.MetadataSettings, environment: [String: String]) throws -> any MetadataStore {
        switch settings {
        case .sqlite:
            // A store on a slow shared disk may want longer; a script that prefers failing fast, shorter.
            let busyTimeout = environment["ZENML_SQLITE_BUSY_TIMEOUT"].flatMap(TimeInterval.init) ?? SQLiteMetadataStore.defaultBusyTimeout
            return try SQLiteMetadataStore(path: metadataPath, busyTimeout: busyTimeout)
        case .mysql(let settings):
            guard let password = environment[settings.passwordVariable] else {
                throw WorkspaceConfigurationError.missingPassword(variable: settings.passwordVariable, url: settings.url)
            }
            return try MySQLMetadataStore(configuration: MySQLConfiguration(
                host: settings.host, port: settings.port, user: settings.username, password: password, database: settings.database))
        }
    }
}
