import ArgumentParser
import Foundation
import ZenMLEngine

extension ZenMLRun.Runs {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Execute a past run's steps again and check that they give the recorded outputs.",
            discussion: """
                Each step runs on the inputs the run gave it, in a fresh scratch space, ignoring the cache; \
                nothing is published or recorded. A step is reproducible when every output has its recorded \
                digest, or the same TFRecord records in another compression or sharding. For a step that \
                differs, the files and the first differing record are named.

                Exit status: 0 if every step is reproducible, 1 if one differs or fails.

                Example:
                  zenml-run runs verify 20261123-0412
                """)
        @Argument(help: "The run (id or unique prefix).") var run: String
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let runner = try PipelineRunner(workspace: workspaceOptions.resolve())
                let json = output.json
                let report = try await runner.verify(runID: run) { step, verdict in
                    guard !json, verdict == nil else { return }
                    printError("verifying \(step)...")
                }
                if json {
                    try printJSON("verification", report)
                } else {
                    print("run \(report.runID) of \(report.pipeline):")
                    var rows: [[String]] = []
                    for step in report.steps {
                        rows.append(["  " + step.name, step.verdict.rawValue, step.message ?? ""])
                        for output in step.outputs where output.recorded != output.actual {
                            if let record = output.firstDifferingRecord { rows.append(["", "", "  \(output.name): first difference at \(record)"]) }
                        }
                    }
                    print(table(rows))
                    print(report.isReproducible ? "reproducible: every step gave its recorded outputs" : "NOT reproducible")
                }
                if !report.isReproducible { throw CommandFailure(code: 1) }
            }
        }
    }
}
