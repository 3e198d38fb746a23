import Foundation
import ZenMLArtifacts
import ZenMLContract
import ZenMLCore
import ZenMLExecutor
import ZenMLMetadata

/// Runs bundles' `build:` commands once per bundle digest and platform, and keeps each result as
/// an artifact recorded like a step's output (a `build:<bundle>` execution), so a C or Swift step
/// is compiled on first use on each machine and never again.
///
/// A build's output does not enter the step's cache key: compilers embed paths and timestamps,
/// and a key that differed between two machines' binaries would make a shared cache useless. The
/// build command itself is part of the manifest, so it is covered by the bundle digest. Which
/// build a step ran is recorded instead: the step's execution names the `BundleBuild` artifact
/// (``ExecutionRecord/build``), so its lineage leads to the build and the build's to its bundle.
actor BundleBuilder {
    struct Failure: Error, CustomStringConvertible {
        var message: String
        var errorTail: String
        var logFile: String?
        var description: String { message }
    }

    private let metadata: any MetadataStore
    private let store: any ArtifactStore
    private var inFlight: [Digest: Task<Output, Error>] = [:]

    /// A build ready to run: where its files are, and its recorded artifact (with its id).
    struct Output: Sendable {
        var path: String
        var artifact: ArtifactRecord
    }

    init(metadata: any MetadataStore, store: any ArtifactStore) {
        self.metadata = metadata
        self.store = store
    }

    /// The key of a build: the bundle, the command and the machines the binaries are for (this
    /// one's platform, or a backend's target such as a Slurm partition).
    static func key(bundleDigest: Digest, command: String, target: String?) -> Digest {
        var ingredients: [String: JSONValue] = ["build": .string(command), "bundle": .string(bundleDigest.description)]
        if let target {
            ingredients["target"] = .string(target)
        } else {
            let platform = HostEnvironment.current
            ingredients["os"] = .string(platform.os)
            ingredients["arch"] = .string(platform.architecture)
        }
        return Digest.of(canonical: .object(ingredients))
    }

    /// The bundle's build output, building it first if no intact build is recorded.
    func output(
        bundlePath: String, manifest: BundleManifest, bundleDigest: Digest, runID: String, pipeline: String,
        logDirectory: String, hostEnvironment: [String: String], backend: any StepBackend, resources: BundleManifest.Resources?
    ) async throws -> Output {
        guard let command = manifest.build else { throw Failure(message: "the bundle has no build command", errorTail: "", logFile: nil) }
        let target = backend.buildTarget(for: resources)
        let key = Self.key(bundleDigest: bundleDigest, command: command, target: target)
        if let running = inFlight[key] { return try await running.value }
        let task = Task {
            try await self.buildIfNeeded(
                key: key, target: target, command: command, bundlePath: bundlePath, manifest: manifest, bundleDigest: bundleDigest,
                runID: runID, pipeline: pipeline, logDirectory: logDirectory, hostEnvironment: hostEnvironment, backend: backend,
                resources: resources)
        }
        inFlight[key] = task
        defer { inFlight[key] = nil }
        return try await task.value
    }

    private func buildIfNeeded(
        key: Digest, target: String?, command: String, bundlePath: String, manifest: BundleManifest, bundleDigest: Digest, runID: String,
        pipeline: String, logDirectory: String, hostEnvironment: [String: String], backend: any StepBackend, resources: BundleManifest.Resources?
    ) async throws -> Output {
        for candidate in try metadata.executions(withCacheKey: key, limit: 5) {
            guard let artifact = candidate.outputs["build"] else { continue }
            let stored = StoredArtifact(digest: artifact.digest, uri: artifact.uri, size: artifact.size, fileCount: artifact.fileCount)
            if try await store.isIntact(stored), let path = try await store.localPath(of: artifact.digest) {
                return Output(path: path, artifact: artifact)
            }
        }
        let work = try store.makeStagingDirectory(label: "build-" + manifest.name)
        defer { try? FileTree.remove(work) }
        let output = work + "/outputs/build"
        let scratch = work + "/scratch"
        try FileTree.makeDirectory(output)
        try FileTree.makeDirectory(scratch + "/tmp")
        let logFile = logDirectory + "/build-\(manifest.name).log"
        let stepName = "build:\(manifest.name)"
        let execution = NewExecution(
            runID: runID, pipeline: pipeline, step: stepName, cacheKey: key, bundle: manifest.name, bundleVersion: manifest.version,
            bundleDigest: bundleDigest, config: ["build": .string(command)],
            keyIngredients: ["key": ["build": .string(command), "bundle": .string(bundleDigest.description), "target": target.map { .string($0) } ?? "this machine"]],
            startedAt: Date(), inputs: [:])
        let executionID = try metadata.startExecution(execution)
        let configuration = ProcessConfiguration(
            executable: "/bin/sh", arguments: ["-c", command],
            environment: StepLaunch.cleanEnvironment(bundlePath: bundlePath, manifest: manifest, scratch: scratch, hostEnvironment: hostEnvironment, buildPath: output),
            workingDirectory: scratch,
            standardInput: .bytes(Data()), logFile: logFile, timeout: 3600)
        let result = try await backend.runBuild(configuration, in: work, resources: resources, label: stepName)
        let log = result.wroteLog ? logFile : nil
        func failed(_ message: String) throws -> Never {
            _ = try? metadata.finishExecution(id: executionID, outcome: ExecutionOutcome(state: result.canceled ? .canceled : .failed, endedAt: Date(), exitCode: result.exitCode.map(Int.init), logURI: log, message: message))
            throw Failure(message: message, errorTail: result.errorTail, logFile: log)
        }
        if result.canceled { try failed("the run was interrupted during the build") }
        guard result.exitCode == 0 else {
            try failed("the bundle's build command failed (\(result.exitCode.map { "exit code \($0)" } ?? "killed by a signal")): \(command)")
        }
        guard !(try FileTree.childNames(of: output)).isEmpty else {
            try failed("the bundle's build command wrote nothing into $ZENML_BUILD_DIR: \(command)")
        }
        let stored = try await store.publish(stagedDirectory: output)
        let artifact = ArtifactRecord(type: "BundleBuild", uri: stored.uri, digest: stored.digest, size: stored.size, fileCount: stored.fileCount, properties: [:], createdAt: Date())
        let recorded = try metadata.finishExecution(
            id: executionID, outcome: ExecutionOutcome(state: .complete, endedAt: Date(), exitCode: 0, logURI: log, outputs: ["build": artifact]))
        // A remote store's URI is not a path: the build is run from the local copy.
        return Output(path: try await store.localPath(of: stored.digest) ?? stored.uri, artifact: recorded["build"] ?? artifact)
    }
}
