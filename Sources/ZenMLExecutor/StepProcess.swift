import Foundation
import ZenMLContract
import ZenMLCore

/// One step, ready to run under the contract: the request is final and the output directories exist.
public struct StepLaunch: Sendable {
    public var bundlePath: String
    public var manifest: BundleManifest
    public var request: StepRequest
    /// The directory that holds `outputs/` (one empty folder per declared output)
    /// and `scratch/`; only `outputs/` survives a successful run, as artifacts.
    public var workDirectory: String
    public var logFile: String
    public var timeout: Double?
    /// The host's environment, from which `PATH`, `HOME` and the bundle's declared variables are taken.
    public var hostEnvironment: [String: String]
    /// The bundle's build output (read-only), for bundles with a `build:` command.
    public var buildPath: String?
    /// What to ask a cluster scheduler for: the bundle's `resources:`, unless the pipeline overrides them.
    public var resources: BundleManifest.Resources?
    /// Set when the backend's worker stages the inputs and publishes the outputs itself, on the
    /// node: the artifact store to open there and the job's directory. The request's input paths
    /// are then store URIs, which the worker replaces with node-local copies.
    public var nodeStaging: NodeStaging?

    public init(bundlePath: String, manifest: BundleManifest, request: StepRequest, workDirectory: String, logFile: String, timeout: Double?, hostEnvironment: [String: String], buildPath: String? = nil) {
        self.buildPath = buildPath
        self.bundlePath = bundlePath
        self.manifest = manifest
        self.request = request
        self.workDirectory = workDirectory
        self.logFile = logFile
        self.timeout = timeout
        self.hostEnvironment = hostEnvironment
        self.resources = manifest.resources
    }

    /// The work directory layout, shared by the engine and the executor.
    public static func outputsDirectory(in workDirectory: String) -> String { workDirectory + "/outputs" }
    public static func scratchDirectory(in workDirectory: String) -> String { workDirectory + "/scratch" }

    /// The request as the step reads it on stdin (keys sorted, so the same request is the same
    /// bytes wherever it is prepared: host, node or `bundle test`).
    public static func encoded(_ request: StepRequest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(request)
    }

    /// The fixed `SOURCE_DATE_EPOCH` steps receive: 1980-01-01T00:00:00Z, the earliest date ZIP can store.
    public static let sourceDateEpoch = "315532800"

    /// The clean environment the step starts with.
    public var environment: [String: String] {
        Self.cleanEnvironment(
            bundlePath: bundlePath, manifest: manifest, scratch: Self.scratchDirectory(in: workDirectory),
            hostEnvironment: hostEnvironment, buildPath: buildPath)
    }

    /// The clean environment of a step or a bundle's build command: only what the contract lists,
    /// plus the variables the bundle declares.
    public static func cleanEnvironment(
        bundlePath: String, manifest: BundleManifest, scratch: String, hostEnvironment: [String: String], buildPath: String?
    ) -> [String: String] {
        var environment: [String: String] = [
            "PATH": hostEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
            "HOME": hostEnvironment["HOME"] ?? scratch,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "TMPDIR": scratch + "/tmp",
            "SOURCE_DATE_EPOCH": sourceDateEpoch,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "ZENML_BUNDLE_DIR": bundlePath,
            "ZENML_CONTRACT_VERSION": String(contractVersion),
        ]
        if let buildPath { environment["ZENML_BUILD_DIR"] = buildPath }
        for name in manifest.env {
            if let value = hostEnvironment[name] { environment[name] = value }
        }
        return environment
    }

    /// `${BUNDLE}` and `${BUILD}` replaced by the bundle's and the build output's paths.
    func expand(_ text: String) -> String {
        var result = text.replacingOccurrences(of: "${BUNDLE}", with: bundlePath)
        if let buildPath { result = result.replacingOccurrences(of: "${BUILD}", with: buildPath) }
        return result
    }

    /// The program to start: a bundle file, or a command found on `PATH`.
    public func resolveExecutable() throws(StepFailure) -> String {
        let entrypoint = expand(manifest.entrypoint)
        if entrypoint.contains("${BUILD}") {
            throw .cannotStart("the entrypoint '\(manifest.entrypoint)' names ${BUILD}, but the bundle has no 'build:' command")
        }
        let inBundle = FileTree.absolute(entrypoint, relativeTo: bundlePath)
        if entrypoint.contains("/") || (try? FileStatus.of(inBundle, followingLinks: true)) != nil {
            guard let status = try? FileStatus.of(inBundle, followingLinks: true), status.kind == .file else {
                throw .cannotStart("the entrypoint '\(entrypoint)' is not a file" + (entrypoint.hasPrefix("/") ? "" : " in the bundle \(bundlePath)"))
            }
            guard status.isExecutable else {
                throw .cannotStart("the entrypoint \(inBundle) is not executable; run chmod +x on it (and give it a #! line)")
            }
            return inBundle
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(entrypoint)"
            if let status = try? FileStatus.of(candidate, followingLinks: true), status.kind == .file, status.isExecutable {
                return candidate
            }
        }
        throw .cannotStart("the entrypoint '\(entrypoint)' is neither a file in the bundle nor a command on PATH")
    }

    /// The arguments, with `${BUNDLE}` and `${BUILD}` replaced by their paths.
    public var arguments: [String] {
        manifest.args.map { expand($0) }
    }
}

/// Why a step did not succeed, in words a user can act on.
public enum StepFailure: Error, CustomStringConvertible, Sendable, Equatable, Codable {
    case cannotStart(String)
    case exited(code: Int32, message: String?)
    case signaled(Int32)
    case timedOut(seconds: Double)
    case canceled
    case reportedError(message: String?)
    case badResponse(String)
    case outputLimitExceeded(limit: Int)
    case badOutput(String)
    case modifiedInput(path: String)
    /// The cluster lost the step: its job failed, timed out or its node died before it reported.
    case lost(String)

    public var description: String {
        switch self {
        case .cannotStart(let message):
            return message
        case .exited(let code, let message):
            return "the step exited with code \(code)" + (message.map { ": \($0)" } ?? "")
        case .signaled(let signal):
            return "the step was killed by signal \(signal) (\(String(cString: strsignal(signal))))"
        case .timedOut(let seconds):
            return "the step ran longer than its timeout of \(CanonicalJSON.format(seconds)) s and was stopped; raise 'timeout' in the pipeline or the bundle if it needs longer"
        case .canceled:
            return "the run was interrupted"
        case .reportedError(let message):
            return "the step reported an error" + (message.map { ": \($0)" } ?? "")
        case .badResponse(let message):
            return message
        case .outputLimitExceeded(let limit):
            return "the step printed more than \(limit) bytes on stdout; stdout is for the one JSON response, logs go to stderr"
        case .badOutput(let message):
            return message
        case .modifiedInput(let path):
            return "the step changed its input artifact at \(path); inputs are read-only (write into the output directories instead). The damaged artifact was removed from the store and will be rebuilt"
        case .lost(let message):
            return message
        }
    }
}

/// What a successful step leaves: its response and where its outputs are.
public struct StepSuccess: Sendable {
    public var response: StepResponse
    public var process: ProcessResult
}

/// The result of running a step process, with the stderr tail for failures.
public struct StepRunResult: Sendable {
    public var outcome: Result<StepSuccess, StepFailure>
    public var exitCode: Int32?
    public var errorTail: String
    public var duration: TimeInterval
    public var usage: ResourceUsage? = nil
    /// Whether the step wrote to stderr, and so its log file exists.
    public var wroteLog = false

    public init(
        outcome: Result<StepSuccess, StepFailure>, exitCode: Int32?, errorTail: String, duration: TimeInterval, usage: ResourceUsage? = nil,
        wroteLog: Bool = false
    ) {
        self.outcome = outcome
        self.exitCode = exitCode
        self.errorTail = errorTail
        self.duration = duration
        self.usage = usage
        self.wroteLog = wroteLog
    }
}

/// Runs step processes under the contract and checks what they leave behind.
public enum StepRunner {
    /// Runs the step and validates its response and outputs. Never throws: every failure is a ``StepFailure``.
    public static func run(_ launch: StepLaunch) async -> StepRunResult {
        let executable: String
        do {
            executable = try launch.resolveExecutable()
        } catch {
            return StepRunResult(outcome: .failure(error), exitCode: nil, errorTail: "", duration: 0)
        }
        let scratch = StepLaunch.scratchDirectory(in: launch.workDirectory)
        let request: Data
        do {
            request = try StepLaunch.encoded(launch.request)
        } catch {
            return StepRunResult(outcome: .failure(.cannotStart("cannot encode the request: \(error)")), exitCode: nil, errorTail: "", duration: 0)
        }
        var configuration = ProcessConfiguration(
            executable: executable, arguments: launch.arguments, environment: launch.environment, workingDirectory: scratch,
            standardInput: .bytes(request), logFile: launch.logFile, timeout: launch.timeout)
        configuration.gracePeriod = 2
        // Permissions keep ordinary users out of their inputs, but not root (or a chmod): compare
        // the inputs' file metadata before and after, so a step that wrote into one is caught.
        let inputPaths = Set(launch.request.inputs.values.flatMap { $0.map(\.path) }).sorted()
        let before = inputPaths.map { InputGuard.signature(of: $0) }
        let process: ProcessResult
        do {
            process = try await ProcessLauncher.run(configuration)
        } catch {
            return StepRunResult(outcome: .failure(.cannotStart("\(error)")), exitCode: nil, errorTail: "", duration: 0)
        }
        func finish(_ outcome: Result<StepSuccess, StepFailure>) -> StepRunResult {
            StepRunResult(
                outcome: outcome, exitCode: process.exitCode, errorTail: process.errorTail, duration: process.duration, usage: process.usage,
                wroteLog: process.wroteLog)
        }
        for (path, signature) in zip(inputPaths, before) where InputGuard.signature(of: path) != signature {
            return finish(.failure(.modifiedInput(path: path)))
        }
        if process.canceled { return finish(.failure(.canceled)) }
        if process.timedOut { return finish(.failure(.timedOut(seconds: launch.timeout ?? 0))) }
        if process.outputLimitExceeded { return finish(.failure(.outputLimitExceeded(limit: configuration.outputLimit))) }
        let declared = Set(launch.manifest.outputs.keys)
        switch process.termination {
        case .signaled(let signal):
            return finish(.failure(.signaled(signal)))
        case .exited(let code) where code != 0:
            let response = try? StepResponse.parse(stdout: process.standardOutput, declaredOutputs: declared)
            return finish(.failure(.exited(code: code, message: response?.message)))
        case .exited:
            break
        }
        let response: StepResponse
        do {
            response = try StepResponse.parse(stdout: process.standardOutput, declaredOutputs: declared)
        } catch {
            return finish(.failure(.badResponse(error.description)))
        }
        guard response.status == .ok else { return finish(.failure(.reportedError(message: response.message))) }
        do {
            try OutputChecker.check(outputs: StepLaunch.outputsDirectory(in: launch.workDirectory), declared: launch.manifest.outputs)
        } catch {
            return finish(.failure(error))
        }
        return finish(.success(StepSuccess(response: response, process: process)))
    }
}

/// A fingerprint of a folder's file metadata (names, kinds, sizes, modes, modification times):
/// cheap to take, and it changes when anything in the folder is written, added or removed.
public enum InputGuard {
    public static func signature(of path: String) -> Digest {
        var lines: [String] = []
        func walk(_ absolute: String, _ relative: String) {
            guard let status = try? FileStatus.of(absolute) else { return }
            lines.append("\(relative)\t\(status.kind.rawValue)\t\(status.size)\t\(status.mode)\t\(status.modificationNanoseconds)")
            guard status.kind == .directory else { return }
            for name in ((try? FileTree.childNames(of: absolute)) ?? []).sorted() {
                walk(absolute + "/" + name, relative + "/" + name)
            }
        }
        walk(path, "")
        return Digest.of(lines.joined(separator: "\n"))
    }
}

/// Checks the contract's rules for what a step leaves in its outputs directory.
public enum OutputChecker {
    /// Whether a relative link target, followed from `linkDirectory` (relative to the output's
    /// root), never climbs above that root. Component by component, so `../out/x` from the top is
    /// outside even though it names a folder called `out`.
    static func staysInside(linkDirectory: String, target: String) -> Bool {
        var depth = linkDirectory.split(separator: "/").count
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                depth -= 1
                if depth < 0 { return false }
            } else {
                depth += 1
            }
        }
        return true
    }

    /// Every declared output is a non-empty directory; nothing else was created beside them; no
    /// link points outside its output; no special files.
    public static func check(outputs: String, declared: [String: OutputSpec]) throws(StepFailure) {
        let present: [String]
        do { present = try FileTree.childNames(of: outputs) } catch { throw .badOutput("cannot read the outputs directory: \(error)") }
        for name in present.sorted() where declared[name] == nil {
            throw .badOutput("the step wrote '\(name)' beside its outputs, which is not a declared output (declared: \(declared.keys.sorted().joined(separator: ", "))); write only inside the output directories given in the request")
        }
        for name in declared.keys.sorted() {
            let directory = outputs + "/" + name
            guard let status = try? FileStatus.of(directory), status.kind == .directory else {
                throw .badOutput("output '\(name)' is missing or was replaced by something that is not a directory; write files inside the directory given in the request")
            }
            let entries: [String]
            do { entries = try FileTree.childNames(of: directory) } catch { throw .badOutput("cannot read output '\(name)': \(error)") }
            if entries.isEmpty {
                throw .badOutput("the step left its declared output '\(name)' empty; it must write at least one file into \(directory)")
            }
            try checkTree(directory, relative: "", output: name)
        }
    }

    private static func checkTree(_ path: String, relative: String, output: String) throws(StepFailure) {
        let names: [String]
        do { names = try FileTree.childNames(of: path) } catch { throw .badOutput("cannot read \(path): \(error)") }
        for name in names {
            let child = path + "/" + name
            let childRelative = relative.isEmpty ? name : relative + "/" + name
            guard let status = try? FileStatus.of(child) else { continue }
            switch status.kind {
            case .file:
                continue
            case .directory:
                try checkTree(child, relative: childRelative, output: output)
            case .symlink:
                let target = (try? FileTree.linkTarget(child)) ?? ""
                if target.hasPrefix("/") || !staysInside(linkDirectory: relative, target: target) {
                    throw .badOutput("output '\(output)' contains the link \(childRelative) -> \(target), which points outside the output; copy the file in instead")
                }
            case .other:
                throw .badOutput("output '\(output)' contains \(childRelative), which is not a regular file, directory or link")
            }
        }
    }
}
