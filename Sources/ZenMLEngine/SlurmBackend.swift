import Foundation
import ZenMLContract
import ZenMLCore
import ZenMLExecutor

/// Runs each step as a Slurm batch job: `sbatch` starts `zenml-run worker JOB` on a compute node,
/// which stages the inputs from the artifact store, runs the step under the contract, publishes
/// the outputs (``NodeWorker``) and writes its result into the job's directory.
///
/// The host, not Slurm, releases dependent steps as their inputs are published: between two steps
/// it must check the cache (a cached step is never submitted) and record the outputs, which a
/// node cannot do without the host's metadata store. `--dependency=afterok` would
/// only save the host's polling interval, and would submit steps that the cache could skip.
///
/// The work directories, the artifact store and the bundles must be on storage the nodes share
/// (see `docs/slurm.md`).
public struct SlurmBackend: StepBackend {
    public var name: String { "slurm" }
    /// The command that starts the worker on a node (normally this `zenml-run` and `worker`).
    public var workerCommand: [String]
    /// `--partition`, when not the cluster's default.
    public var partition: String?
    /// How often job states are read.
    public var pollInterval: TimeInterval
    /// One `squeue` call per interval serves every job of the run: a poller per job would start
    /// hundreds of `squeue` processes a second in a wide fan-out and slow the controller down.
    private let queue: SlurmQueue

    public init(workerCommand: [String], partition: String? = nil, pollInterval: TimeInterval = 0.2) {
        self.workerCommand = workerCommand
        self.partition = partition
        self.pollInterval = pollInterval
        self.queue = SlurmQueue(interval: pollInterval)
    }

    /// Whether `sbatch` is there to talk to.
    public static func check() throws {
        guard (try? Slurm.command(["sinfo", "-h", "-o", "%T"])) != nil else { throw SlurmError.unavailable }
    }

    /// The worker stages inputs from the artifact store and publishes outputs to it on the node.
    public var stagesArtifactsOnNode: Bool { true }

    /// A job waits in Slurm's queue (pending) before it runs.
    public var queuesSteps: Bool { true }

    public func run(_ launch: StepLaunch, step: String, progress: @escaping @Sendable (BackendStatus) -> Void) async -> BackendRun {
        func lost(_ message: String) -> StepRunResult {
            StepRunResult(outcome: .failure(.lost(message)), exitCode: nil, errorTail: "", duration: 0)
        }
        // With node staging, the job's files live in its own directory under one named by the
        // cache key (`jobs/KEY/RUN-STEP/`), which outlives this host: the next run adopts a job
        // that finished after the host died, or waits for one still queued. This host holds its
        // directory until the execution is recorded, so a step of the same key elsewhere (in
        // this run or another) leaves it alone.
        var held: HeldJobDirectory?
        var jobDirectory = launch.workDirectory
        var previousJob: String?
        if let staging = launch.nodeStaging {
            guard let own = HeldJobDirectory.take(staging.jobDirectory, create: true) else {
                return BackendRun(result: lost("cannot make and lock the job directory \(staging.jobDirectory); check that the workspace's .zenml folder is writable"))
            }
            switch Self.earlierJob(besides: own, adopting: staging.adoptsEarlierJobs) {
            case .finished(let earlier, var adopted):
                own.remove()
                adopted.heldJobDirectory = earlier
                progress(BackendStatus(phase: .running, since: Date(), detail: "adopted the finished slurm job \(adopted.details["slurm_job_id"]?.stringValue ?? "?")"))
                return adopted
            case .queued(let earlier, let id):
                own.remove()
                held = earlier
                previousJob = id
            case nil:
                held = own
            }
            jobDirectory = held?.path ?? own.path
        }
        let resultFile = jobDirectory + "/worker-result.json"
        let jobFile = jobDirectory + "/worker-job.json"
        let jobIDFile = jobDirectory + "/job-id"
        if previousJob == nil {
            do {
                try FileTree.makeDirectory(jobDirectory)
                for stale in [resultFile, jobIDFile] { try? FileTree.remove(stale) }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                try FileTree.writeAtomically(encoder.encode(WorkerJob(launch, resultFile: resultFile)), to: jobFile)
            } catch {
                var run = BackendRun(result: lost("cannot write the Slurm job file: \(error)"))
                run.heldJobDirectory = held
                return run
            }
        }
        let job = await submit(
            jobFile: jobFile, workerArguments: [], name: step, directory: launch.workDirectory, outputFile: Self.outputFile(for: launch.logFile),
            resources: launch.resources, timeout: launch.timeout, jobIDFile: launch.nodeStaging == nil ? nil : jobIDFile, existingJob: previousJob,
            progress: progress)
        var run: BackendRun
        switch job.ending {
        case .refused(let message):
            run = BackendRun(result: lost(message), details: job.details)
        case .canceled:
            run = BackendRun(result: StepRunResult(outcome: .failure(.canceled), exitCode: nil, errorTail: "", duration: 0), details: job.details)
        case .ended(let summary, let outputTail):
            if let data = try? FileTree.read(resultFile), let reported = try? JSONDecoder().decode(WorkerResult.self, from: data) {
                var details = job.details
                if previousJob != nil { details["reattached"] = .bool(true) }
                if reported.published != nil { details["published_by"] = .string("worker") }
                run = BackendRun(result: reported.runResult, details: details, published: reported.published)
            } else {
                var result = lost("\(summary) before the step reported; Slurm's output of the job: \(job.details["slurm_log"]?.stringValue ?? "?")")
                result.errorTail = outputTail
                run = BackendRun(result: result, details: job.details)
            }
        }
        run.heldJobDirectory = held
        return run
    }

    /// A job of the same cache key whose host died (its directory is not held).
    enum EarlierJob {
        /// It succeeded and published its outputs: adopt its result.
        case finished(HeldJobDirectory, BackendRun)
        /// It is still queued or running: wait for it instead of submitting another.
        case queued(HeldJobDirectory, String)
    }

    /// Looks at the other job directories of the same key. A directory a live host holds (a step
    /// of the same key in this run or another) is left alone. Of the others, whose host died, the
    /// first with a successful result or a job still in the queue is taken over when
    /// `adopting`; the rest (failed or lost jobs, or any finished one for a forced run) are removed.
    static func earlierJob(besides own: HeldJobDirectory, adopting: Bool) -> EarlierJob? {
        let keyDirectory = (own.path as NSString).deletingLastPathComponent
        let ownName = (own.path as NSString).lastPathComponent
        for name in ((try? FileTree.childNames(of: keyDirectory)) ?? []).sorted() where name != ownName {
            let path = keyDirectory + "/" + name
            guard (try? FileStatus.of(path))?.kind == .directory, let earlier = HeldJobDirectory.take(path, create: false) else { continue }
            let resultFile = path + "/worker-result.json", jobIDFile = path + "/job-id"
            let id = (try? String(contentsOfFile: jobIDFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if adopting, let adopted = adoptable(resultFile: resultFile, jobIDFile: jobIDFile) { return .finished(earlier, adopted) }
            if !id.isEmpty, Slurm.isQueued(id) {
                if adopting { return .queued(earlier, id) }
                // A forced run does not wait for it; its result stays for a later run to adopt.
                earlier.release()
                continue
            }
            earlier.remove()
        }
        return nil
    }

    /// A successful result a worker left in the job directory with its outputs published, which
    /// no host recorded (the host that submitted it died): the step need not run again.
    static func adoptable(resultFile: String, jobIDFile: String) -> BackendRun? {
        guard let data = try? FileTree.read(resultFile), let reported = try? JSONDecoder().decode(WorkerResult.self, from: data),
              reported.response != nil, let published = reported.published
        else { return nil }
        let id = (try? String(contentsOfFile: jobIDFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        var details: [String: JSONValue] = [
            "slurm_job_id": .string(id), "adopted": .bool(true), "published_by": .string("worker"), "run_seconds": .double(reported.duration),
        ]
        if let node = reported.node { details["node"] = .string(node) }
        return BackendRun(result: reported.runResult, details: details, published: published)
    }

    /// Builds are keyed by partition: its nodes, not the submitting host, run the binaries.
    public func buildTarget(for resources: BundleManifest.Resources?) -> String? {
        "slurm partition " + (resources?.partition ?? partition ?? "(default)")
    }

    /// Runs the build as a job on the partition the step will run on.
    public func runBuild(_ configuration: ProcessConfiguration, in directory: String, resources: BundleManifest.Resources?, label: String) async throws -> ProcessResult {
        let resultFile = directory + "/worker-result.json"
        let jobFile = directory + "/worker-job.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileTree.writeAtomically(encoder.encode(WorkerBuild(configuration, resultFile: resultFile)), to: jobFile)
        // A build needs the step's partition, not its cpus or memory.
        let job = await submit(
            jobFile: jobFile, workerArguments: ["--build"], name: label, directory: directory, outputFile: Self.outputFile(for: configuration.logFile),
            resources: BundleManifest.Resources(partition: resources?.partition), timeout: configuration.timeout, jobIDFile: nil,
            existingJob: nil, progress: { _ in })
        func failed(_ message: String, tail: String = "", canceled: Bool = false) -> ProcessResult {
            WorkerBuildResult(lost: [message, tail].filter { !$0.isEmpty }.joined(separator: "\n"), canceled: canceled).processResult
        }
        switch job.ending {
        case .refused(let message): return failed(message)
        case .canceled: return failed("", canceled: true)
        case .ended(let summary, let outputTail):
            guard let data = try? FileTree.read(resultFile), let reported = try? JSONDecoder().decode(WorkerBuildResult.self, from: data) else {
                return failed("\(summary) before the build reported", tail: outputTail)
            }
            return reported.processResult
        }
    }

    /// How a job ended, as far as Slurm tells.
    enum JobEnding {
        /// sbatch did not take it.
        case refused(String)
        /// The run was interrupted; the job was cancelled and has left the queue.
        case canceled
        /// The job left the queue: Slurm's account of it (state, reason, exit code) and the tail of its output file.
        case ended(summary: String, outputTail: String)
    }

    /// Where Slurm writes a job's own output (the worker's, and Slurm's messages such as a time
    /// limit or a cancellation): next to the step's log, `.zenml/logs/RUN/STEP.slurm.log`, so that
    /// it outlives the work directory like the step's log does.
    static func outputFile(for logFile: String) -> String {
        (logFile.hasSuffix(".log") ? String(logFile.dropLast(4)) : logFile) + ".slurm.log"
    }

    /// Submits `zenml-run worker [ARGS] JOB` (writing its id to `jobIDFile`), or takes
    /// `existingJob`, and waits for the job to leave the queue (cancelling it if the calling task
    /// is cancelled). The job's output is appended to `outputFile` (a retried step keeps each
    /// attempt's). The details are recorded with the execution.
    func submit(
        jobFile: String, workerArguments: [String], name: String, directory: String, outputFile: String, resources: BundleManifest.Resources?,
        timeout: Double?, jobIDFile: String?, existingJob: String?, progress: @escaping @Sendable (BackendStatus) -> Void
    ) async -> (ending: JobEnding, details: [String: JSONValue]) {
        var arguments = [
            "sbatch", "--parsable", "--job-name=zenml-\(name)", "--output=\(outputFile)", "--open-mode=append",
            "--chdir=\(directory)", "--kill-on-invalid-dep=yes",
        ]
        arguments += Self.resourceOptions(resources, timeout: timeout, defaultPartition: partition)
        arguments += ["--wrap", (workerCommand + workerArguments + [jobFile]).map(Self.shellQuoted).joined(separator: " ")]
        // Slurm does not make the folder of the output file; the tail of a failure is what this job appended.
        try? FileTree.makeDirectory((outputFile as NSString).deletingLastPathComponent)
        let outputOffset = (try? FileStatus.of(outputFile)?.size) ?? 0
        let submitted = Date()
        let jobID: String
        if let existingJob {
            jobID = existingJob
        } else {
            do {
                jobID = try Slurm.command(arguments).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
            } catch {
                return (.refused("sbatch refused the step: \(error)"), [:])
            }
            if let jobIDFile { try? FileTree.writeAtomically(Data(jobID.utf8), to: jobIDFile) }
        }
        let accepted = Date()
        let job = "slurm job \(jobID)" + (existingJob == nil ? "" : " (of an earlier run)")
        progress(BackendStatus(phase: .pending, since: submitted, detail: job))
        var details: [String: JSONValue] = ["slurm_job_id": .string(jobID), "submit_seconds": .double(Date().timeIntervalSince(submitted))]
        var started: Date?
        var shown = job
        while true {
            if Task.isCancelled {
                _ = try? Slurm.command(["scancel", jobID])
                // Wait (up to 10 s) until the job is gone, so a canceled run leaves nothing in the queue.
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline, Slurm.isQueued(jobID) { usleep(100_000) }
                return (.canceled, details)
            }
            let (state, node, reason) = await queue.state(of: jobID, since: accepted)
            if state.isEmpty || ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"].contains(state) {
                break
            }
            // Pending (and configuring its node) until it starts; whatever follows counts as running.
            let pending = started == nil && (state == "PENDING" || state == "CONFIGURING")
            if !pending && started == nil {
                started = Date()
                details["node"] = .string(node)
                details["queue_wait_seconds"] = .double(Date().timeIntervalSince(submitted))
            }
            let detail = Self.statusDetail(job: job, state: state, node: node, reason: reason)
            if detail != shown {
                progress(BackendStatus(phase: pending ? .pending : .running, since: started ?? submitted, detail: detail))
                shown = detail
            }
            try? await Task.sleep(nanoseconds: UInt64(pollInterval * 1_000_000_000))
        }
        let info = Slurm.jobInfo(jobID)
        if details["node"] == nil, let node = info["NodeList"] { details["node"] = .string(node) }
        if details["queue_wait_seconds"] == nil { details["queue_wait_seconds"] = .double(0) }
        details["slurm_state"] = .string(info["JobState"] ?? "UNKNOWN")
        details["run_seconds"] = .double(Date().timeIntervalSince(started ?? submitted))
        let state = info["JobState"] ?? "UNKNOWN"
        let reason = info["Reason"].map { $0 == "None" ? "" : ", reason \($0)" } ?? ""
        details["slurm_log"] = .string(info["StdOut"] ?? outputFile)
        // A reattached job writes where the run that submitted it said (Slurm knows where).
        let tail = Self.tail(of: info["StdOut"] ?? outputFile, from: existingJob == nil ? outputOffset : 0, lines: 10)
        return (.ended(summary: "slurm job \(jobID) ended \(state)\(reason) (exit code \(info["ExitCode"] ?? "?"))", outputTail: tail), details)
    }

    /// sbatch options for the step's `resources:`; the step's timeout (plus a minute for the
    /// worker, in whole minutes rounded up) bounds the job's time unless the step asks for a time
    /// itself, and `defaultPartition` (`--partition`, the workspace's) applies when it names none.
    static func resourceOptions(_ resources: BundleManifest.Resources?, timeout: Double?, defaultPartition: String? = nil) -> [String] {
        var options: [String] = []
        if let cpus = resources?.cpus { options.append("--cpus-per-task=\(cpus)") }
        if let memory = resources?.memory { options.append("--mem=\(memory)") }
        if let gpus = resources?.gpus, gpus > 0 { options.append("--gres=gpu:\(gpus)") }
        if let partition = resources?.partition ?? defaultPartition { options.append("--partition=\(partition)") }
        if let time = resources?.time {
            options.append("--time=\(time)")
        } else if let timeout {
            options.append("--time=\(Int(((timeout + 60) / 60).rounded(.up)))")
        }
        return options
    }

    /// What a progress line says about a job in the queue: why it is pending (Slurm's reason:
    /// `Resources`, `Priority`, `Dependency`), or the node it runs on and any state but running.
    static func statusDetail(job: String, state: String, node: String, reason: String) -> String {
        if state == "PENDING" || state == "CONFIGURING" {
            let why = reason.isEmpty || reason == "None" || reason == "(null)" ? "" : ", reason \(reason)"
            return job + (state == "CONFIGURING" ? ", configuring" : "") + why
        }
        return job + (node.isEmpty ? "" : " on \(node)") + (state == "RUNNING" ? "" : ", \(state.lowercased())")
    }

    /// The last lines of a file from `offset` on (empty if it cannot be read).
    static func tail(of path: String, from offset: Int64, lines: Int) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: UInt64(max(0, offset)))) != nil, let data = try? handle.readToEnd() else { return "" }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// The states of a run's jobs, read with one `squeue` call per interval however many jobs wait.
actor SlurmQueue {
    private let interval: TimeInterval
    private var snapshot: [String: (state: String, node: String, reason: String)] = [:]
    private var readAt = Date.distantPast
    /// When the current snapshot's `squeue` started.
    private var reading: Task<(Date, [String: (state: String, node: String, reason: String)]), Never>?

    init(interval: TimeInterval) {
        self.interval = interval
    }

    /// The job's state, node and (pending) reason from a reading started after `since` (the job's
    /// submission) and at most one interval old; an empty state once the job has left the queue.
    func state(of job: String, since: Date) async -> (state: String, node: String, reason: String) {
        while readAt < since || Date().timeIntervalSince(readAt) >= interval {
            if reading == nil {
                let started = Date()
                reading = Task.detached {
                    let text = (try? Slurm.command(["squeue", "-h", "-o", "%i|%T|%N|%r"])) ?? ""
                    var states: [String: (state: String, node: String, reason: String)] = [:]
                    for line in text.split(separator: "\n") {
                        let fields = line.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
                        if fields.count >= 4 { states[fields[0]] = (fields[1], fields[2], fields[3]) }
                    }
                    return (started, states)
                }
            }
            guard let reading else { continue }
            let (started, states) = await reading.value
            if started >= readAt {
                snapshot = states
                readAt = started
            }
            if self.reading == reading { self.reading = nil }
        }
        return snapshot[job] ?? ("", "", "")
    }
}

/// The Slurm client commands.
enum Slurm {
    static func command(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SlurmError.commandFailed(arguments.first ?? "", errorText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Whether the job is still in the queue (pending, running or completing); `false` once it
    /// has left it or when `squeue` cannot say.
    static func isQueued(_ id: String) -> Bool {
        guard let state = try? command(["squeue", "-h", "-j", id, "-o", "%T"]) else { return false }
        return !state.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// `scontrol show job ID` as key=value pairs (Slurm keeps finished jobs for `MinJobAge`).
    static func jobInfo(_ id: String) -> [String: String] {
        guard let text = try? command(["scontrol", "show", "job", id, "-o"]) else { return [:] }
        var fields: [String: String] = [:]
        for part in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { fields[pair[0]] = pair[1] }
        }
        return fields
    }
}

/// Why the Slurm backend cannot be used.
public enum SlurmError: Error, CustomStringConvertible, Sendable {
    case unavailable
    case commandFailed(String, String)

    public var description: String {
        switch self {
        case .unavailable:
            return "no Slurm cluster answers (sinfo failed); install the Slurm client commands and set SLURM_CONF, or run with --backend local"
        case .commandFailed(let command, let message):
            return "\(command) failed: \(message)"
        }
    }
}
