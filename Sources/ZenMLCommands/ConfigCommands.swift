import ArgumentParser
import Foundation
import ZenMLEngine
import ZenMLCore
import ZenMLMetadata
import ZenMLArtifacts
import ZenMLObjectStore

extension ZenMLRun {
    struct Config: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Show or change where a workspace keeps its records.",
            discussion: """
                Settings live in .zenml/config.json. Secrets never do: a database password is read \
                from an environment variable each time.

                Examples:
                  zenml-run config show
                  export ZENML_METADATA_PASSWORD=...
                  zenml-run config metadata set mysql --host db.internal --port 3306 \\
                      --username ml --database zenml
                  zenml-run config metadata set sqlite
                  zenml-run config artifacts set /shared/team/artifacts
                  zenml-run config artifacts set gs://team-bucket/zenml
                  zenml-run config artifacts set s3://team-bucket/zenml --endpoint https://s3.internal:9000
                  zenml-run config backend set slurm --partition gpu
                """,
            subcommands: [Show.self, Metadata.self, Artifacts.self, Backend.self, Registry.self, Trust.self])

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the workspace's settings.")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    let settings = try workspace.configuration()
                    if output.json { return try printJSON("config", settings) }
                    print("workspace  \(workspace.root)")
                    switch settings.metadata {
                    case .sqlite: print("metadata   sqlite \(workspace.metadataPath)")
                    case .mysql(let mysql): print("metadata   \(mysql.url) (password from $\(mysql.passwordVariable))")
                    }
                    if let remote = settings.remoteArtifacts {
                        let extras = [remote.endpoint.map { "endpoint \($0)" }, remote.region.map { "region \($0)" }].compactMap { $0 }
                        print("artifacts  \(remote.url)\(extras.isEmpty ? "" : " (" + extras.joined(separator: ", ") + ")")")
                        let limit = settings.cacheMaxSize ?? ArtifactCache.defaultMaxSize
                        print("cache      \(workspace.artifactCacheDirectory) (up to \(ByteCountFormatter.string(fromByteCount: limit, countStyle: .binary)))")
                    } else {
                        print("artifacts  \(settings.artifacts ?? workspace.artifactsDirectory)")
                    }
                    let backend = settings.backend.map { $0.kind + ($0.partition.map { " (partition \($0))" } ?? "") } ?? "local"
                    print("backend    \(backend)")
                }
            }
        }

        struct Metadata: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "metadata",
                abstract: "Choose the metadata store.", subcommands: [Set.self])

            struct Set: AsyncParsableCommand {
                static let configuration = CommandConfiguration(
                    commandName: "set",
                    abstract: "Use SQLite in the workspace, or a shared MySQL/MariaDB server.",
                    discussion: """
                        For mysql, the password comes from the environment variable named by \
                        --password-env (default ZENML_METADATA_PASSWORD), or from a prompt when that \
                        is unset and a terminal is attached. The connection is tried (and ML \
                        Metadata's schema created if the database is empty) before anything is saved.
                        """)

                enum Backend: String, ExpressibleByArgument, CaseIterable { case sqlite, mysql }

                @Argument(help: "sqlite or mysql.") var backend: Backend
                @Option(help: "The MySQL/MariaDB server.") var host = "127.0.0.1"
                @Option(help: "Its port.") var port = 3306
                @Option(help: "The user name.") var username: String?
                @Option(help: "The database (created if missing).") var database: String?
                @Option(name: .customLong("password-env"), help: "The environment variable holding the password.")
                var passwordVariable = "ZENML_METADATA_PASSWORD"
                @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

                func validate() throws {
                    if backend == .mysql {
                        guard username != nil else { throw ValidationError("Please give --username for a mysql store.") }
                        guard database != nil else { throw ValidationError("Please give --database for a mysql store.") }
                    }
                }

                func run() async throws {
                    try await reportingErrors {
                        let workspace = workspaceOptions.resolve()
                        if !workspace.exists { try workspace.createDirectories() }
                        var settings = try workspace.configuration()
                        switch backend {
                        case .sqlite:
                            settings.metadata = .sqlite
                        case .mysql:
                            let mysql = WorkspaceConfiguration.MySQLSettings(
                                host: host, port: port, username: username ?? "", database: database ?? "", passwordVariable: passwordVariable)
                            var environment = ProcessInfo.processInfo.environment
                            if environment[passwordVariable] == nil, isatty(STDIN_FILENO) == 1, let typed = getpass("password for \(mysql.url): ") {
                                environment[passwordVariable] = String(cString: typed)
                                printError("note: the password is not saved; export \(passwordVariable) for later commands")
                            }
                            // Try it before saving: a typo should fail now, not at the next run.
                            _ = try workspace.openMetadataStore(settings: .mysql(mysql), environment: environment)
                            settings.metadata = .mysql(mysql)
                        }
                        try workspace.save(settings)
                        switch settings.metadata {
                        case .sqlite: print("metadata store: sqlite at \(workspace.metadataPath)")
                        case .mysql(let mysql): print("metadata store: \(mysql.url) (password from $\(mysql.passwordVariable), never stored)")
                        }
                    }
                }
            }
        }
    }
}


extension ZenMLRun.Config {
    struct Artifacts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "artifacts",
            abstract: "Choose the artifact store.", subcommands: [Set.self])

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Keep artifacts in a bucket or a folder shared with others, or back in .zenml/artifacts.",
                discussion: """
                    A bucket (gs://BUCKET/PREFIX, s3://BUCKET/PREFIX) or a shared folder lets workspaces \
                    that also share a metadata store reuse each other's cached steps. Steps still read \
                    local files: a bucket's artifacts are fetched into .zenml/cache/artifacts (bounded, \
                    see 'zenml-run cache prune'). Give 'local' to go back to .zenml/artifacts. Existing \
                    artifacts are not moved.

                    Credentials are never stored: S3 uses AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \
                    (AWS_SESSION_TOKEN) or ~/.aws/credentials (AWS_PROFILE); GCS uses \
                    GOOGLE_APPLICATION_CREDENTIALS (a service account key) or a token in ZENML_GCS_TOKEN, \
                    and STORAGE_EMULATOR_HOST for an emulator.

                    Examples:
                      zenml-run config artifacts set /mnt/team/zenml-artifacts
                      zenml-run config artifacts set gs://team-bucket/zenml
                      zenml-run config artifacts set s3://team-bucket/zenml --region eu-west-1
                      zenml-run config artifacts set s3://zenml/artifacts --endpoint http://127.0.0.1:9000
                    """)

            @Argument(help: "A folder, gs://BUCKET/PREFIX, s3://BUCKET/PREFIX, or 'local'.") var location: String
            @Option(help: "An S3-compatible server (or a GCS emulator): http(s)://HOST:PORT.") var endpoint: String?
            @Option(help: "The S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).") var region: String?
            @Option(help: "Bound of the local cache of a bucket store, e.g. 20G (default 10G).") var cacheMaxSize: String?
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    if !workspace.exists { try workspace.createDirectories() }
                    var settings = try workspace.configuration()
                    if let cacheMaxSize {
                        guard let bytes = parseByteSize(cacheMaxSize) else { throw ValidationError("'\(cacheMaxSize)' is not a size (examples: 500M, 20G)") }
                        settings.cacheMaxSize = bytes
                    }
                    if location == "local" {
                        settings.artifacts = nil
                        settings.remoteArtifacts = nil
                    } else if location.contains("://") {
                        let parsed = try ObjectStoreLocation(parsing: location)
                        if parsed.scheme == .gs && region != nil { throw ValidationError("--region is for s3:// stores") }
                        if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
                            throw ValidationError("--endpoint must be an http:// or https:// URL, not '\(endpoint)'")
                        }
                        settings.remoteArtifacts = .init(url: parsed.description, endpoint: endpoint, region: region)
                        // Opening the store checks that credentials are there (and names the variable if not).
                        let store = try workspace.openRemoteArtifactStore(settings.remoteArtifacts!, cacheMaxSize: settings.cacheMaxSize, environment: ProcessInfo.processInfo.environment)
                        // One request now, so a wrong bucket, endpoint or secret shows here and not in the middle of a run.
                        _ = try await store.objects.head(parsed.key(".zenml-probe"))
                    } else {
                        if endpoint != nil || region != nil { throw ValidationError("--endpoint and --region are for gs:// and s3:// stores") }
                        let path = absolutePath(location)
                        try FileTree.makeDirectory(path)
                        settings.artifacts = path
                        settings.remoteArtifacts = nil
                    }
                    try workspace.save(settings)
                    _ = try workspace.openArtifactStore()
                    print("artifact store: \(settings.remoteArtifacts?.url ?? settings.artifacts ?? workspace.artifactsDirectory)")
                }
            }
        }
    }
}

extension ZenMLRun.Config {
    struct Backend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backend",
            abstract: "Choose where steps run by default: on this machine, or as Slurm jobs.", subcommands: [Set.self])

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Run steps locally or through Slurm unless 'run --backend' says otherwise.",
                discussion: "Examples:\n  zenml-run config backend set slurm --partition gpu\n  zenml-run config backend set local")

            enum Kind: String, ExpressibleByArgument, CaseIterable { case local, slurm }

            @Argument(help: "local or slurm.") var kind: Kind
            @Option(help: ArgumentHelp("The Slurm partition (default: the cluster's default).", valueName: "name")) var partition: String?
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func validate() throws {
                if kind == .local && partition != nil { throw ValidationError("--partition is for the slurm backend.") }
            }

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    if !workspace.exists { try workspace.createDirectories() }
                    var settings = try workspace.configuration()
                    settings.backend = kind == .local ? nil : WorkspaceConfiguration.BackendSettings(kind: kind.rawValue, partition: partition)
                    try workspace.save(settings)
                    print("steps run \(kind == .local ? "on this machine" : "as Slurm jobs" + (partition.map { " in partition \($0)" } ?? "")) unless 'run --backend' says otherwise")
                }
            }
        }
    }
}
