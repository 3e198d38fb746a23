import Foundation
import ZenMLContract
import ZenMLCore

/// The version of this zenml-run.
public let zenmlRunVersion = "0.1.0"

/// Facts about the machine a run happens on, recorded with every run. They do not enter cache
/// keys: the same step gives the same bytes on a laptop and a server, and a key that changed with
/// the kernel version would make a shared cache useless. Bundles declare the variables that matter.
public struct HostEnvironment: Sendable, Codable {
    public var os: String
    public var kernel: String
    public var architecture: String
    public var cpu: String?
    public var cores: Int
    public var hostVersion: String

    public static let current: HostEnvironment = {
        var name = utsname()
        uname(&name)
        func text<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        var cpu: String?
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            cpu = info.split(separator: "\n").first { $0.hasPrefix("model name") }.flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return HostEnvironment(
            os: text(name.sysname), kernel: text(name.release), architecture: text(name.machine), cpu: cpu,
            cores: ProcessInfo.processInfo.activeProcessorCount, hostVersion: zenmlRunVersion)
    }()

    public var json: JSONValue {
        (try? JSONValue(encoding: self)) ?? .null
    }

    /// This machine's host name.
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return CStrings.string(from: buffer)
    }()
}

/// The git commit of the folder a pipeline lives in, and whether the work tree has changes.
public struct GitState: Sendable, Codable {
    public var commit: String
    public var dirty: Bool
    /// The uncommitted changes to tracked files (`git diff HEAD`), when dirty; cut at
    /// ``diffLimit`` bytes with a note, so a stray generated file cannot bloat the store.
    public var diff: String?

    static let diffLimit = 1 << 20

    /// `nil` outside a git work tree or without git.
    public static func of(directory: String) -> GitState? {
        guard let commit = git(["rev-parse", "HEAD"], in: directory)?.trimmingCharacters(in: .whitespacesAndNewlines), commit.count >= 40 else {
            return nil
        }
        let status = git(["status", "--porcelain", "--untracked-files=no"], in: directory) ?? ""
        let dirty = !status.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        var diff: String?
        if dirty, let text = git(["diff", "HEAD", "--no-color", "--no-ext-diff"], in: directory) {
            diff = text.utf8.count <= diffLimit ? text : String(decoding: text.utf8.prefix(diffLimit), as: UTF8.self) + "\n[zenml-run: diff cut at \(diffLimit) bytes]\n"
        }
        return GitState(commit: commit, dirty: dirty, diff: diff)
    }

    private static func git(_ arguments: [String], in directory: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The versions of the interpreters and compilers the steps that ran used (`python3 --version`,
/// `cc --version`, ...), recorded with the run. Each is asked once per run, in the background, when
/// the first step that needs it runs; a fully cached run asks nothing. Like the other machine facts
/// they do not enter cache keys; a bundle that depends on one declares it (`env:`, or a `python:`
/// requirements file).
actor RuntimeVersions {
    private let path: String
    private var probes: [String: Task<String?, Never>] = [:]

    init(path: String) {
        self.path = path
    }

    /// Starts asking for the versions of the commands a bundle's entrypoint and `build:` start.
    func note(_ manifest: BundleManifest) {
        var commands: [String] = []
        if !manifest.entrypoint.contains("/") && !manifest.entrypoint.contains("$") { commands.append(manifest.entrypoint) }
        if let build = manifest.build, let first = build.split(whereSeparator: { $0 == " " || $0 == "\n" }).first {
            commands.append(String(first))
        }
        for command in commands where probes[command] == nil {
            let program = path.split(separator: ":").map { "\($0)/\(command)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
            probes[command] = Task.detached { program.flatMap(Self.version(of:)) ?? program }
        }
    }

    /// What the probes found, by command.
    func versions() async -> [String: String] {
        var versions: [String: String] = [:]
        for (command, probe) in probes {
            if let version = await probe.value { versions[command] = version }
        }
        return versions
    }

    private static func version(of program: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = ["--version"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // Some programs (dash as sh) have no --version: their path is all there is to record.
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
