import ArgumentParser
import Foundation
import ZenMLCore
import ZenMLEngine
import ZenMLMetadata

extension ZenMLRun {
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "runs",
            abstract: "List runs, show what a run did, and compare runs.",
            subcommands: [List.self, Show.self, Diff.self, Compare.self, Verify.self, Reproduce.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "List runs, newest first.",
                discussion: "Example:\n  zenml-run runs list --pipeline quickstart --limit 5")

            @Option(name: .long, help: "Only runs of this pipeline.") var pipeline: String?
            @Option(name: .long, help: "At most this many runs.") var limit = 20
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            func run() async throws {
                try await reportingErrors {
                    let inspector = try Inspector(workspace: workspaceOptions.resolve())
                    let runs = try inspector.metadata.runs(pipeline: pipeline, limit: limit)
                    if output.json { return try printJSON("runs", runs) }
                    if runs.isEmpty { return print("no runs yet: start one with 'zenml-run run PIPELINE.yaml'") }
                    var rows = [["RUN", "PIPELINE", "STATE", "STARTED", "DURATION", "GIT"]]
                    for run in runs {
                        let git = run.gitCommit.map { String($0.prefix(10)) + (run.gitDirty == true ? "+dirty" : "") } ?? "-"
                        rows.append([run.id, run.pipeline, run.state.rawValue, formatDate(run.startedAt), formatDuration(run.endedAt.map { $0.timeIntervalSince(run.startedAt) }), git])
                    }
                    print(table(rows))
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "show",
                abstract: "Show a run's steps, their states, cache keys and artifacts.",
                discussion: "A unique prefix of the run id is enough.\n\nExample:\n  zenml-run runs show 20261123-0412")

            @Argument(help: "The run id (or a unique prefix).") var run: String
            @OptionGroup(title: "Views") var views: ViewOptions
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            struct Details: Encodable {
                var run: RunRecord
                var executions: [ExecutionRecord]
            }

            func run() async throws {
                try await reportingErrors {
                    if try await views.show(json: output.json, load: { try await Repository(workspace: workspaceOptions.resolve()).views(ofRun: run, kinds: $0) }) {
                        return
                    }
                    let inspector = try Inspector(workspace: workspaceOptions.resolve())
                    let record = try inspector.run(run)
                    let executions = try inspector.metadata.executions(runID: record.id)
                    if output.json { return try printJSON("run", Details(run: record, executions: executions)) }
                    print("run       \(record.id)")
                    print("pipeline  \(record.pipeline) (version \(record.specDigest.map { String($0.hex.prefix(12)) } ?? "-"))")
                    print("state     \(record.state.rawValue)")
                    print("started   \(formatDate(record.startedAt)), took \(formatDuration(record.endedAt.map { $0.timeIntervalSince(record.startedAt) }))")
                    if let commit = record.gitCommit { print("git       \(commit)\(record.gitDirty == true ? " (uncommitted changes)" : "")") }
                    print("")
                    for execution in executions {
                        let memory = execution.peakMemoryBytes.map { ", peak memory \(formatBytes($0))" } ?? ""
                        print("\(execution.step): \(execution.state.name), \(formatDuration(execution.duration))\(memory), bundle \(execution.bundle)@\(execution.bundleVersion)")
                        print("  cache key  \(execution.cacheKey?.description ?? "-")")
                        for (name, artifacts) in execution.inputs.sorted(by: { $0.key < $1.key }) {
                            for artifact in artifacts { print("  input  \(name): \(artifact.type) \(artifact.digest.short) (id \(artifact.id))") }
                        }
                        if let build = execution.build { print("  build  \(build.type) \(build.digest.short) (id \(build.id))") }
                        for (name, artifact) in execution.outputs.sorted(by: { $0.key < $1.key }) {
                            let properties = artifact.properties.sorted { $0.key < $1.key }.map { "\($0.key)=\(CanonicalJSON.encode($0.value))" }.joined(separator: " ")
                            print("  output \(name): \(artifact.type) \(artifact.digest.short) (id \(artifact.id))\(properties.isEmpty ? "" : " " + properties)")
                        }
                        if !execution.metrics.isEmpty {
                            print("  metrics " + execution.metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\(CanonicalJSON.format($0.value))" }.joined(separator: " "))
                        }
                        if execution.state == .failed || execution.state == .canceled, let message = execution.message { print("  error  \(message)") }
                        if let log = execution.logURI, execution.state != .cached { print("  log    \(log)") }
                    }
                }
            }
        }
    }

    struct Pipelines: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pipelines",
            abstract: "List pipelines and their versions, and copy them.",
            subcommands: [List.self, Show.self, Copy.self, Export.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List the pipelines this workspace has run.")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            func run() async throws {
                try await reportingErrors {
                    let pipelines = try Inspector(workspace: workspaceOptions.resolve()).metadata.pipelines()
                    if output.json { return try printJSON("pipelines", pipelines) }
                    if pipelines.isEmpty { return print("no pipelines yet: run one with 'zenml-run run PIPELINE.yaml'") }
                    var rows = [["PIPELINE", "VERSIONS", "RUNS", "LAST RUN", "STATE"]]
                    for pipeline in pipelines {
                        rows.append([pipeline.name, String(pipeline.versions.count), String(pipeline.runCount), pipeline.lastRun?.id ?? "-", pipeline.lastRun?.state.rawValue ?? "-"])
                    }
                    print(table(rows))
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "show",
                abstract: "Show a pipeline's versions (each a recorded spec) and its recent runs, or its data and model views.",
                discussion: "Examples:\n  zenml-run pipelines show quickstart\n  zenml-run pipelines show penguins --statistics --evaluation\n  zenml-run pipelines show penguins --html report.html")
            @Argument(help: "The pipeline name.") var name: String
            @OptionGroup(title: "Views (of the newest complete run)") var views: ViewOptions
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            struct Details: Encodable {
                var pipeline: PipelineRecord
                var runs: [RunRecord]
            }

            func run() async throws {
                try await reportingErrors {
                    if try await views.show(json: output.json, load: { try await Repository(workspace: workspaceOptions.resolve()).views(ofPipeline: name, kinds: $0) }) {
                        return
                    }
                    let inspector = try Inspector(workspace: workspaceOptions.resolve())
                    guard let pipeline = try inspector.metadata.pipelines().first(where: { $0.name == name }) else {
                        printError("error: no pipeline '\(name)'; list them with 'zenml-run pipelines list'")
                        throw CommandFailure(code: 2)
                    }
                    let runs = try inspector.metadata.runs(pipeline: name, limit: 10)
                    if output.json { return try printJSON("pipeline", Details(pipeline: pipeline, runs: runs)) }
                    print("pipeline \(pipeline.name): \(pipeline.versions.count) version(s), \(pipeline.runCount) run(s)")
                    for version in pipeline.versions {
                        let steps = version.spec["steps"]?.objectValue?.keys.sorted().joined(separator: ", ") ?? ""
                        print("  version \(version.specDigest.short)  \(formatDate(version.createdAt))  steps: \(steps)")
                    }
                    print("recent runs:")
                    for run in runs { print("  \(run.id)  \(run.state.rawValue)  \(formatDate(run.startedAt))") }
                }
            }
        }
    }

    struct Artifacts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "artifacts",
            abstract: "Look at artifacts: their records, their files, or a copy of them.",
            discussion: "An artifact is named by its id or a prefix of its digest, as 'zenml-run runs show' prints them.",
            subcommands: [Show.self, Ls.self, Export.self])

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "Show an artifact's record and the execution that produced it.")
            @Argument(help: "Artifact id or digest prefix.") var artifact: String
            @OptionGroup(title: "Views") var views: ViewOptions
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            struct Details: Encodable {
                var artifact: ArtifactRecord
                var producer: ExecutionRecord?
                var present: Bool
            }

            func run() async throws {
                try await reportingErrors {
                    if try await views.show(json: output.json, load: { try await Repository(workspace: workspaceOptions.resolve()).views(ofArtifact: artifact, kinds: $0) }) {
                        return
                    }
                    let inspector = try Inspector(workspace: workspaceOptions.resolve())
                    let record = try inspector.artifact(artifact)
                    let producer = try inspector.metadata.producer(ofArtifact: record.id)
                    let present = try await inspector.store.localPath(of: record.digest) != nil
                    if output.json { return try printJSON("artifact", Details(artifact: record, producer: producer, present: present)) }
                    print("artifact  \(record.id)  \(record.type)")
                    print("digest    \(record.digest)")
                    print("path      \(record.uri)\(present ? "" : "  (missing from the store)")")
                    print("size      \(record.size) bytes in \(record.fileCount) file(s)")
                    for (key, value) in record.properties.sorted(by: { $0.key < $1.key }) { print("property  \(key) = \(CanonicalJSON.encode(value))") }
                    if let producer { print("made by   step \(producer.step) of run \(producer.runID) (execution \(producer.id))") }
                }
            }
        }

        struct Ls: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List an artifact's files with their sizes and digests.")
            @Argument(help: "Artifact id or digest prefix.") var artifact: String
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            func run() async throws {
                try await reportingErrors {
                    let inspector = try Inspector(workspace: workspaceOptions.resolve())
                    let record = try inspector.artifact(artifact)
                    guard let path = try await inspector.store.localPath(of: record.digest) else {
                        printError("error: artifact \(record.digest) is recorded but missing from the store; re-run the step that produced it")
                        throw CommandFailure(code: 3)
                    }
                    let entries = try TreeDigest.compute(root: path).entries
                    if output.json { return try printJSON("files", entries) }
                    for entry in entries {
                        switch entry.kind {
                        case .file: print("\(String(entry.size).padding(toLength: 12, withPad: " ", startingAt: 0))  \(entry.digest?.short ?? "")  \(entry.path)")
                        case .directory: print("\("-".padding(toLength: 12, withPad: " ", startingAt: 0))  \("".padding(toLength: 12, withPad: " ", startingAt: 0))  \(entry.path)/")
                        case .symlink: print("\("-".padding(toLength: 12, withPad: " ", startingAt: 0))  \("".padding(toLength: 12, withPad: " ", startingAt: 0))  \(entry.path) -> \(entry.target ?? "")")
                        }
                    }
                }
            }
        }

        struct Export: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "export",
                abstract: "Copy an artifact's files to a new folder (writable, outside the store).",
                discussion: "Example:\n  zenml-run artifacts export 3f2a9c ./model-copy")
            @Argument(help: "Artifact id or digest prefix.") var artifact: String
            @Argument(help: "A folder that does not exist yet.") var destination: String
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let inspector = try Inspector(workspace: workspaceOptions.resolve())
                    let record = try inspector.artifact(artifact)
                    guard let path = try await inspector.store.localPath(of: record.digest) else {
                        printError("error: artifact \(record.digest) is recorded but missing from the store")
                        throw CommandFailure(code: 3)
                    }
                    let target = absolutePath(destination)
                    if try FileStatus.of(target) != nil {
                        printError("error: \(target) already exists; export into a new folder")
                        throw CommandFailure(code: 2)
                    }
                    try FileManager.default.copyItem(atPath: path, toPath: target)
                    try makeWritable(target)
                    print("exported \(record.digest.short) (\(record.fileCount) file(s)) to \(target)")
                }
            }

            private func makeWritable(_ path: String) throws {
                guard let status = try FileStatus.of(path) else { return }
                if status.kind != .symlink { chmod(path, status.mode | 0o200) }
                if status.kind == .directory {
                    for name in try FileTree.childNames(of: path) { try makeWritable(path + "/" + name) }
                }
            }
        }
    }

    struct Lineage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lineage",
            abstract: "Show the upstream graph of an artifact or of a run's results.",
            discussion: """
                Walks ML Metadata events back from an artifact: the step execution that made it, \
                the artifacts that step read, their producers, and so on.

                Examples:
                  zenml-run lineage 3f2a9c          # an artifact (id or digest prefix)
                  zenml-run lineage 20261123-0412   # everything a run produced
                  zenml-run lineage 3f2a9c --downstream
                """)
        @Argument(help: "An artifact (id or digest prefix) or a run id.") var reference: String
        @Flag(help: "Show what was made from the artifact instead (the steps that read it, and theirs).") var downstream = false
        @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
        @OptionGroup(title: "Output") var output: OutputOptions

        func run() async throws {
            try await reportingErrors {
                let inspector = try Inspector(workspace: workspaceOptions.resolve())
                if downstream {
                    let made = try inspector.downstream(ofArtifact: inspector.artifact(reference))
                    if output.json { return try printJSON("downstream", made) }
                    print("\(made.root.type) \(made.root.digest.short) [id \(made.root.id)] was read by:")
                    if made.executions.isEmpty { print("  nothing yet") }
                    for execution in made.executions {
                        let outputs = execution.outputs.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.digest.short)" }.joined(separator: ", ")
                        print("  \(execution.step) (run \(execution.runID), \(execution.state.name))" + (outputs.isEmpty ? "" : " -> \(outputs)"))
                    }
                    return
                }
                let graph: LineageGraph
                if let run = try inspector.metadata.run(id: reference) {
                    graph = try inspector.lineage(ofRun: run)
                } else {
                    graph = try inspector.lineage(ofArtifact: inspector.artifact(reference))
                }
                if output.json { return try printJSON("lineage", graph) }
                var printed = Set<String>()
                func show(_ digest: String, depth: Int) {
                    let indent = String(repeating: "  ", count: depth)
                    guard let artifact = graph.artifacts[digest] else { return }
                    let producer = graph.producers[digest]
                    let origin = producer.map { " <- \($0.step) (run \($0.runID), \($0.state.name))" } ?? " (no recorded producer)"
                    print("\(indent)\(artifact.type) \(artifact.digest.short) [id \(artifact.id)]\(origin)")
                    guard let producer, printed.insert(digest).inserted else { return }
                    for (_, inputs) in producer.inputs.sorted(by: { $0.key < $1.key }) {
                        for input in inputs { show(input.digest.description, depth: depth + 1) }
                    }
                    if let build = producer.build { show(build.digest.description, depth: depth + 1) }
                }
                for root in graph.roots { show(root, depth: 0) }
            }
        }
    }
}
