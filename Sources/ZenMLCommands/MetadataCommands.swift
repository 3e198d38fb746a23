import ArgumentParser
import Foundation
import ZenMLCore
import ZenMLEngine
import ZenMLMetadata

extension ZenMLRun {
    struct Metadata: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "metadata",
            abstract: "Look after the metadata store: counts, consistency, backup and moving between SQLite and MySQL.",
            discussion: """
                Examples:
                  zenml-run metadata info
                  zenml-run metadata check
                  zenml-run metadata export > backup.jsonl
                  zenml-run metadata export --workspace old | zenml-run metadata import --workspace new
                """,
            subcommands: [Info.self, Check.self, Export.self, Import.self])

        struct Info: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "info", abstract: "Show the store's backend, schema version and record counts.")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            func run() async throws {
                try await reportingErrors {
                    let info = try Inspector(workspace: workspaceOptions.resolve()).metadata.info()
                    if output.json { return try printJSON("metadata", info) }
                    print("backend     \(info.backend) (\(info.location))")
                    print("schema      ML Metadata version \(info.schemaVersion)")
                    print("pipelines   \(info.pipelines)")
                    print("runs        \(info.runs)")
                    print("executions  \(info.executions)")
                    print("artifacts   \(info.artifacts)")
                    print("events      \(info.events)")
                    print("types       \(info.types)")
                }
            }
        }

        struct Check: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "check",
                abstract: "Check the store: database integrity, records pointing at missing records, executions left running.",
                discussion: "Exit status 0 when nothing is wrong, 1 when a problem is listed.")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions
            @OptionGroup(title: "Output") var output: OutputOptions

            func run() async throws {
                try await reportingErrors {
                    let problems = try Inspector(workspace: workspaceOptions.resolve()).metadata.check()
                    if output.json {
                        try printJSON("problems", problems)
                    } else if problems.isEmpty {
                        print("ok: no problems found")
                    } else {
                        for problem in problems { print("problem: \(problem)") }
                    }
                    if !problems.isEmpty { throw CommandFailure(code: 1) }
                }
            }
        }

        struct Export: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "export",
                abstract: "Write every record as JSON lines (a header, then one line per row of each ML Metadata table).")
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let metadata = try Inspector(workspace: workspaceOptions.resolve()).metadata
                    var buffer = Data()
                    try metadata.dump { record in
                        buffer.append(CanonicalJSON.data(record))
                        buffer.append(0x0A)
                        if buffer.count >= 1 << 20 {
                            try writeToStandardOutput(buffer)
                            buffer.removeAll(keepingCapacity: true)
                        }
                    }
                    try writeToStandardOutput(buffer)
                }
            }
        }

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "import",
                abstract: "Load an export into this workspace's store, which must have no runs yet (one transaction).",
                discussion: "Reads the file, or standard input when none is given.")
            @Argument(help: ArgumentHelp("The export (default: standard input).", valueName: "file")) var file: String?
            @OptionGroup(title: "Workspace") var workspaceOptions: WorkspaceOptions

            func run() async throws {
                try await reportingErrors {
                    let workspace = workspaceOptions.resolve()
                    if !workspace.exists { try workspace.initialize() }
                    let data = try file.map { try FileTree.read(absolutePath($0)) } ?? FileHandle.standardInput.readDataToEndOfFile()
                    var records: [JSONValue] = []
                    for (index, line) in data.split(separator: 0x0A).enumerated() where !line.isEmpty {
                        do {
                            records.append(try JSONValue.parse(Data(line)))
                        } catch {
                            throw MetadataDumpError.badLine(index + 1, "\(error)")
                        }
                    }
                    let metadata = try Inspector(workspace: workspace).metadata
                    try metadata.load(records)
                    let info = try metadata.info()
                    print("imported \(records.count - 1) rows: \(info.runs) runs, \(info.executions) executions, \(info.artifacts) artifacts")
                }
            }
        }
    }
}

/// Writes to standard output; a reader that went away (`| head`) ends the command quietly.
func writeToStandardOutput(_ data: Data) throws {
    do {
        try FileHandle.standardOutput.write(contentsOf: data)
    } catch {
        throw CommandFailure(code: 0)
    }
}
