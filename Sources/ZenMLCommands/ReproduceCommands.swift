import ArgumentParser
import Foundation
import ZenMLCore
import ZenMLEngine
import ZenMLMetadata

/// The pinned pipeline file of a run: the recorded spec as JSON (which YAML reads as is).
private func pinnedPipelineText(_ run: RunRecord, _ spec: JSONValue) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(spec)
    return """
        # Pipeline '\(run.pipeline)' as run \(run.id) ran it, exported by zenml-run.
        # Bundles and data files are pinned by digest ("sha256:..."): 'zenml-run run' this file on any
        # machine whose workspace shares the stores that run was recorded in.

        """ + String(decoding: data, as: UTF8.self) + "\n"
}

extension ZenMLRun.Pipelines {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write a self-contained pipeline file that reproduces a run: bundles and data pinned by digest.",
            discussion: """
                Give a run id, or a pipeline name for its newest complete run. The file names every bundle \
                and data file by the digest that entered the cache keys; the stores keep a copy of each, so \
                'zenml-run run FILE' works on another machine that shares the stores, with no working tree.

                Example:
                  zenml-run pipelines export penguins -o penguins.pinned.yaml
                """)
        @Argument(help: ArgumentHelp("A run id (or prefix), or a pipeline name.", valueName: "run-or-pipeline")) var source: String
        @Option(name: [.short, .long], help: ArgumentHelp("Where to write it (default: standard output).", valueName: "file")) var output: String?
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

        func run() async throws {
            try await reportingErrors {
                let runner = try PipelineRunner(workspace: workspaceOptions.resolve())
                var reference = source
                let inspector = try Inspector(workspace: workspaceOptions.resolve())
                if try inspector.metadata.run(id: source) == nil,
                   let latest = try inspector.metadata.runs(pipeline: source, limit: 50).first(where: { $0.state == .complete }) {
                    reference = latest.id
                }
                let (run, spec) = try runner.export(runID: reference)
                let text = try pinnedPipelineText(run, spec)
                guard let output else { return print(text, terminator: "") }
                try FileTree.writeAtomically(Data(text.utf8), to: absolutePath(output))
                printError("wrote \(output): run it with 'zenml-run run \(output)'")
            }
        }
    }
}

extension ZenMLRun.Runs {
    struct Reproduce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reproduce",
            abstract: "Run a past run again from the stores alone: its recorded spec, bundles, config and data.",
            discussion: """
                Writes the run's pinned pipeline file (see 'pipelines export') into DIR and runs it. With the \
                cache, steps whose results are in the stores are reused; --no-cache executes every step and \
                the outputs are compared with the original run's.

                Example:
                  zenml-run runs reproduce 20261123-0412 --into /tmp/repro --no-cache
                """)
        @Argument(help: "The run (id or unique prefix).") var run: String
        @Option(name: .long, help: ArgumentHelp("The folder for the pinned pipeline file (default: .zenml/reproduce/RUN).", valueName: "dir")) var into: String?
        @Flag(name: .long, help: "Execute every step instead of reusing cached results.") var noCache = false
        @Option(name: [.short, .long], help: "Steps to run at the same time.") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let workspace = workspaceOptions.resolve()
                let runner = try PipelineRunner(workspace: workspace)
                let (original, spec) = try runner.export(runID: run)
                let directory = into.map(absolutePath) ?? workspace.stateDirectory + "/reproduce/" + original.id
                try FileTree.makeDirectory(directory)
                let file = directory + "/pipeline.yaml"
                try FileTree.writeAtomically(Data(try pinnedPipelineText(original, spec).utf8), to: file)
                if !output.json { printError("reproducing run \(original.id) from \(file)") }
                let graph = try await runner.load(file, forRun: true)
                let summary = try await runShowingProgress(runner, graph, RunOptions(jobs: max(1, jobs), useCache: !noCache), json: output.json)
                guard summary.state == .complete else { throw CommandFailure(code: summary.state == .canceled ? 130 : 1) }
                let recorded = try Inspector(workspace: workspace).metadata.executions(runID: original.id)
                var differing: [String] = []
                for step in summary.steps {
                    guard let before = recorded.first(where: { $0.step == step.name })?.outputs.mapValues(\.digest.description) else { continue }
                    if before != step.outputs { differing.append(step.name) }
                }
                if !output.json {
                    print(differing.isEmpty
                        ? "same outputs as run \(original.id): every step's output digests match"
                        : "outputs differ from run \(original.id) in: \(differing.joined(separator: ", ")) (see 'zenml-run runs diff \(original.id) \(summary.runID)')")
                }
                if !differing.isEmpty { throw CommandFailure(code: 1) }
            }
        }
    }
}
