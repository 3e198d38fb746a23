import ArgumentParser
import Foundation
import ZenMLBundles
import ZenMLCore
import ZenMLEngine
import ZenMLObjectStore

extension ZenMLRun.Config {
    struct Registry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "registry",
            abstract: "Name the bundle registries this workspace publishes to and pulls from.",
            discussion: """
                A registry is a folder (local or shared, e.g. a network mount) or a prefix in a \
                bucket: gs://BUCKET/PREFIX, s3://BUCKET/PREFIX (--endpoint for an S3-compatible \
                server or a GCS emulator, --region for S3). Bucket credentials are never stored: \
                they come from the environment as for 'config artifacts set' (AWS_ACCESS_KEY_ID/\
                AWS_SECRET_ACCESS_KEY or ~/.aws/credentials; GOOGLE_APPLICATION_CREDENTIALS or \
                ZENML_GCS_TOKEN; STORAGE_EMULATOR_HOST).

                Examples:
                  zenml-run config registry add team /mnt/shared/zenml-registry
                  zenml-run config registry add team gs://team-bucket/zenml-registry
                  zenml-run config registry add team s3://team-bucket/registry --endpoint https://s3.internal:9000
                  zenml-run config registry add team /mnt/shared/zenml-registry --require-signatures --trust alice.pub
                  zenml-run config registry list
                  zenml-run config registry remove team
                """,
            subcommands: [Add.self, List.self, Remove.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "add", abstract: "Add (or move) a registry.")
            @Argument(help: "The registry's name in this workspace.") var name: String
            @Argument(help: "Its location: a folder, gs://BUCKET/PREFIX or s3://BUCKET/PREFIX.") var location: String
            @Option(help: "An S3-compatible server (or a GCS emulator): http(s)://HOST:PORT.") var endpoint: String?
            @Option(help: "The S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).") var region: String?
            @Flag(help: "Make the registry itself accept and serve only bundles signed by --trust keys (written to its registry.json).")
            var requireSignatures = false
            @Option(help: ArgumentHelp("A public key the registry trusts (repeatable; with --require-signatures).", valueName: "keyfile"))
            var trust: [String] = []
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    guard BundleReference.isValidName(name) else { throw ValidationError("'\(name)' is not a registry name (letters, digits, '-', '_', '.')") }
                    let workspace = workspaceOptions.resolve()
                    if !workspace.exists { try workspace.createDirectories() }
                    let stored: WorkspaceConfiguration.RegistrySettings
                    if location.hasPrefix("gs://") || location.hasPrefix("s3://") {
                        let parsed = try ObjectStoreLocation(parsing: location)
                        if parsed.scheme == .gs && region != nil { throw ValidationError("--region is for s3:// registries") }
                        if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
                            throw ValidationError("--endpoint must be an http:// or https:// URL, not '\(endpoint)'")
                        }
                        stored = .init(url: parsed.description, endpoint: endpoint, region: region)
                    } else if location.contains("://") && !location.hasPrefix("file://") {
                        throw ValidationError("'\(location)' is not a registry location: use a folder, gs://BUCKET/PREFIX or s3://BUCKET/PREFIX")
                    } else {
                        if endpoint != nil || region != nil { throw ValidationError("--endpoint and --region are for gs:// and s3:// registries") }
                        let path = FileTree.normalize(absolutePath(location.hasPrefix("file://") ? String(location.dropFirst(7)) : location))
                        try FileTree.makeDirectory(path)
                        stored = .init(url: path)
                    }
                    // Opening names missing credentials; reading the policy is one request, so a wrong
                    // bucket, endpoint or secret shows now and not at the next publish or run.
                    let registry = try workspace.openRegistry(name: name, settings: stored)
                    _ = try await registry.policy()
                    if requireSignatures {
                        let keys = try trust.map { try BundleSigning.publicKey(absolutePath($0)) }
                        guard !keys.isEmpty else { throw ValidationError("--require-signatures needs at least one --trust KEYFILE.pub") }
                        try await registry.setPolicy(RegistryPolicy(requireSignatures: true, trustedKeys: keys))
                    }
                    var settings = try workspace.configuration()
                    settings.registries = (settings.registries ?? [:]).merging([name: stored]) { $1 }
                    try workspace.save(settings)
                    let policy = try await registry.policy()
                    print("registry \(name): \(stored.summary)" + (policy.requireSignatures ? " (signatures required)" : ""))
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List the workspace's registries.")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            func run() async throws {
                try await reportingErrors {
                    let registries = try workspaceOptions.resolve().configuration().registries ?? [:]
                    if output.json { return try printJSON("registries", registries) }
                    if registries.isEmpty { print("no registries; add one with 'zenml-run config registry add NAME LOCATION'") }
                    for (name, location) in registries.sorted(by: { $0.key < $1.key }) { print("\(name)  \(location.summary)") }
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "remove", abstract: "Forget a registry (its content is left alone).")
            @Argument(help: "The registry's name.") var name: String
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    var settings = try workspace.configuration()
                    guard settings.registries?[name] != nil else { throw BundleError.registry("no registry named '\(name)'") }
                    settings.registries?[name] = nil
                    if settings.registries?.isEmpty == true { settings.registries = nil }
                    try workspace.save(settings)
                    print("removed registry \(name)")
                }
            }
        }
    }

    struct Trust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trust",
            abstract: "Choose whose bundle signatures this workspace trusts, and whether it requires them.",
            discussion: """
                Examples:
                  zenml-run config trust add alice.pub
                  zenml-run config trust require
                  zenml-run config trust list
                """,
            subcommands: [Add.self, Require.self, Optional.self, List.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "add", abstract: "Trust signatures by a public key (a .pub file from 'bundle keygen').")
            @Argument(help: ArgumentHelp("The public key file.", valueName: "keyfile")) var keyFile: String
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    if !workspace.exists { try workspace.createDirectories() }
                    let key = try BundleSigning.publicKey(absolutePath(keyFile))
                    var settings = try workspace.configuration()
                    settings.trustedKeys = Array(Set((settings.trustedKeys ?? []) + [key])).sorted()
                    try workspace.save(settings)
                    print("trusting key \(BundleSigning.keyID(key))" + (settings.requireSignatures == true ? "" : " (signatures are not required yet: 'zenml-run config trust require')"))
                }
            }
        }

        struct Require: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "require", abstract: "Use registry bundles only when signed by a trusted key.")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    if !workspace.exists { try workspace.createDirectories() }
                    var settings = try workspace.configuration()
                    settings.requireSignatures = true
                    try workspace.save(settings)
                    print("registry bundles must now be signed by a trusted key (\((settings.trustedKeys ?? []).count) trusted)")
                }
            }
        }

        struct Optional: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "optional", abstract: "Stop requiring signatures (signatures by trusted keys are still checked).")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    var settings = try workspace.configuration()
                    settings.requireSignatures = nil
                    try workspace.save(settings)
                    print("signatures are no longer required")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List the trusted keys.")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let settings = try workspaceOptions.resolve().configuration()
                    print("signatures \(settings.requireSignatures == true ? "required" : "not required")")
                    for key in settings.trustedKeys ?? [] { print("\(BundleSigning.keyID(key))  \(key)") }
                }
            }
        }
    }
}
