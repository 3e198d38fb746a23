import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLMetadata

/// The repository root (this file is Tests/ZenMLMetadataTests/TestSupport.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// The result of a finished process.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var succeeded: Bool { status == 0 }
}

/// Runs `arguments` (no shell) and waits; stdout and stderr are read concurrently.
func runProcess(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    if input != nil { process.standardInput = Pipe() } else { process.standardInput = FileHandle.nullDevice }
    try process.run()
    if let input, let pipe = process.standardInput as? Pipe {
        pipe.fileHandleForWriting.write(Data(input.utf8))
        try pipe.fileHandleForWriting.close()
    }
    let errData = Locked(Data())
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        let data = err.fileHandleForReading.readDataToEndOfFile()
        errData.withLock { $0 = data }
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    // Reaped here rather than with waitUntilExit, which was seen to wait forever on the exited
    // shell of a script that leaves a server running in the background.
    var status: Int32 = 0
    var reaped = waitpid(process.processIdentifier, &status, 0)
    while reaped < 0 && errno == EINTR { reaped = waitpid(process.processIdentifier, &status, 0) }
    if reaped != process.processIdentifier { while process.isRunning { usleep(1_000) } }  // Foundation reaped it first
    let exitStatus = reaped == process.processIdentifier ? ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)) : process.terminationStatus
    return ProcessResult(status: exitStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData.current, as: UTF8.self))
}

// MARK: Fixtures

enum Fixtures {
    static func newRun(_ id: String, pipeline: String = "p", spec: String = "spec", startedAt: Date = Date()) -> NewRun {
        NewRun(
            id: id, pipeline: pipeline, specDigest: Digest.of(spec), spec: ["name": .string(pipeline), "spec": .string(spec)], pipelineFile: "/\(pipeline).yaml",
            startedAt: startedAt, gitCommit: "abc", gitDirty: false, environment: ["os": "Linux"], workspace: "/w")
    }

    static func newExecution(_ run: String, pipeline: String = "p", step: String, key: Digest, inputs: [String: [ArtifactRecord]] = [:], startedAt: Date = Date()) -> NewExecution {
        NewExecution(
            runID: run, pipeline: pipeline, step: step, cacheKey: key, bundle: step, bundleVersion: "1", bundleDigest: Digest.of(step),
            config: ["k": 1], keyIngredients: ["key": [:]], startedAt: startedAt, inputs: inputs)
    }

    static func artifact(_ content: String, type: String = "Model", properties: [String: JSONValue] = [:], size: Int64 = 7) -> ArtifactRecord {
        ArtifactRecord(type: type, uri: "/store/\(Digest.of(content).hex)", digest: Digest.of(content), size: size, fileCount: 1, properties: properties, createdAt: Date())
    }
}

// MARK: MariaDB

/// The MariaDB server of `scripts/services/mariadb.sh`, started once per test process if it is
/// not running, and stopped when the test bundle finishes if this process started it.
final class MariaDBTestServer: NSObject, XCTestObservation, @unchecked Sendable {
    let port: Int
    let user: String
    let password: String
    let startedHere: Bool
    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: Result<MariaDBTestServer, Error>?

    private init(port: Int, user: String, password: String, startedHere: Bool) {
        self.port = port
        self.user = user
        self.password = password
        self.startedHere = startedHere
    }

    static var script: String { repositoryRoot + "/scripts/services/mariadb.sh" }

    /// The running server; starts (and if needed installs) it on first use.
    static func get() throws -> MariaDBTestServer {
        try lock.withLock {
            if let shared { return try shared.get() }
            let result = Result { try start() }
            shared = result
            if case .success(let server) = result, server.startedHere {
                XCTestObservationCenter.shared.addTestObserver(server)
            }
            return try result.get()
        }
    }

    private static func start() throws -> MariaDBTestServer {
        let wasUp = try runProcess([script, "status"]).succeeded
        let started = try runProcess([script, "start"])
        guard started.succeeded, let port = Int(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw MetadataStoreError.database("scripts/services/mariadb.sh start failed (exit \(started.status)): \(started.stderr)")
        }
        var values: [String: String] = [:]
        for line in try runProcess([script, "env"]).stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        return MariaDBTestServer(port: port, user: values["ZENML_MARIADB_USER"] ?? "zenml", password: values["ZENML_MARIADB_PASSWORD"] ?? "", startedHere: !wasUp)
    }

    func testBundleDidFinish(_ testBundle: Bundle) {
        _ = try? runProcess([Self.script, "stop"])
    }

    /// A configuration for a database of this server.
    func configuration(database: String, retry: RetryPolicy = RetryPolicy(attempts: 8, initialDelay: 0.05, maxDelay: 1), maxConnections: Int = 8) -> MySQLConfiguration {
        MySQLConfiguration(host: "127.0.0.1", port: port, user: user, password: password, database: database, retry: retry, maxConnections: maxConnections)
    }

    /// A connection for checking and sabotaging from the side.
    func adminConnection(database: String? = nil) throws -> MariaDBConnection {
        try MariaDBConnection(MariaDBConnectOptions(host: "127.0.0.1", port: port, socket: nil, user: user, password: password, database: database, connectTimeout: 5, readTimeout: 60))
    }

    /// A fresh database name; drop it with ``drop(_:)``.
    static func uniqueDatabaseName(_ prefix: String = "zenml_test") -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    func drop(_ database: String) {
        _ = try? adminConnection().execute("DROP DATABASE IF EXISTS `\(database)`")
    }
}

// MARK: ml-metadata (Python)

/// A virtual environment with ml-metadata 1.17.1, created on first use and reused (cached under
/// `~/.cache/zenml-run/mlmd-venv-1.17.1`, or `$ZENML_MLMD_VENV`).
enum MLMDPython {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cached: Result<String, Error>?

    static var venvPath: String {
        if let path = ProcessInfo.processInfo.environment["ZENML_MLMD_VENV"] { return path }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSTemporaryDirectory()
        return home + "/.cache/zenml-run/mlmd-venv-1.17.1"
    }

    static var script: String { repositoryRoot + "/Tests/Support/mlmd/mlmd_compat.py" }

    /// The venv's python, creating the venv if needed (about a minute the first time).
    static func python() throws -> String {
        try lock.withLock {
            if let cached { return try cached.get() }
            let result = Result { try prepare() }
            cached = result
            return try result.get()
        }
    }

    private static func prepare() throws -> String {
        let python = venvPath + "/bin/python"
        let check = { (try? runProcess([python, "-c", "import ml_metadata, sys; sys.exit(0 if ml_metadata.__version__ == '1.17.1' else 1)"]))?.succeeded == true }
        if FileManager.default.fileExists(atPath: python) && check() { return python }
        // Built beside the final path and renamed into place, so a half-made venv is never reused.
        let building = venvPath + ".building-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: building)
        try FileManager.default.createDirectory(atPath: (venvPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let create = try runProcess(["python3", "-m", "venv", building])
        guard create.succeeded else {
            throw MetadataStoreError.database("could not create a Python venv for ml-metadata with `python3 -m venv \(building)`: \(create.stderr)")
        }
        let install = try runProcess([building + "/bin/python", "-m", "pip", "install", "--quiet", "ml-metadata==1.17.1"])
        guard install.succeeded else {
            try? FileManager.default.removeItem(atPath: building)
            throw MetadataStoreError.database(
                "pip could not install ml-metadata==1.17.1 (needs PyPI access and Python ≤ 3.11; it pins protobuf < 5): \(install.stderr.suffix(2000))")
        }
        try? FileManager.default.removeItem(atPath: venvPath)
        try FileManager.default.moveItem(atPath: building, toPath: venvPath)
        guard check() else { throw MetadataStoreError.database("ml-metadata 1.17.1 installed into \(venvPath) but cannot be imported") }
        return python
    }

    /// Runs `mlmd_compat.py` and parses its JSON output.
    static func run(_ arguments: [String], password: String? = nil) throws -> [String: Any] {
        var environment: [String: String] = [:]
        if let password { environment["ZENML_TEST_MYSQL_PASSWORD"] = password }
        let result = try runProcess([try python(), script] + arguments, environment: environment)
        guard result.succeeded else {
            throw MetadataStoreError.database("mlmd_compat.py \(arguments.joined(separator: " ")) failed (exit \(result.status)): \(result.stderr.suffix(3000))")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw MetadataStoreError.database("mlmd_compat.py printed no JSON object: \(result.stdout.prefix(500))")
        }
        return object
    }
}

/// A value shared between threads of a test, behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try lock.withLock { try body(&value) }
    }

    var current: Value { lock.withLock { value } }
}
