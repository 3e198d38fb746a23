import ArgumentParser
import Foundation
import ZenMLEngine
import ZenMLMetadata

extension ZenMLRun.Runs {
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Say what differs between two runs: code, bundles, config, data, environment, metrics.",
            discussion: """
                Works from the records alone, so the runs may be old, of different pipelines (a copy and its \
                base), or made on other machines that share the stores. Exit status 0 either way.

                Example:
                  zenml-run runs diff 20261123-0412 20261123-0530
                """)
        @OptionGroup var runs: RunPair
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let comparison = try runs.comparison()
                if output.json { return try printJSON("comparison", comparison) }
                let lines = comparison.differenceLines
                print("A = run \(comparison.runA.id) of \(comparison.runA.pipeline), B = run \(comparison.runB.id) of \(comparison.runB.pipeline)")
                if lines.isEmpty { return print("no differences: the runs did the same work on the same data") }
                for line in lines { print("  " + line) }
            }
        }
    }

    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compare",
            abstract: "Show two runs side by side: each step's state, bundle and metrics, and which steps they shared.",
            discussion: "Example:\n  zenml-run runs compare 20261123-0412 20261123-0530")
        @OptionGroup var runs: RunPair
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let comparison = try runs.comparison()
                if output.json { return try printJSON("comparison", comparison) }
                let a = comparison.runA, b = comparison.runB
                func git(_ run: RunRecord) -> String { run.gitCommit.map { String($0.prefix(12)) + (run.gitDirty == true ? "+dirty" : "") } ?? "-" }
                var rows = [["", "A", "B", ""]]
                rows.append(["run", a.id, b.id, ""])
                rows.append(["pipeline", a.pipeline, b.pipeline, ""])
                rows.append(["state", a.state.rawValue, b.state.rawValue, ""])
                rows.append(["git", git(a), git(b), ""])
                print(table(rows) + "\n")
                rows = [["STEP", "A", "B", "SHARED"]]
                for step in comparison.steps {
                    rows.append([step.name, step.state.a ?? "-", step.state.b ?? "-", step.shared ? "yes" : "no"])
                    rows.append(["  bundle", step.bundle.a ?? "-", step.bundle.b ?? "-", ""])
                    for (key, value) in step.data.sorted(by: { $0.key < $1.key }) {
                        rows.append(["  data " + key, short(value.a), short(value.b), ""])
                    }
                    for (name, value) in step.metrics.sorted(by: { $0.key < $1.key }) {
                        rows.append(["  " + name, value.a.map { number($0) } ?? "-", value.b.map { number($0) } ?? "-", ""])
                    }
                }
                print(table(rows))
                let shared = comparison.steps.filter(\.shared).map(\.name)
                print("\nshared steps: \(shared.isEmpty ? "none" : shared.joined(separator: ", "))")
                let lines = comparison.differenceLines
                if !lines.isEmpty {
                    print("differences:")
                    for line in lines { print("  " + line) }
                }
            }
        }

        private func short(_ digest: String?) -> String {
            guard let digest else { return "-" }
            return digest.hasPrefix("sha256:") ? String(digest.dropFirst(7).prefix(12)) : digest
        }
    }
}

/// The two runs `runs diff` and `runs compare` take, and the workspace they are in.
struct RunPair: ParsableArguments {
    @Argument(help: "The first run, A (id or unique prefix).") var runA: String
    @Argument(help: "The second run, B.") var runB: String
    @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

    func comparison() throws -> RunComparison {
        let inspector = try Inspector(workspace: workspaceOptions.resolve())
        return try RunComparison.compare(inspector.run(runA), inspector.run(runB), metadata: inspector.metadata)
    }
}
