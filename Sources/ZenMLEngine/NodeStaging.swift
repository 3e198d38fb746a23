import Foundation
import ZenMLArtifacts
import ZenMLContract
import ZenMLCore
import ZenMLExecutor
import ZenMLObjectStore

/// A worker on a cluster node that moves a step's data itself: it opens the artifact store with
/// the node's own credentials, stages the inputs into a node-local read-through cache, runs the
/// step under the contract in a node-local work directory and publishes the outputs. The host
/// never downloads or uploads the step's data, and a job that published before the host died has
/// left a complete result the next run can adopt (see ``SlurmBackend``).
public enum NodeWorker {
    /// The node's cache of a bucket store: `ZENML_NODE_CACHE`, else `$XDG_CACHE_HOME/zenml-run`,
    /// else `~/.cache/zenml-run` of the user jobs run as.
    public static func cacheDirectory(environment: [String: String]) -> String {
        if let explicit = environment["ZENML_NODE_CACHE"], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/zenml-run" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/zenml-run"
    }

    /// Opens the store a job names, on this node.
    static func openStore(_ staging: NodeStaging, environment: [String: String]) throws -> any ArtifactStore {
        if let url = staging.url {
            let location = try ObjectStoreLocation(parsing: url)
            let objects = try Workspace.objectStore(location, endpoint: staging.endpoint, region: staging.region, environment: environment)
            let root = cacheDirectory(environment: environment)
            let cache = try ArtifactCache(
                root: root + "/artifacts", stagingRoot: root + "/tmp", maxSize: staging.cacheMaxSize ?? ArtifactCache.defaultMaxSize)
            cache.removeAbandonedStaging()
            return RemoteArtifactStore(objects: objects, location: location, cache: cache)
        }
        guard let folder = staging.folder else { throw NodeStagingError(message: "the job names no artifact store") }
        return try Workspace.folderStore(root: folder, staging: staging.staging ?? folder + "/.staging", environment: environment)
    }

    /// Runs a job whose ``WorkerJob/nodeStaging`` is set; every problem becomes the step's failure.
    public static func run(_ job: WorkerJob, environment: [String: String] = ProcessInfo.processInfo.environment) async -> WorkerResult {
        let node = HostEnvironment.hostName
        func lost(_ message: String) -> WorkerResult {
            var result = WorkerResult(StepRunResult(outcome: .failure(.lost(message)), exitCode: nil, errorTail: "", duration: 0))
            result.node = node
            return result
        }
        guard let staging = job.nodeStaging else { return lost("the job does not say which artifact store to use") }
        var launch: StepLaunch
        do {
            launch = try job.launch()
        } catch {
            return lost("the worker on \(node) cannot read its job: \(error)")
        }
        let store: any ArtifactStore
        do {
            store = try openStore(staging, environment: environment)
        } catch {
            return lost(
                "the worker on \(node) cannot open the artifact store \(staging.storeName): \(error). Jobs take the store's "
                    + "credentials from the node's environment (the user they run as), never from the host: set them there")
        }
        // Outputs are staged where the store publishes from (the node's cache, or the shared
        // folder's staging), so that publishing a local output is a rename.
        let work: String
        do {
            work = try store.makeStagingDirectory(label: "node-step")
            for name in launch.manifest.outputs.keys { try FileTree.makeDirectory(StepLaunch.outputsDirectory(in: work) + "/" + name) }
            try FileTree.makeDirectory(StepLaunch.scratchDirectory(in: work) + "/tmp")
        } catch {
            return lost("the worker on \(node) cannot make a work directory next to the store \(staging.storeName): \(error)")
        }
        defer { try? FileTree.remove(work) }
        var request = launch.request
        for (name, artifacts) in request.inputs {
            var staged = artifacts
            for index in staged.indices {
                let artifact = staged[index]
                guard let digest = Digest(artifact.digest) else { return lost("input '\(name)' has no digest the worker can fetch") }
                do {
                    guard let path = try await store.localPath(of: digest) else { return lost(ArtifactStoreError.missing(digest).description) }
                    staged[index].path = path
                } catch {
                    return lost("the worker on \(node) cannot fetch input '\(name)' (\(digest)) from \(staging.storeName): \(error)")
                }
            }
            request.inputs[name] = staged
        }
        for name in request.outputs.keys { request.outputs[name]?.path = StepLaunch.outputsDirectory(in: work) + "/" + name }
        request.scratch = StepLaunch.scratchDirectory(in: work)
        launch.request = request
        launch.workDirectory = work
        let ran = await StepRunner.run(launch)
        var result = WorkerResult(ran)
        result.node = node
        guard case .success = ran.outcome else {
            if case .failure(.modifiedInput(let path)) = ran.outcome {
                // The damaged copy is this node's; the store's artifact is intact.
                try? FileTree.remove(path)
            }
            return result
        }
        var published: [String: StoredArtifact] = [:]
        for name in launch.manifest.outputs.keys.sorted() {
            do {
                let stored = try await store.publish(stagedDirectory: StepLaunch.outputsDirectory(in: work) + "/" + name)
                published[name] = stored
            } catch {
                var failed = lost("the worker on \(node) cannot publish output '\(name)' to \(staging.storeName): \(error)")
                failed.exitCode = result.exitCode
                failed.errorTail = result.errorTail
                failed.duration = result.duration
                return failed
            }
        }
        do {
            try store.flush()
        } catch {
            return lost("the worker on \(node) cannot flush the store \(staging.storeName): \(error)")
        }
        result.published = published
        return result
    }
}

/// A job the worker cannot stage.
struct NodeStagingError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A job directory (`.zenml/jobs/KEY/RUN-STEP/`) this host holds, with an advisory lock
/// (`flock`) on its `host.lock`, from submission until the execution is recorded. The lock ends
/// with the host's process, so another run tells the job of a host that died (which it may adopt
/// or wait for) from one a live host still waits for (a step with the same key in the same run
/// or another), which it must leave alone. On shared storage the file system must support
/// `flock` across nodes (NFSv4 does; see docs/slurm.md).
public final class HeldJobDirectory: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Takes the directory (making it if `create`); `nil` when a live host holds it, or it is
    /// gone or was removed while its lock was being taken.
    static func take(_ path: String, create: Bool) -> HeldJobDirectory? {
        let lockFile = path + "/host.lock"
        // Making it, the attempt is repeated: the key's folder may vanish between making it and
        // making ours in it (its last job's host removes it), and another step of the key may be
        // looking at the key's jobs (``SlurmBackend/earlierJob(besides:adopting:)``) and hold our
        // new, empty directory for a moment, then remove it as abandoned. Each is over at once.
        for _ in 0..<(create ? 100 : 1) {
            if create { try? FileTree.makeDirectory(path) }
            let descriptor = open(lockFile, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
            guard descriptor >= 0 else {
                if create && errno == ENOENT { continue }
                return nil
            }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                close(descriptor)
                guard create else { return nil }
                usleep(5_000)
                continue
            }
            // Its holder may have removed the directory between our open and our lock.
            var opened = stat(), current = stat()
            guard fstat(descriptor, &opened) == 0, stat(lockFile, &current) == 0, opened.st_ino == current.st_ino, opened.st_dev == current.st_dev else {
                close(descriptor)
                if create { continue }
                return nil
            }
            return HeldJobDirectory(path: path, descriptor: descriptor)
        }
        return nil
    }

    /// Removes the directory (and the key's folder when it was the last job in it), then lets go.
    public func remove() {
        lock.withLock {
            guard descriptor >= 0 else { return }
            try? FileTree.remove(path)
            rmdir((path as NSString).deletingLastPathComponent)
            close(descriptor)
            descriptor = -1
        }
    }

    /// Lets go without removing anything: the job stays for a later run.
    func release() {
        lock.withLock {
            guard descriptor >= 0 else { return }
            close(descriptor)
            descriptor = -1
        }
    }
}

extension Workspace {
    /// What a worker needs to open this workspace's artifact store on a node (no credentials), and
    /// the job's directory: this run's and step's, in a folder named by the step's cache key, so
    /// that the next run finds a job of the key that finished after this host died.
    func nodeStaging(for key: Digest, run: String, step: String) throws -> NodeStaging {
        let settings = try configuration()
        let jobDirectory = stateDirectory + "/jobs/" + key.hex + "/" + run + "-" + step
        if let remote = settings.remoteArtifacts {
            return NodeStaging(
                url: remote.url, endpoint: remote.endpoint, region: remote.region, cacheMaxSize: settings.cacheMaxSize, jobDirectory: jobDirectory)
        }
        if let shared = settings.artifacts {
            return NodeStaging(folder: shared, staging: shared + "/.staging", jobDirectory: jobDirectory)
        }
        return NodeStaging(folder: artifactsDirectory, staging: stagingDirectory, jobDirectory: jobDirectory)
    }
}

extension PipelineRunner {
    /// An output a backend's worker published: the host records it without publishing it again,
    /// after a cheap check that the store holds it (a manifest HEAD, or a stat).
    func verifiedPublished(_ published: [String: StoredArtifact], output: String) async throws -> StoredArtifact {
        guard let stored = published[output] else {
            throw NodeStagingError(message: "the worker reported no published artifact for output '\(output)'")
        }
        guard try await store.isIntact(stored) else {
            throw NodeStagingError(
                message: "the worker reported output '\(output)' as published (\(stored.digest)), but the store does not hold it; run the step again")
        }
        return stored
    }
}
