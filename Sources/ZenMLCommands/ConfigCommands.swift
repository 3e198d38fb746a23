import ArgumentParser
import Foundation
import ZenMLEngine
import ZenMLCore
import ZenMLMetadata

extension ZenMLRun {
    struct Config: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
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
                """,
            subcommands: [Show.self, Metadata.self, Artifacts.self, Registry.self, Trust.self])

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the workspace's settings.")
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
                    print("artifacts  \(settings.artifacts ?? workspace.artifactsDirectory)")
                }
            }
        }

        struct Metadata: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Choose the metadata store.", subcommands: [Set.self])

            struct Set: AsyncParsableCommand {
                static let configuration = CommandConfiguration(
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
            abstract: "Choose the artifact store.", subcommands: [Set.self])

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Keep artifacts in a folder shared with others, or back in .zenml/artifacts.",
                discussion: """
                    A shared folder (a network file system mount, say) lets workspaces that also share \
                    a metadata store reuse each other's cached steps. Give 'local' to go back to \
                    .zenml/artifacts. Existing artifacts are not moved.

                    Example:
                      zenml-run config artifacts set /mnt/team/zenml-artifacts
                    """)

            @Argument(help: "A folder, or 'local'.") var location: String
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    if !workspace.exists { try workspace.createDirectories() }
                    var settings = try workspace.configuration()
                    if location == "local" {
                        settings.artifacts = nil
                    } else {
                        guard !location.contains("://") else {
                            throw ValidationError("only folders are supported as artifact stores so far; '\(location)' looks like a URL")
                        }
                        let path = absolutePath(location)
                        try FileTree.makeDirectory(path)
                        settings.artifacts = path
                    }
                    try workspace.save(settings)
                    _ = try workspace.openArtifactStore()
                    print("artifact store: \(settings.artifacts ?? workspace.artifactsDirectory)")
                }
            }
        }
    }
}
