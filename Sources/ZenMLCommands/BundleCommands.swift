import ArgumentParser
import Foundation
import ZenMLBundles
import ZenMLContract
import ZenMLCore
import ZenMLEngine

extension ZenMLRun {
    struct Bundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bundle",
            abstract: "Pack, publish, pull, sign and test step bundles.",
            discussion: """
                A bundle travels as one deterministic tar archive whose SHA-256 is its digest (the \
                same bytes on every machine: see protocol/SPEC.md, "Bundle archives"). Registries \
                are folders or gs:// / s3:// bucket prefixes named in the workspace settings; a \
                pipeline can then say 'uses: NAME@^1.2' and zenml.lock pins the exact digest.

                Examples:
                  zenml-run bundle pack steps/clean -o clean.tar
                  zenml-run bundle inspect clean.tar
                  zenml-run config registry add team /shared/zenml-registry
                  zenml-run bundle keygen ~/.zenml-key
                  zenml-run bundle publish steps/clean --registry team --key ~/.zenml-key
                  zenml-run bundle list --registry team
                  zenml-run bundle pull clean@^1.2
                  zenml-run bundle test steps/clean
                """,
            subcommands: [Pack.self, Unpack.self, Inspect.self, Publish.self, Pull.self, List.self, Search.self, Keygen.self, Sign.self, Test.self])
    }
}

/// A bundle, described for `inspect`.
struct BundleDescription: Encodable {
    struct File: Encodable {
        var path: String
        var kind: String
        var size: Int64
        var executable: Bool
        var target: String?
    }
    var name: String
    var version: String
    var description: String?
    var digest: String
    var files: [File]
}

extension ZenMLRun.Bundle {
    struct Pack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pack",
            abstract: "Write a bundle's deterministic archive; print its digest.",
            discussion: """
                Entries sorted, times 0, owners 0, modes 0644/0755: the same bytes everywhere. \
                Links that stay inside the bundle are kept; links that leave it are replaced by \
                what they point to. __pycache__, .git and .DS_Store are left out.
                """)

        @Argument(help: ArgumentHelp("The bundle folder.", valueName: "dir")) var directory: String
        @Option(name: [.short, .long], help: ArgumentHelp("The archive to write (default: NAME-VERSION.tar here).", valueName: "file"))
        var output: String?

        func run() async throws {
            try await reportingErrors {
                let manifest = try BundleManifest.load(bundle: absolutePath(directory))
                let destination = absolutePath(output ?? "\(manifest.name)-\(manifest.version).tar")
                let digest = try BundleArchive.pack(absolutePath(directory), to: destination)
                print("\(destination)  \(digest)")
            }
        }
    }

    struct Unpack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unpack",
            abstract: "Unpack a bundle archive into a new folder, refusing anything unsafe.",
            discussion: """
                Refused, with nothing written: absolute paths, '..', links that leave the bundle, \
                entries below a link, devices, fifos, hard links, and archives larger than the \
                limits. The folder appears only when everything was unpacked.
                """)

        @Argument(help: ArgumentHelp("The archive.", valueName: "file")) var archive: String
        @Argument(help: ArgumentHelp("The folder to create.", valueName: "dir")) var directory: String
        @Option(help: "The most bytes the files may expand to.") var maxSize: Int64 = UnpackLimits().maxBytes
        @Option(help: "The most entries.") var maxEntries: Int = UnpackLimits().maxEntries

        func run() async throws {
            try await reportingErrors {
                try BundleUnpacker.unpack(absolutePath(archive), into: absolutePath(directory), limits: UnpackLimits(maxBytes: maxSize, maxEntries: maxEntries))
                print("unpacked \(archive) into \(directory)")
            }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a bundle's (folder or archive) manifest, files and digest.")

        @Argument(help: ArgumentHelp("A bundle folder or archive.", valueName: "file|dir")) var target: String
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let path = absolutePath(target)
                var folder = path
                var temporary: String?
                defer { if let temporary { try? FileTree.remove(temporary) } }
                if try FileStatus.of(path, followingLinks: true)?.kind != .directory {
                    let scratch = NSTemporaryDirectory() + "zenml-inspect-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                    temporary = scratch
                    try BundleUnpacker.unpack(path, into: scratch + "/bundle")
                    folder = scratch + "/bundle"
                }
                let manifest = try BundleManifest.load(bundle: folder)
                let entries = try BundleArchive.entries(of: folder)
                let digest = try BundleArchive.digest(of: entries)
                if temporary != nil, let fileDigest = try? Digest.ofFile(atPath: path), fileDigest != digest {
                    printError("note: \(target) is not in zenml-run's canonical form (its SHA-256 is \(fileDigest)); the bundle it holds has the digest shown, which 'bundle pack' reproduces")
                }
                let description = BundleDescription(
                    name: manifest.name, version: manifest.version, description: manifest.description, digest: digest.description,
                    files: entries.map { .init(path: $0.path, kind: $0.kind.rawValue, size: $0.size, executable: $0.kind == .file && $0.executable, target: $0.target) })
                if output.json { return try printJSON("bundle", description) }
                print("\(manifest.name) \(manifest.version)  \(digest)")
                if let text = manifest.description { print(text) }
                print("entrypoint  \(manifest.entrypoint)")
                print("inputs      \(manifest.inputs.keys.sorted().joined(separator: ", "))")
                print("outputs     \(manifest.outputs.keys.sorted().joined(separator: ", "))")
                print("files:")
                for file in description.files {
                    switch file.kind {
                    case "directory": print("  \(file.path)/")
                    case "symlink": print("  \(file.path) -> \(file.target ?? "")")
                    default: print("  \(file.path)  \(file.size) bytes\(file.executable ? ", executable" : "")")
                    }
                }
            }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "publish",
            abstract: "Publish a bundle to a registry under the name and version in its step.yaml.",
            discussion: """
                A published version never changes: publishing other content under it is refused \
                (raise 'version:'), publishing the same content again does nothing (and adds a \
                new signature, if given). When two people publish the same version at once, one \
                wins and the other is told so; in a bucket registry publishing waits 1.5 s \
                (ZENML_REGISTRY_SETTLE_MS) to read its record back and be sure which.
                """)

        @Argument(help: ArgumentHelp("The bundle folder.", valueName: "dir")) var directory: String
        @Option(help: "The registry (a name from 'zenml-run config registry list').") var registry: String
        @Option(help: ArgumentHelp("Sign with this private key (from 'bundle keygen').", valueName: "keyfile")) var key: String?
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

        func run() async throws {
            try await reportingErrors {
                let workspace = workspaceOptions.resolve()
                let target = try workspace.registry(named: registry)
                let signingKey = try key.map { try BundleSigning.loadPrivateKey(absolutePath($0)) }
                let (record, new) = try await target.publish(bundle: absolutePath(directory), signingKey: signingKey, staging: workspace.stagingDirectory)
                let signed = record.signatures.isEmpty ? "unsigned" : "signed by \(record.signatures.map { BundleSigning.keyID($0.publicKey) }.joined(separator: ", "))"
                print(new ? "published \(record.name)@\(record.version) to \(registry): \(record.digest) (\(signed))"
                    : "\(record.name)@\(record.version) was already published to \(registry) with this content: \(record.digest) (\(signed))")
            }
        }
    }

    struct Pull: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pull",
            abstract: "Download a registry bundle into the workspace's bundle cache.",
            discussion: """
                NAME@VERSION, NAME@RANGE (^1.2, ~1.2, >=1.0,<2) or NAME@sha256:DIGEST. The \
                archive's digest and the signature rules are checked; prints the folder.
                """)

        @Argument(help: ArgumentHelp("The bundle.", valueName: "name@version")) var reference: String
        @Option(help: "Only this registry (default: the first that has it).") var registry: String?
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

        func run() async throws {
            try await reportingErrors {
                let workspace = workspaceOptions.resolve()
                let parsed = try BundleReference(reference)
                guard parsed.name != nil else { throw ValidationError("'\(reference)' is not NAME@VERSION") }
                let registries = try registry.map { [try workspace.registry(named: $0)] } ?? workspace.registries()
                for candidate in registries {
                    guard let record = try await candidate.resolve(parsed) else { continue }
                    let folder = try await candidate.pull(record, into: workspace.bundleCache, trust: workspace.trustPolicy())
                    print("\(record.name)@\(record.version) \(record.digest) from \(candidate.name): \(folder)")
                    return
                }
                throw BundleError.registry("no registry has a version matching '\(reference)' (searched: \(registries.map(\.name).joined(separator: ", ")))")
            }
        }
    }

    struct Listing: Encodable {
        var registry: String
        var name: String
        var version: String
        var digest: String
        var description: String?
        var signedBy: [String]
    }

    static func listings(_ workspace: Workspace, registry: String?, matching: (PublishedBundle) -> Bool) async throws -> [Listing] {
        var rows: [Listing] = []
        for candidate in try registry.map({ [try workspace.registry(named: $0)] }) ?? workspace.registries() {
            for name in try await candidate.names() {
                for version in try await candidate.versions(of: name) {
                    guard let record = try await candidate.metadata(of: name, version: version), matching(record) else { continue }
                    rows.append(Listing(
                        registry: candidate.name, name: name, version: version, digest: record.digest.description,
                        description: record.description, signedBy: record.signatures.map { BundleSigning.keyID($0.publicKey) }))
                }
            }
        }
        return rows
    }

    static func printListings(_ rows: [Listing]) {
        for row in rows {
            let signed = row.signedBy.isEmpty ? "unsigned" : "signed " + row.signedBy.joined(separator: ",")
            print("\(row.registry)  \(row.name)@\(row.version)  \(String(row.digest.dropFirst(7).prefix(12)))  \(signed)\(row.description.map { "  " + $0 } ?? "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the bundles in the workspace's registries.")
        @Option(help: "Only this registry.") var registry: String?
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let rows = try await ZenMLRun.Bundle.listings(workspaceOptions.resolve(), registry: registry) { _ in true }
                if output.json { return try printJSON("bundles", rows) }
                if rows.isEmpty { print("no bundles published yet") }
                ZenMLRun.Bundle.printListings(rows)
            }
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "search", abstract: "Find bundles whose name or description contains a word.")
        @Argument(help: "The word (case-insensitive).") var text: String
        @Option(help: "Only this registry.") var registry: String?
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let rows = try await ZenMLRun.Bundle.listings(workspaceOptions.resolve(), registry: registry) { record in
                    record.name.localizedCaseInsensitiveContains(text) || (record.description?.localizedCaseInsensitiveContains(text) ?? false)
                }
                if output.json { return try printJSON("bundles", rows) }
                if rows.isEmpty { print("no bundle matches '\(text)'") }
                ZenMLRun.Bundle.printListings(rows)
            }
        }
    }

    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keygen",
            abstract: "Make an Ed25519 key pair for signing bundles: FILE (private, 0600) and FILE.pub.",
            discussion: "Give FILE.pub to those who should trust your bundles: 'zenml-run config trust add FILE.pub'.")
        @Argument(help: ArgumentHelp("The private key file to create.", valueName: "file")) var file: String

        func run() async throws {
            try await reportingErrors {
                let publicKey = try BundleSigning.generateKey(at: absolutePath(file))
                print("private key: \(file) (keep it secret)\npublic key:  \(file).pub  \(publicKey)  (id \(BundleSigning.keyID(publicKey)))")
            }
        }
    }

    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign",
            abstract: "Sign a published bundle (NAME@VERSION --registry R), or print the signature of a folder or archive.",
            discussion: """
                The signature covers the bundle digest. Examples:
                  zenml-run bundle sign clean@1.2.0 --registry team --key ~/.zenml-key
                  zenml-run bundle sign steps/clean --key ~/.zenml-key
                """)
        @Argument(help: ArgumentHelp("NAME@VERSION, a bundle folder or an archive.", valueName: "target")) var target: String
        @Option(help: ArgumentHelp("The private key.", valueName: "keyfile")) var key: String
        @Option(help: "The registry holding NAME@VERSION.") var registry: String?
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

        func run() async throws {
            try await reportingErrors {
                let privateKey = try BundleSigning.loadPrivateKey(absolutePath(key))
                if let registry {
                    guard case .version(let name, let range) = try BundleReference(target), let version = range.best(of: [range.description]) else {
                        throw ValidationError("with --registry, give the exact NAME@VERSION to sign")
                    }
                    let store = try workspaceOptions.resolve().registry(named: registry)
                    guard let record = try await store.metadata(of: name, version: version) else {
                        throw BundleError.registry("registry '\(registry)' has no \(name)@\(version); publish it first")
                    }
                    _ = try await store.addSignatures([try BundleSigning.sign(record.digest, with: privateKey)], to: record)
                    print("signed \(name)@\(version) (\(record.digest)) in \(registry)")
                    return
                }
                let path = absolutePath(target)
                let digest = try FileStatus.of(path, followingLinks: true)?.kind == .directory
                    ? try BundleArchive.digest(of: BundleArchive.entries(of: path)) : try Digest.ofFile(atPath: path)
                let signature = try BundleSigning.sign(digest, with: privateKey)
                try printJSON("signature", ["digest": digest.description, "public_key": signature.publicKey, "signature": signature.signature])
            }
        }
    }
}

extension ZenMLRun.Bundle {
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test",
            abstract: "Check that a bundle obeys the step contract, with the samples it declares.",
            discussion: """
                Runs the bundle like a pipeline would (same executor, clean environment, output \
                checks) against each sample in its step.yaml 'tests:' (or, without any, generated \
                defaults and empty inputs), and checks: the manifest and config schema are valid; \
                the response is valid; every declared output is written and nothing else; a request \
                for an unknown contract version is refused (non-zero exit, no work); the bundle \
                folder is not written to. Each sample runs twice: same output digests means \
                deterministic (reported, not required). Exit code 1 if a check fails.

                Example:
                  zenml-run bundle test examples/quickstart/steps/normalize
                """)

        @Argument(help: ArgumentHelp("The bundle folder.", valueName: "dir")) var directory: String
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                // Python environments are shared with runs when a workspace is at hand.
                let runtimes = Workspace.find(from: FileManager.default.currentDirectoryPath).map { PythonRuntimes(root: $0.stateDirectory + "/venvs") }
                let report = try await BundleConformance(bundlePath: absolutePath(directory), runtimes: runtimes).run()
                if output.json {
                    try printJSON("report", report)
                } else {
                    for check in report.checks {
                        print("\(check.passed ? "pass" : "FAIL")  \(check.name): \(check.detail)")
                    }
                    let determinism = report.deterministic.map { $0 ? ", deterministic" : ", NOT deterministic" } ?? ""
                    print(report.passed
                        ? "\(report.bundle) \(report.version) conforms to contract \(contractVersion)\(determinism)"
                        : "\(report.bundle) \(report.version) does NOT conform: \(report.checks.filter { !$0.passed }.count) check(s) failed")
                }
                if !report.passed { throw CommandFailure(code: 1) }
            }
        }
    }
}
