import Foundation
import XCTest

/// A temporary folder with a workspace, step bundles and pipeline files, and a way to drive the
/// real `zenml-run` binary in it.
final class Sandbox {
    let root: String

    /// The binary under test: `ZENML_RUN_BINARY`, else the debug build next to the sources.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ZENML_RUN_BINARY"] { return path }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repository.appendingPathComponent(".build/debug/zenml-run").path
    }

    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("zenml-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        root = base.path
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Sandbox.binary), "build zenml-run first: \(Sandbox.binary)")
    }

    deinit {
        // Published artifacts are read-only: make them writable so the folder can go.
        _ = try? Sandbox.shell("chmod -R u+w '\(root)' && rm -rf '\(root)'")
    }

    /// Writes a file (creating folders), optionally executable.
    func write(_ relativePath: String, _ content: String, executable: Bool = false) throws {
        let path = root + "/" + relativePath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try content.write(toFile: path, atomically: false, encoding: .utf8)
        if executable { chmod(path, 0o755) }
    }

    func read(_ relativePath: String) throws -> String {
        try String(contentsOfFile: root + "/" + relativePath, encoding: .utf8)
    }

    /// A bundle whose entrypoint is a POSIX sh script.
    /// Copies `examples/`, `steps/` and what their links reach (the Python and C SDKs in
    /// `protocol/`, the Swift SDK's targets in `Sources/`) into the sandbox, so
    /// `examples/penguins/pipeline.yaml` runs there as in the repository.
    func copyExamplesAndSteps(into folder: String = ".") throws {
        let target = root + "/" + folder
        let sdk = ["CZenMLTFRecord", "ZenMLTFRecord", "ZenMLStep"].map { "'\(Sandbox.repository)/Sources/\($0)'" }.joined(separator: " ")
        try Sandbox.shell("mkdir -p '\(target)/Sources' && cp -R '\(Sandbox.repository)/examples' '\(Sandbox.repository)/steps' '\(Sandbox.repository)/protocol' '\(target)/'"
            + " && rm -rf '\(target)/steps/tests' && cp -R \(sdk) '\(target)/Sources/'")
    }

    func shBundle(_ name: String, inputs: String = "{}", outputs: String = "{}", config: String? = nil, extra: String = "", script: String) throws {
        var manifest = """
            name: \(name)
            version: 1.0.0
            entrypoint: run.sh
            inputs: \(inputs)
            outputs: \(outputs)

            """
        if let config { manifest += "config: \(config)\n" }
        manifest += extra
        try write("bundles/\(name)/step.yaml", manifest)
        try write("bundles/\(name)/run.sh", "#!/bin/sh\nset -e\n" + Sandbox.shLibrary + script, executable: true)
    }

    /// Shell helpers for test steps: the request is one line of compact JSON on stdin.
    static let shLibrary = #"""
        REQ=$(cat)
        # jget KEY: the first string value of "KEY" in the request.
        jget() { printf '%s' "$REQ" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
        # out NAME: the directory of output NAME.
        out() { printf '%s' "$REQ" | sed -n "s/.*\"outputs\":{.*\"$1\":{\"path\":\"\([^\"]*\)\".*/\1/p"; }
        # in NAME: the directory of the first artifact of input NAME.
        inp() { printf '%s' "$REQ" | sed -n "s/.*\"inputs\":{.*\"$1\":\[{[^]]*\"path\":\"\([^\"]*\)\".*/\1/p"; }
        # num KEY: a numeric config value.
        num() { printf '%s' "$REQ" | sed -n "s/.*\"$1\":\([-0-9.e]*\).*/\1/p"; }

        """#

    struct Result {
        var exitCode: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
    }

    /// Runs `zenml-run ARGS` in the sandbox and waits for it.
    @discardableResult
    func run(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120) throws -> Result {
        let process = try start(arguments, environment: environment)
        return try process.wait(timeout: timeout)
    }

    /// Starts `zenml-run ARGS` without waiting.
    func start(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Sandbox.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        var env = ProcessInfo.processInfo.environment
        env["TERM"] = "dumb"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = root + "/.stdout-\(UUID().uuidString.prefix(6))"
        let err = root + "/.stderr-\(UUID().uuidString.prefix(6))"
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return RunningProcess(process: process, stdoutPath: out, stderrPath: err)
    }

    struct RunningProcess {
        let process: Process
        let stdoutPath: String
        let stderrPath: String

        func wait(timeout: TimeInterval) throws -> Result {
            // The process is reaped here, not left to Foundation alone: its exit monitoring was
            // seen to miss a child's exit under load and wait forever on a zombie.
            let pid = process.processIdentifier
            let deadline = Date().addingTimeInterval(timeout)
            var status: Int32 = 0
            var reaped = false
            var reapedByFoundation = false
            while !reaped && !reapedByFoundation {
                let result = waitpid(pid, &status, WNOHANG)
                if result == pid { reaped = true; break }
                if result < 0 && errno == ECHILD { reapedByFoundation = true; break }
                if Date() >= deadline {
                    kill(pid, SIGKILL)
                    XCTFail("zenml-run did not finish within \(timeout) s")
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    reaped = true
                    break
                }
                usleep(10_000)
            }
            var exitCode: Int32
            if reaped {
                exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            } else {
                // Foundation reaped it: its bookkeeping follows at once.
                while process.isRunning { usleep(1_000) }
                exitCode = process.terminationStatus
            }
            let stdout = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: stdoutPath)
            try? FileManager.default.removeItem(atPath: stderrPath)
            return Result(exitCode: exitCode, stdout: stdout, stderr: stderr)
        }
    }

    /// `zenml-run run PIPELINE --json` and the decoded summary.
    func runPipeline(_ pipeline: String = "pipeline.yaml", _ extra: [String] = [], environment: [String: String] = [:]) throws -> (Result, [String: Any]) {
        let result = try run(["run", pipeline, "--json"] + extra, environment: environment)
        let object = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any]
        return (result, object?["run"] as? [String: Any] ?? [:])
    }

    /// Step name -> state (`done`, `cached`, `failed`, `skipped`, `canceled`) from a run summary.
    static func states(_ summary: [String: Any]) -> [String: String] {
        var states: [String: String] = [:]
        for step in summary["steps"] as? [[String: Any]] ?? [] {
            if let name = step["name"] as? String, let state = step["state"] as? String { states[name] = state }
        }
        return states
    }

    struct ServiceUnavailable: Error, CustomStringConvertible { var description: String }

    /// Runs `scripts/services/SCRIPT COMMAND` (`start`, or `fresh` to empty the server first) and
    /// returns what it prints: the port, or for Slurm its configuration file. A server that does
    /// not come up is a broken test setup, not a reason to pass quietly: the error holds its log.
    static func service(_ script: String, _ command: String = "start", printsPort: Bool = true) throws -> String {
        let log = "/tmp/zenml-e2e-\(script).log"
        let output = try shell("'\(repository)/scripts/services/\(script)' \(command) 2>\(log)").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !output.isEmpty, !printsPort || Int(output) != nil else {
            throw ServiceUnavailable(description: "could not start \(script): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return output
    }

    @discardableResult
    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        // Reap the shell ourselves: Foundation's waitUntilExit was seen to miss a child's exit and
        // wait forever on a zombie (once in many runs, under load). If Foundation reaped it first,
        // waitpid fails with ECHILD at once.
        var status: Int32 = 0
        while waitpid(process.processIdentifier, &status, 0) < 0 && errno == EINTR {}
        return String(decoding: data, as: UTF8.self)
    }

    /// Every file path under a folder (relative), for "nothing was left behind" checks.
    func files(under relativePath: String) -> [String] {
        let base = root + "/" + relativePath
        guard let enumerator = FileManager.default.enumerator(atPath: base) else { return [] }
        return enumerator.compactMap { $0 as? String }.sorted()
    }
}
