import ArgumentParser
import Foundation
import ZenMLBundles
import ZenMLContract
import ZenMLEngine
import ZenMLMetadata
import ZenMLPipeline

/// The `zenml-run` command.
///
/// Every command here names itself (`commandName:`): without it, ArgumentParser derives the name
/// with `String(describing:)` of the type, whose dynamic casts scan all of the binary's protocol
/// conformances, once per command. That was a third of the 40 ms `zenml-run --version` took.
public struct ZenMLRun: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "zenml-run",
        abstract: "Run reproducible, cached ML pipelines whose steps are written in any language.",
        discussion: """
            A pipeline is a YAML file of steps. Each step is a bundle (a folder with a step.yaml \
            manifest and an executable in any language) that reads one JSON request on stdin and \
            prints one JSON response on stdout. zenml-run runs independent steps in parallel, \
            keeps every output as an immutable, content-addressed artifact under .zenml/, records \
            runs in an ML Metadata store, and never runs a step twice with the same bundle, \
            config and inputs.

            Get started:
              zenml-run run examples/quickstart/pipeline.yaml
              zenml-run run examples/quickstart/pipeline.yaml    (all cached)
              zenml-run status examples/quickstart/pipeline.yaml
              zenml-run runs show <run id printed by run>

            Exit codes:
              0  success
              1  a step failed (message, stderr tail and log are printed)
              2  invalid pipeline, bundle or command line (file:line)
              3  a store could not be used (metadata or artifacts)
              130  interrupted: steps were stopped, nothing partial kept
            """,
        version: zenmlRunVersion,
        subcommands: [Init.self, Run.self, Status.self, Runs.self, Pipelines.self, Artifacts.self, Lineage.self, TFRecord.self, Config.self, Cache.self, Metadata.self, Bundle.self, Worker.self]
    )

    public init() {}

    /// Runs the command line. A reader that goes away (`zenml-run run p.yaml | head -1`) must not
    /// kill a run half-way, so SIGPIPE is ignored and writes to a closed stream are dropped.
    public static func runMain() async {
        signal(SIGPIPE, SIG_IGN)
        await main(nil)
    }
}

/// Options every command that touches a workspace takes.
struct WorkspaceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The folder holding .zenml/ (default: the nearest one at or above the current folder, else the current folder).", valueName: "dir"))
    var workspace: String?

    /// The workspace to use; `create` makes a new one in the current folder when none is found.
    func resolve() -> Workspace {
        let cwd = FileManager.default.currentDirectoryPath
        if let workspace { return Workspace(root: absolutePath(workspace)) }
        return Workspace.find(from: cwd) ?? Workspace(root: cwd)
    }
}

/// `--json` for commands that list or show things.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (for scripts) instead of text.")
    var json = false
}

func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// The version of the `--json` output format; it changes only when a field changes meaning or goes away.
let jsonSchemaVersion = 1

/// Prints `{"schema_version": 1, "<key>": value}` as pretty, stable JSON, for scripts.
func printJSON<T: Encodable>(_ key: String, _ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let data = try encoder.encode(JSONEnvelope(key: key, value: value))
    writeOutput(data + Data("\n".utf8))
}

private struct JSONEnvelope<T: Encodable>: Encodable {
    var key: String
    var value: T

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(jsonSchemaVersion, forKey: Key(stringValue: "schemaVersion"))
        try container.encode(value, forKey: Key(stringValue: key))
    }
}

/// An error already reported to the user, mapped to an exit code.
struct CommandFailure: Error {
    var code: Int32
}

/// Writes a line to standard error.
func printError(_ text: String) {
    writeError(text + "\n")
}

/// Writes to standard error; a closed stream (a pipe whose reader left) is not an error worth dying for.
func writeError(_ text: String) {
    try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
}

/// Writes to standard output, ignoring a closed stream.
func writeOutput(_ data: Data) {
    try? FileHandle.standardOutput.write(contentsOf: data)
}

/// An error in what the user asked for (exit code 2), as opposed to a failure of the machine,
/// the stores or a step (exit code 3).
protocol UserInputError: Error {}

extension InspectorError: UserInputError {}
extension PipelineSourceError: UserInputError {}
extension RepositoryError: UserInputError {}
extension PinnedSourceError: UserInputError {}
extension SlurmError: UserInputError {}
extension MetadataDumpError: UserInputError {}

/// Runs a command body, turning known errors into clear messages and documented exit codes.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as CommandFailure {
        throw ExitCode(failure.code)
    } catch let error as PipelineError {
        printError(error.description)
        throw ExitCode(2)
    } catch let error as ManifestError {
        printError(error.description)
        throw ExitCode(2)
    } catch let error as BundleError {
        printError("error: \(error)")
        throw ExitCode(2)
    } catch let error as MetadataStoreError {
        printError("error: \(error)")
        throw ExitCode(3)
    } catch let error as WorkspaceConfigurationError {
        printError("error: \(error)")
        throw ExitCode(3)
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("error: \(error)")
        throw ExitCode(error is any UserInputError ? 2 : 3)
    }
}
