import Foundation
import ZenMLContract
import ZenMLCore
import ZenMLExecutor

/// Virtual environments for bundles that declare `python: {requirements: FILE}`: one per
/// requirements digest, interpreter and platform, made once with `python3 -m venv` and pip, kept
/// in `.zenml/venvs/<key>` and put first on the step's `PATH`.
///
/// The requirements file is inside the bundle, so it is covered by the bundle digest; what it
/// resolved to (interpreter and package versions) is described in `zenml-environment.json` in
/// the environment and recorded with each execution that used it.
public actor PythonRuntimes {
    /// A ready environment.
    public struct Environment: Sendable {
        /// The environment's folder; its `bin/` goes first on `PATH`.
        public var path: String
        /// `{"python": "3.11.7", "implementation", "executable", "packages": {name: version}, "requirements": "sha256:…"}`.
        public var description: JSONValue
    }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    public let root: String
    private var inFlight: [Digest: Task<Environment, Error>] = [:]
    private var interpreter: (path: String, version: String)?

    public init(root: String) { self.root = root }

    /// The step's host environment with the bundle's Python environment first on `PATH`.
    public static func environment(_ host: [String: String], with runtime: Environment) -> [String: String] {
        var environment = host
        environment["PATH"] = runtime.path + "/bin:" + (host["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        return environment
    }

    /// The environment for a bundle, made first if needed.
    public func environment(bundlePath: String, manifest: BundleManifest, hostEnvironment: [String: String], logFile: String) async throws -> Environment {
        guard let requirements = manifest.pythonRequirements else { throw Failure(message: "the bundle declares no python requirements") }
        let file = bundlePath + "/" + requirements
        guard (try? FileStatus.of(file, followingLinks: true))?.kind == .file else {
            throw Failure(message: "python requirements file \(requirements) is missing from the bundle \(bundlePath); add it or fix 'python: {requirements:}' in step.yaml")
        }
        let python = try await hostInterpreter(hostEnvironment)
        let requirementsDigest = try Digest.ofFile(atPath: file)
        let platform = HostEnvironment.current
        let key = Digest.of(canonical: [
            "requirements": .string(requirementsDigest.description), "python": .string(python.path), "version": .string(python.version),
            "os": .string(platform.os), "arch": .string(platform.architecture),
        ])
        if let running = inFlight[key] { return try await running.value }
        let task = Task {
            try await Self.make(
                at: root + "/" + key.hex, requirements: file, requirementsDigest: requirementsDigest, python: python.path,
                hostEnvironment: hostEnvironment, logFile: logFile)
        }
        inFlight[key] = task
        defer { inFlight[key] = nil }
        return try await task.value
    }

    /// `python3` on the host's PATH: its real path and version (asked once).
    private func hostInterpreter(_ host: [String: String]) async throws -> (path: String, version: String) {
        if let interpreter { return interpreter }
        let scratch = NSTemporaryDirectory()
        let output = try await Self.run(
            "/usr/bin/env", ["python3", "-c", "import os, sys; print(os.path.realpath(sys.executable)); print(sys.version.split()[0])"],
            environment: ["PATH": host["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"], scratch: scratch, logFile: nil)
        let lines = output.split(separator: "\n").map(String.init)
        guard lines.count >= 2 else { throw Failure(message: "cannot ask python3 for its version; is python3 on PATH?") }
        interpreter = (lines[0], lines[1])
        return (lines[0], lines[1])
    }

    private static let descriptionFile = "zenml-environment.json"

    private static func make(
        at folder: String, requirements: String, requirementsDigest: Digest, python: String, hostEnvironment: [String: String], logFile: String
    ) async throws -> Environment {
        if let ready = try? load(folder) { return ready }
        try FileTree.makeDirectory((folder as NSString).deletingLastPathComponent)
        // Another process may be making the same environment: wait for its lock.
        let lockDescriptor = open(folder + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockDescriptor >= 0 else { throw FileSystemError.posix(path: folder + ".lock", operation: "open", errno: errno) }
        defer { close(lockDescriptor) }
        while flock(lockDescriptor, LOCK_EX | LOCK_NB) != 0 {
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        defer { flock(lockDescriptor, LOCK_UN) }
        if let ready = try? load(folder) { return ready }
        try FileTree.remove(folder)
        // pip reads its settings (index, proxy, certificates) from the host's environment.
        var environment = ["PATH": hostEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin", "HOME": hostEnvironment["HOME"] ?? NSTemporaryDirectory(), "LANG": "C.UTF-8"]
        for (name, value) in hostEnvironment where name.hasPrefix("PIP_") || name.lowercased().hasSuffix("_proxy") || name == "SSL_CERT_FILE" || name == "REQUESTS_CA_BUNDLE" {
            environment[name] = value
        }
        let scratch = folder + ".scratch"
        try FileTree.makeDirectory(scratch)
        defer { try? FileTree.remove(scratch) }
        do {
            _ = try await run(python, ["-m", "venv", folder], environment: environment, scratch: scratch, logFile: logFile)
            _ = try await run(
                folder + "/bin/python", ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-r", requirements],
                environment: environment, scratch: scratch, logFile: logFile)
            let described = try await run(
                folder + "/bin/python",
                ["-c", "import json, sys, importlib.metadata as m; print(json.dumps({'python': sys.version.split()[0], 'implementation': sys.implementation.name, 'executable': sys.executable, 'packages': {d.metadata['Name']: d.version for d in m.distributions()}}))"],
                environment: environment, scratch: scratch, logFile: logFile)
            var description = try JSONValue.parse(Data(described.utf8))
            if case .object(var object) = description {
                object["requirements"] = .string(requirementsDigest.description)
                description = .object(object)
            }
            // Written last: its presence is what makes the environment ready.
            try FileTree.writeAtomically(CanonicalJSON.data(description), to: folder + "/" + descriptionFile, sync: true)
            return Environment(path: folder, description: description)
        } catch {
            try? FileTree.remove(folder)
            throw error
        }
    }

    private static func load(_ folder: String) throws -> Environment {
        let description = try JSONValue.parse(FileTree.read(folder + "/" + descriptionFile))
        return Environment(path: folder, description: description)
    }

    /// Runs a command to completion; its stdout, or a failure with the stderr tail.
    private static func run(_ executable: String, _ arguments: [String], environment: [String: String], scratch: String, logFile: String?) async throws -> String {
        let log = logFile ?? scratch + "/log-\(UInt32.random(in: 0...UInt32.max))"
        defer { if logFile == nil { unlink(log) } }
        var configuration = ProcessConfiguration(
            executable: executable, arguments: arguments, environment: environment, workingDirectory: scratch,
            standardInput: .bytes(Data()), logFile: log, timeout: 3600)
        configuration.outputLimit = 16 << 20
        let result = try await ProcessLauncher.run(configuration)
        guard result.exitCode == 0 else {
            let command = ([executable] + arguments).joined(separator: " ")
            throw Failure(message: "making the bundle's Python environment failed (\(command)): \(result.errorTail.split(separator: "\n").suffix(6).joined(separator: " | "))\(logFile.flatMap { result.wroteLog ? "; full log: \($0)" : nil } ?? "")")
        }
        return String(decoding: result.standardOutput, as: UTF8.self)
    }
}
