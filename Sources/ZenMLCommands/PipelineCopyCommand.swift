import ArgumentParser
import Foundation
import ZenMLContract
import ZenMLCore
import ZenMLEngine
import ZenMLPipeline

extension ZenMLRun.Pipelines {
    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy",
            abstract: "Copy a registered pipeline under a new name, changing some steps.",
            usage: """
                zenml-run pipelines copy penguins penguins-nb --set train.uses=steps/train-naive-bayes
                zenml-run pipelines copy penguins penguins-wide --set split.config.eval_ratio=0.3 -o wide.yaml
                """,
            discussion: """
                Registered pipelines are immutable. A copy is a small pipeline file that names its base \
                (pinned to the base's current version) and lists only what changes; every step upstream \
                of a change keeps its cache key, so running the copy re-uses those steps' results.

                --set takes STEP.uses=PATH (a bundle folder, relative to the current folder), \
                STEP.config.KEY=VALUE (VALUE read as YAML: 0.5, true, text) or \
                STEP.inputs.NAME=OTHER_STEP.OUTPUT.
                """)

        @Argument(help: ArgumentHelp("The pipeline to copy: NAME, or NAME@VERSION for an older version.", valueName: "source"))
        var source: String
        @Argument(help: ArgumentHelp("The copy's name.", valueName: "new-name"))
        var name: String
        @Option(name: .long, help: ArgumentHelp("A change, STEP.uses=PATH | STEP.config.KEY=VALUE | STEP.inputs.NAME=STEP.OUTPUT (repeatable).", valueName: "change"))
        var set: [String] = []
        @Option(name: [.short, .long], help: ArgumentHelp("Where to write the copy (default: NEW-NAME.yaml in the current folder).", valueName: "file"))
        var output: String?
        @Flag(name: .long, help: "Replace the output file if it exists.")
        var force = false
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

        func validate() throws {
            guard BundleManifest.isValidName(name) else {
                throw ValidationError("The new name '\(name)' must start with a letter and use only letters, digits, '_' and '-'.")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let runner = try PipelineRunner(workspace: workspaceOptions.resolve())
                guard let (_, version) = try runner.registered.version(source) else {
                    printError("error: no pipeline '\(source)' in this workspace; list them with 'zenml-run pipelines list'")
                    throw CommandFailure(code: 2)
                }
                let file = absolutePath(output ?? name + ".yaml")
                if !force, try FileStatus.of(file) != nil {
                    printError("error: \(file) exists; pass --force to replace it, or -o to write elsewhere")
                    throw CommandFailure(code: 2)
                }
                let baseSteps = version.spec["steps"]?.objectValue ?? [:]
                let directory = (file as NSString).deletingLastPathComponent
                var changes: [String: [String: JSONValue]] = [:]
                for change in set {
                    let (step, key, value) = try parse(change, steps: Set(baseSteps.keys), copyDirectory: directory)
                    changes[step, default: [:]][key] = value
                }
                let baseName = source.split(separator: "@").first.map(String.init) ?? source
                var text = """
                    # A copy of pipeline '\(baseName)' (version \(version.specDigest.short)), made by 'zenml-run pipelines copy'.
                    # Steps not listed here are the base's, unchanged: they share its cached results.
                    name: \(name)
                    base: \(baseName)@\(version.specDigest.short)

                    """
                text += changes.isEmpty ? "steps: {}\n" : "steps:\n" + YAMLWriter.steps(changes)
                try FileTree.makeDirectory(directory)
                try FileTree.writeAtomically(Data(text.utf8), to: file)
                do {
                    _ = try await runner.load(file)
                } catch {
                    try? FileTree.remove(file)
                    throw error
                }
                let shown = FileTree.relative(file, from: FileTree.currentDirectory)
                print("wrote \(shown): '\(name)' = '\(baseName)' with \(set.isEmpty ? "no changes" : set.joined(separator: ", "))")
                print("next: 'zenml-run status \(shown)' shows which steps will re-run; 'zenml-run run \(shown)' runs it")
            }
        }

        /// Splits `STEP.KIND.KEY=VALUE` (or `STEP.uses=PATH`) into the step, the patch's key and its value.
        private func parse(_ change: String, steps: Set<String>, copyDirectory: String) throws -> (String, String, JSONValue) {
            guard let equals = change.firstIndex(of: "=") else {
                throw CopyError("--set \(change): write it as STEP.uses=PATH, STEP.config.KEY=VALUE or STEP.inputs.NAME=STEP.OUTPUT")
            }
            let path = change[..<equals].split(separator: ".", maxSplits: 2).map(String.init)
            let text = String(change[change.index(after: equals)...])
            guard let step = path.first, steps.contains(step) else {
                throw CopyError("--set \(change): the base has no step '\(path.first ?? "")' (it has: \(steps.sorted().joined(separator: ", ")))")
            }
            switch (path.count, path.count > 1 ? path[1] : "") {
            case (2, "uses"):
                let reference = text.contains("@") ? text : PipelineComposition.relativeUses(absolutePath(text), from: copyDirectory)
                return (step, "uses", .string(reference))
            case (3, "config"):
                let value = (try? YAMLDocument(text: text, file: "--set").root) ?? .string(text)
                return (step, "config", .object([path[2]: value]))
            case (3, "inputs"):
                guard OutputReference(text) != nil else {
                    throw CopyError("--set \(change): an input is wired to STEP.OUTPUT, e.g. \(step).inputs.\(path[2])=split.examples")
                }
                return (step, "inputs", .object([path[2]: .string(text)]))
            default:
                throw CopyError("--set \(change): write it as STEP.uses=PATH, STEP.config.KEY=VALUE or STEP.inputs.NAME=STEP.OUTPUT")
            }
        }
    }
}

/// A `--set` the command cannot apply.
private struct CopyError: UserInputError, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes step patches as YAML; values are written as JSON, which YAML reads as the same values.
private enum YAMLWriter {
    static func steps(_ changes: [String: [String: JSONValue]]) -> String {
        var text = ""
        for (step, patch) in changes.sorted(by: { $0.key < $1.key }) {
            text += "  \(step):\n"
            for (key, value) in patch.sorted(by: { $0.key < $1.key }) {
                if let entries = value.objectValue {
                    text += "    \(key):\n"
                    for (entry, entryValue) in entries.sorted(by: { $0.key < $1.key }) {
                        text += "      \(CanonicalJSON.encode(.string(entry))): \(CanonicalJSON.encode(entryValue))\n"
                    }
                } else {
                    text += "    \(key): \(CanonicalJSON.encode(value))\n"
                }
            }
        }
        return text
    }
}
