import ArgumentParser
import Foundation
import ZenMLContract
import ZenMLCore
import ZenMLEngine
import ZenMLExecutor
import ZenMLMetadata
import ZenMLPipeline

extension ZenMLRun {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a workspace (.zenml/) in the current folder.",
            discussion: """
                A workspace holds the artifact store (.zenml/artifacts), the ML Metadata store \
                (.zenml/metadata.db) and step logs (.zenml/logs). 'zenml-run run' creates one when \
                none is found, so this is only needed to choose the folder up front.

                Example:
                  zenml-run init
                """)

        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

        func run() async throws {
            try await reportingErrors {
                let workspace = workspaceOptions.workspace.map { Workspace(root: absolutePath($0)) }
                    ?? Workspace(root: FileManager.default.currentDirectoryPath)
                let existed = workspace.exists
                try workspace.initialize()
                print(existed ? "workspace at \(workspace.root) is ready (it already existed)" : "created workspace at \(workspace.root)/.zenml")
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run a pipeline, reusing cached steps.",
            discussion: """
                Validates the whole pipeline first (wiring, types, configs against each bundle's \
                schema, cycles) and reports every problem with file:line. Then runs the steps in \
                dependency order, independent steps in parallel. A step whose bundle, config, \
                inputs and declared environment are unchanged is not run again: its recorded \
                outputs are reused. Ctrl-C stops running steps; nothing partial is kept.

                Examples:
                  zenml-run run pipeline.yaml
                  zenml-run run pipeline.yaml --jobs 4
                  zenml-run run pipeline.yaml --no-cache --only train
                  zenml-run run pipeline.yaml --json > run.json
                  zenml-run run pipeline.yaml --backend slurm --partition gpu
                """)

        @Argument(help: ArgumentHelp("The pipeline file.", valueName: "pipeline.yaml"))
        var pipeline: String

        enum Backend: String, ExpressibleByArgument, CaseIterable { case local, slurm }

        @Option(name: .long, help: "Where steps run: local processes, or Slurm batch jobs (the host checks the cache and records; each job's worker fetches the inputs and publishes the outputs). Default: the workspace's 'config backend', else local.")
        var backend: Backend?

        @Option(name: .long, help: ArgumentHelp("The Slurm partition (default: the cluster's default).", valueName: "name"))
        var partition: String?

        @Option(name: [.short, .long], help: "Steps to run at the same time (default: the number of cores).")
        var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

        @Flag(name: .long, help: "Run every selected step even if a cached result exists.")
        var noCache = false

        @Option(name: .long, help: ArgumentHelp("Run only this step and what it needs upstream (repeatable).", valueName: "step"))
        var only: [String] = []

        @Flag(name: .long, help: "Resolve registry bundles (uses: NAME@RANGE) again and move the pins in zenml.lock (creates it for any pipeline).")
        var update = false

        @Flag(name: .long, help: "Refuse to run if zenml.lock would change: a changed local bundle, an unpinned reference (for CI).")
        var locked = false

        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        func validate() throws {
            guard jobs >= 1 else { throw ValidationError("Please give --jobs a value of at least 1.") }
            if update && locked { throw ValidationError("--update moves pins and --locked forbids it: give one of them.") }
        }

        func run() async throws {
            try await reportingErrors {
                let runner = try PipelineRunner(workspace: workspaceOptions.resolve(), readingAhead: pipeline)
                let graph = try await runner.load(pipeline, update: update, locked: locked, forRun: true) { printError("warning: " + $0) }
                var options = RunOptions(jobs: jobs, useCache: !noCache, only: only)
                let configured = try runner.workspace.configuration().backend
                if (backend ?? (configured?.kind == "slurm" ? .slurm : .local)) == .slurm {
                    try SlurmBackend.check()
                    options.backend = SlurmBackend(workerCommand: [try currentExecutable(), "worker"], partition: partition ?? configured?.partition)
                }
                let summary = try await runShowingProgress(runner, graph, options, json: output.json)
                switch summary.state {
                case .complete: return
                case .canceled: throw CommandFailure(code: 130)
                default: throw CommandFailure(code: 1)
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Say which steps the next run would reuse, and why the others would run.",
            discussion: """
                For each step: 'cached' when its bundle, config, inputs and declared environment \
                match a recorded execution whose outputs are still in the store; otherwise 'run' \
                and what changed since its latest execution (bundle file X, config key Y, input Z).

                --explain lists every change on its own line (each bundle file, config key, input and \
                variable) with the step's cache key, instead of one line per step.

                Examples:
                  zenml-run status pipeline.yaml
                  zenml-run status pipeline.yaml --explain
                """)

        @Argument(help: ArgumentHelp("The pipeline file.", valueName: "pipeline.yaml"))
        var pipeline: String

        @Flag(name: .long, help: "Every reason on its own line, with each step's cache key.")
        var explain = false

        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let runner = try PipelineRunner(workspace: workspaceOptions.resolve(), readingAhead: pipeline)
                let graph = try await runner.load(pipeline)
                let reports = await runner.status(graph, options: RunOptions())
                if output.json {
                    try printJSON("steps", reports)
                    return
                }
                let width = max(8, reports.map(\.step.count).max() ?? 8)
                for report in reports {
                    let name = report.step.padding(toLength: width, withPad: " ", startingAt: 0)
                    if explain {
                        print("\(report.step): \(report.decision == "cached" ? "cached, from run \(report.cachedFromRun ?? "?")" : "would run")")
                        print("    cache key \(report.cacheKey ?? "(not known until its inputs exist)")")
                        for reason in report.reasons { print("    - \(reason)") }
                    } else if report.decision == "cached" {
                        print("\(name)  cached     (from run \(report.cachedFromRun ?? "?"))")
                    } else {
                        print("\(name)  would run  (\(report.reasons.joined(separator: "; ")))")
                    }
                }
                let toRun = reports.filter { $0.decision == "run" }.count
                print(toRun == 0 ? "everything is cached: 'zenml-run run \(pipeline)' would reuse every step" : "\(toRun) of \(reports.count) steps would run")
            }
        }
    }
}

/// Turns SIGINT and SIGTERM into a cancellation of the run, so steps are stopped cleanly.
final class SignalForwarder: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(onSignal: @escaping @Sendable () -> Void) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                writeError("\nstopping: waiting for running steps to end (nothing partial is kept)\n")
                onSignal()
            }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        sources.forEach { $0.cancel() }
        for number in [SIGINT, SIGTERM] { signal(number, SIG_DFL) }
    }
}

/// Runs a graph with live progress (or quietly for `--json`), forwarding Ctrl-C as cancellation,
/// and prints the summary.
func runShowingProgress(_ runner: PipelineRunner, _ graph: PipelineGraph, _ options: RunOptions, json: Bool) async throws -> RunSummary {
    let display = ProgressDisplay(enabled: !json)
    let task = Task { try await runner.run(graph, options: options) { display.handle($0) } }
    let signals = SignalForwarder(onSignal: { task.cancel() })
    defer { signals.stop() }
    let summary = try await task.value
    if json {
        try printJSON("run", summary)
    } else {
        printSummary(summary)
    }
    return summary
}

    func printSummary(_ summary: RunSummary) {
        for step in summary.steps {
            guard let failure = step.failure else { continue }
            printError("\nstep '\(step.name)' failed: \(failure.message)")
            if !failure.errorTail.isEmpty {
                printError("  last lines of its stderr:")
                for line in failure.errorTail.split(separator: "\n", omittingEmptySubsequences: false).suffix(15) {
                    printError("  | \(line)")
                }
            }
            if let log = failure.logFile { printError("  full log: \(log)") }
        }
        let skipped = summary.steps.filter { $0.state == "skipped" }.count
        var parts = ["\(summary.ran) ran", "\(summary.cached) cached"]
        if summary.failed > 0 { parts.append("\(summary.failed) failed") }
        if skipped > 0 { parts.append("\(skipped) skipped") }
        let verdict: String
        switch summary.state {
        case .complete: verdict = "run \(summary.runID) complete"
        case .failed: verdict = "run \(summary.runID) failed"
        case .canceled: verdict = "run \(summary.runID) interrupted"
        case .running: verdict = "run \(summary.runID)"
        }
        print("\(verdict): \(parts.joined(separator: ", ")) in \(String(format: "%.2f", summary.duration)) s")
        if summary.state == .failed {
            print("fix the step and run the same command again: completed steps will be reused from the cache")
        }
    }

/// The absolute path of this `zenml-run`, for workers started on other nodes.
func currentExecutable() throws -> String {
    try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
}

extension ZenMLRun {
    struct Worker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "worker",
            abstract: "Run one prepared step on a cluster node (started by the Slurm backend, not by hand).",
            shouldDisplay: false)

        @Flag(help: "The job is a bundle's build command, not a step.") var build = false
        @Argument(help: "The job file the host wrote.") var job: String

        func run() async throws {
            if build {
                let job = try JSONDecoder().decode(WorkerBuild.self, from: FileTree.read(job))
                let result = WorkerBuildResult(try await ProcessLauncher.run(job.configuration))
                try FileTree.writeAtomically(JSONEncoder().encode(result), to: job.resultFile)
                return
            }
            let job = try JSONDecoder().decode(WorkerJob.self, from: FileTree.read(job))
            // With node staging the worker fetches the inputs and publishes the outputs itself.
            let result = job.nodeStaging != nil ? await NodeWorker.run(job) : WorkerResult(await StepRunner.run(try job.launch()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try FileTree.writeAtomically(encoder.encode(result), to: job.resultFile)
        }
    }
}
