import Foundation
import XCTest

/// The Slurm backend against a real single-node Slurm (slurmctld, slurmd and munge started on
/// 127.0.0.1 by `scripts/services/slurm.sh`, installed if missing).
final class SlurmTests: XCTestCase {
    var slurm: [String: String] = [:]

    override func setUpWithError() throws {
        slurm = ["SLURM_CONF": try Sandbox.service("slurm.sh", printsPort: false)]
    }

    /// Jobs Slurm finished so far (one line per job in the job completion log).
    func finishedJobs() throws -> Int {
        let log = (slurm["SLURM_CONF"].map { ($0 as NSString).deletingLastPathComponent } ?? "") + "/jobcomp.txt"
        return ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    func queue() throws -> String {
        try Sandbox.shell("SLURM_CONF='\(slurm["SLURM_CONF"] ?? "")' squeue -h -o '%i %j %T'")
    }

    func testTheQuickstartGivesTheSameDigestsThroughSlurmAndACachedRerunSubmitsNothing() throws {
        let sandbox = try Sandbox()
        for member in ["local", "cluster"] {
            try Sandbox.shell("mkdir -p '\(sandbox.root)/\(member)' && cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/\(member)/quickstart'")
        }
        let local = try sandbox.run(["run", "local/quickstart/pipeline.yaml", "--workspace", "local", "--json"])
        XCTAssertEqual(local.exitCode, 0, local.output)
        let before = try finishedJobs()
        let cluster = try sandbox.run(["run", "cluster/quickstart/pipeline.yaml", "--workspace", "cluster", "--backend", "slurm", "--json"], environment: slurm)
        XCTAssertEqual(cluster.exitCode, 0, cluster.output)
        XCTAssertEqual(try finishedJobs() - before, 5, "one job per step and per build (normalize in C, report in Swift), built on the cluster")
        func outputs(_ result: Sandbox.Result) throws -> [String: [String: String]] {
            let run = (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["run"] as? [String: Any]
            var outputs: [String: [String: String]] = [:]
            for step in run?["steps"] as? [[String: Any]] ?? [] { outputs[step["name"] as? String ?? ""] = step["outputs"] as? [String: String] }
            return outputs
        }
        XCTAssertEqual(try outputs(cluster), try outputs(local), "the same artifact digests as a local run")

        // The executions record the job, the node and the time spent queued.
        let runID = (try JSONSerialization.jsonObject(with: Data(cluster.stdout.utf8)) as? [String: Any]).flatMap { ($0["run"] as? [String: Any])?["run_id"] as? String } ?? ""
        let show = try sandbox.run(["runs", "show", runID, "--json", "--workspace", "cluster"])
        let run = (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["run"] as? [String: Any]
        let executions = (run?["executions"] as? [[String: Any]] ?? []).filter { !(($0["step"] as? String) ?? "").hasPrefix("build:") }
        XCTAssertEqual(executions.count, 3)
        let builds = (run?["executions"] as? [[String: Any]] ?? []).compactMap { $0["step"] as? String }.filter { $0.hasPrefix("build:") }
        XCTAssertEqual(builds.sorted(), ["build:normalize", "build:report"], "built for the partition, not reused from the host: \(show.stdout)")
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/cluster/.zenml/logs/" + runID)) ?? []
        for name in ["generate", "normalize", "report", "build-normalize", "build-report"] {
            XCTAssertTrue(logs.contains(name + ".slurm.log"), "each job's Slurm output file is kept: \(logs.sorted())")
        }
        for execution in executions {
            let backend = execution["backend"] as? [String: Any]
            XCTAssertEqual(backend?["backend"] as? String, "slurm", show.stdout)
            XCTAssertNotNil(Int(backend?["slurm_job_id"] as? String ?? ""), show.stdout)
            XCTAssertEqual(backend?["node"] as? String, "localhost", show.stdout)
            XCTAssertNotNil(backend?["queue_wait_seconds"] as? Double, show.stdout)
        }

        let again = try sandbox.run(["run", "cluster/quickstart/pipeline.yaml", "--workspace", "cluster", "--backend", "slurm", "--json"], environment: slurm)
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertEqual(Set(try outputs(again).keys), ["generate", "normalize", "report"])
        XCTAssertEqual(try finishedJobs() - before, 5, "a cached re-run submits no job")
    }

    /// The ML example (Python, C and Swift steps, with builds) gives through Slurm the artifacts it gives locally.
    func testThePenguinsExampleGivesTheSameDigestsThroughSlurm() throws {
        let sandbox = try Sandbox()
        try sandbox.copyExamplesAndSteps()
        let (local, localSummary) = try sandbox.runPipeline("examples/penguins/pipeline.yaml")
        XCTAssertEqual(local.exitCode, 0, local.output)
        let before = try finishedJobs()
        let (cluster, clusterSummary) = try sandbox.runPipeline("examples/penguins/pipeline.yaml", ["--backend", "slurm", "--no-cache"], environment: slurm)
        XCTAssertEqual(cluster.exitCode, 0, cluster.output)
        func outputs(_ summary: [String: Any]) -> [String: [String: String]] {
            var outputs: [String: [String: String]] = [:]
            for step in summary["steps"] as? [[String: Any]] ?? [] { outputs[step["name"] as? String ?? ""] = step["outputs"] as? [String: String] }
            return outputs
        }
        let steps = outputs(localSummary)
        XCTAssertEqual(steps.count, 7, "\(steps)")
        XCTAssertEqual(Set(Sandbox.states(clusterSummary).values), ["done"], "--no-cache runs every step: \(Sandbox.states(clusterSummary))")
        XCTAssertEqual(try finishedJobs() - before, steps.count + 3, "one job per step, and one per compiled bundle (split, train-softmax in C, statistics in Swift) built for the cluster's partition")
        XCTAssertEqual(outputs(clusterSummary), steps, "the same artifact digests as the local run")
        // Built once per partition: another run on the cluster submits only its steps.
        let again = try finishedJobs()
        let (rerun, _) = try sandbox.runPipeline("examples/penguins/pipeline.yaml", ["--backend", "slurm", "--no-cache", "--only", "train"], environment: slurm)
        XCTAssertEqual(rerun.exitCode, 0, rerun.output)
        XCTAssertEqual(try finishedJobs() - again, 4, "data, split, statistics and train; the builds are reused")
    }

    /// `resources:` in the bundle and, per step, in the pipeline (key by key over the bundle's)
    /// become the job's sbatch options, as Slurm itself reports them.
    func testResourcesFromTheBundleAndThePipelineReachTheJob() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("sized", outputs: "{out: Text}", config: "{properties: {n: {type: integer, default: 0}}}",
            extra: "resources: {cpus: 1, time: \"9\"}\n", script: #"""
            echo "$(num n)" > "$(out out)/n.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", """
            name: sized
            steps:
              plain: {uses: ./bundles/sized, config: {n: 1}}
              tuned: {uses: ./bundles/sized, config: {n: 2}, resources: {time: "7", memory: 64M}}

            """)
        let (result, summary) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm"], environment: slurm)
        XCTAssertEqual(result.exitCode, 0, result.output)
        let show = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? "", "--json"])
        let run = (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["run"] as? [String: Any]
        var jobs: [String: [String: String]] = [:]
        for execution in run?["executions"] as? [[String: Any]] ?? [] {
            guard let step = execution["step"] as? String, let id = (execution["backend"] as? [String: Any])?["slurm_job_id"] as? String else { continue }
            let text = try Sandbox.shell("SLURM_CONF='\(slurm["SLURM_CONF"] ?? "")' scontrol show job \(id) -o")
            var fields: [String: String] = [:]
            for part in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
                if pair.count == 2 { fields[pair[0]] = pair[1] }
            }
            jobs[step] = fields
        }
        XCTAssertEqual(jobs["plain"]?["TimeLimit"], "00:09:00", "the bundle's time: \(jobs)")
        XCTAssertEqual(jobs["tuned"]?["TimeLimit"], "00:07:00", "the pipeline's time replaces the bundle's: \(jobs)")
        XCTAssertEqual(jobs["tuned"]?["MinMemoryNode"], "64M", "the pipeline adds memory: \(jobs)")
        XCTAssertEqual(jobs["tuned"]?["NumCPUs"], "1", "the bundle's cpus stay: \(jobs)")

        // A mistyped resource is an error with the file and line, before anything is submitted.
        try sandbox.write("pipeline.yaml", "name: sized\nsteps:\n  plain: {uses: ./bundles/sized, resources: {memroy: 1G}}\n")
        let refused = try sandbox.run(["run", "pipeline.yaml", "--backend", "slurm"], environment: slurm)
        XCTAssertEqual(refused.exitCode, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("pipeline.yaml:3"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("unknown resource 'memroy'"), refused.stderr)
    }

    /// The step's log and Slurm's own output file of its job are kept in the workspace's logs,
    /// like a local step's log, after the work directory is gone.
    func testTheJobsOutputFileIsKeptWithTheStepsLog() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("chatty", outputs: "{out: Text}", script: #"""
            echo "chatty on stderr" >&2; echo hi > "$(out out)/a.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: chatty\nsteps:\n  chatty: {uses: ./bundles/chatty}\n")
        let (result, summary) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm"], environment: slurm)
        XCTAssertEqual(result.exitCode, 0, result.output)
        let runID = summary["run_id"] as? String ?? ""
        let logs = sandbox.root + "/.zenml/logs/" + runID
        XCTAssertTrue(try sandbox.read(".zenml/logs/\(runID)/chatty.log").contains("chatty on stderr"), "the step's log, written on the node")
        let listing = try Sandbox.shell("ls -la '\(logs)'")
        XCTAssertTrue(FileManager.default.fileExists(atPath: logs + "/chatty.slurm.log"), "Slurm's output file of the job: \(listing)")
        let backend = try executions(sandbox, run: runID).first?["backend"] as? [String: Any]
        XCTAssertEqual(backend?["slurm_log"] as? String, logs + "/chatty.slurm.log", "\(String(describing: backend))")
        XCTAssertEqual(try Sandbox.shell("find '\(sandbox.root)/.zenml' -name 'slurm-*.out'"), "", "no output file is left in a work directory")
    }

    /// A job that ends without its worker reporting (here: cancelled from outside, as an admin
    /// or a node failure would end it) fails the step with Slurm's state and the tail of the
    /// job's output file, and the execution records the state.
    func testAJobEndedOutsideTheRunIsReportedWithItsSlurmState() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("doomed", outputs: "{out: Text}", script: #"""
            touch "$ZENML_BUNDLE_DIR/../../doomed-started"; sleep 60; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: doomed\nsteps:\n  doomed: {uses: ./bundles/doomed}\n")
        let host = try sandbox.start(["run", "pipeline.yaml", "--backend", "slurm", "--json"], environment: slurm)
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: sandbox.root + "/doomed-started") && Date() < deadline { usleep(50_000) }
        let job = try queue().split(separator: "\n").first { $0.contains("zenml-doomed") }?.split(separator: " ").first.map(String.init) ?? ""
        XCTAssertNotEqual(job, "", "the job is in the queue")
        let started = Date()
        _ = try Sandbox.shell("SLURM_CONF='\(slurm["SLURM_CONF"] ?? "")' scancel \(job)")
        let result = try host.wait(timeout: 30)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the host notices the job is gone")
        XCTAssertEqual(result.exitCode, 1, result.output)
        let summary = ((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any])?["run"] as? [String: Any] ?? [:]
        XCTAssertEqual(Sandbox.states(summary), ["doomed": "failed"])
        let failure = (summary["steps"] as? [[String: Any]])?.first?["failure"] as? [String: Any]
        let message = failure?["message"] as? String ?? ""
        XCTAssertTrue(message.contains("slurm job \(job) ended CANCELLED") && message.contains("before the step reported"), message)
        XCTAssertTrue(message.hasSuffix("Slurm's output of the job: \(sandbox.root)/.zenml/logs/\(summary["run_id"] as? String ?? "")/doomed.slurm.log"), message)
        let tail = failure?["error_tail"] as? String ?? ""
        XCTAssertTrue(tail.contains("JOB \(job)") && tail.contains("CANCELLED"), "the tail of the job's output file, where slurmstepd says why: \(tail)")
        let backend = try executions(sandbox, run: summary["run_id"] as? String ?? "").first?["backend"] as? [String: Any]
        XCTAssertEqual(backend?["slurm_state"] as? String, "CANCELLED", "\(String(describing: backend))")
        XCTAssertEqual(backend?["slurm_job_id"] as? String, job)
    }

    /// `retries:` applies through Slurm: a step that fails on its first attempt is submitted again.
    func testAFlakyStepIsRetriedThroughSlurm() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("flaky", outputs: "{out: Text}", script: #"""
            n=$(cat "$ZENML_BUNDLE_DIR/../../attempts" 2>/dev/null || echo 0); echo $((n + 1)) > "$ZENML_BUNDLE_DIR/../../attempts"
            if [ "$n" -lt 1 ]; then echo "flaking ($n)" >&2; exit 1; fi
            echo ok > "$(out out)/ok.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: flaky\nsteps:\n  flaky: {uses: ./bundles/flaky, retries: 1}\n")
        let before = try finishedJobs()
        let (result, summary) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm"], environment: slurm)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["flaky": "done"])
        XCTAssertEqual(try sandbox.read("attempts").trimmingCharacters(in: .whitespacesAndNewlines), "2")
        XCTAssertEqual(try finishedJobs() - before, 2, "one job per attempt")
        let recorded = try executions(sandbox, run: summary["run_id"] as? String ?? "")
        XCTAssertEqual(recorded.count, 1)
        let backend = recorded.first?["backend"] as? [String: Any]
        XCTAssertEqual(backend?["attempts"] as? Int, 2, "\(recorded)")
        XCTAssertEqual(backend?["slurm_state"] as? String, "COMPLETED", "the last attempt's job: \(recorded)")
    }

    /// The progress view shows a queued job as pending, with its job id and Slurm's reason, then
    /// as running on its node. Two steps that each ask for every CPU of the node cannot run
    /// together: one of them is held pending (reason Resources or Priority) while the other runs.
    func testProgressShowsEachJobPendingWithItsIdBeforeRunning() throws {
        let sandbox = try Sandbox()
        let cpus = try Sandbox.shell("SLURM_CONF='\(slurm["SLURM_CONF"] ?? "")' sinfo -h -o %c").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotNil(Int(cpus), cpus)
        for name in ["left", "right"] {
            try sandbox.shBundle(name, outputs: "{out: Text}", extra: "resources: {cpus: \(cpus)}\n", script: #"""
                sleep 1; echo ok > "$(out out)/ok.txt"; echo '{"status":"ok"}'
                """#)
        }
        try sandbox.write("pipeline.yaml", "name: wide\nsteps:\n  left: {uses: ./bundles/left}\n  right: {uses: ./bundles/right}\n")
        let result = try sandbox.run(["run", "pipeline.yaml", "--backend", "slurm"], environment: slurm)
        XCTAssertEqual(result.exitCode, 0, result.output)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        var held = false
        for step in ["left", "right"] {
            let pending = lines.firstIndex { $0.contains("  \(step)  ") && $0.contains("  pending  (slurm job ") }
            let running = lines.firstIndex { $0.contains("  \(step)  ") && $0.contains("  running  (slurm job ") && $0.contains(" on localhost)") }
            XCTAssertNotNil(pending, "\(step) is shown pending with its job id: \(result.stderr)")
            XCTAssertNotNil(running, "\(step) is shown running on its node: \(result.stderr)")
            if let pending, let running {
                XCTAssertLessThan(pending, running, result.stderr)
                let job = lines[pending].components(separatedBy: "slurm job ").last?.prefix { $0.isNumber } ?? ""
                XCTAssertTrue(lines[running].contains("slurm job \(job) on"), "the same job: \(result.stderr)")
            }
            held = held || lines.contains { $0.contains("  \(step)  ") && $0.contains("  pending  (slurm job ") && $0.contains(", reason ") }
        }
        XCTAssertTrue(held, "one job waited for the other's CPUs, with Slurm's reason: \(result.stderr)")
        XCTAssertFalse(lines.contains { $0.contains("  running  (slurm job ") && !$0.contains(" on ") }, "no job is shown running before it runs: \(result.stderr)")

        // A terminal too short for the steps' lines gets counts, where pending is its own state.
        let terminal = try Sandbox.shell("""
            cd '\(sandbox.root)' && SLURM_CONF='\(slurm["SLURM_CONF"] ?? "")' TERM=xterm script -qec \
              "stty rows 3 cols 150; '\(Sandbox.binary)' run pipeline.yaml --backend slurm --no-cache" /dev/null 2>&1
            """)
        XCTAssertTrue(terminal.contains("complete: 2 ran"), terminal)
        XCTAssertTrue(terminal.contains("2 steps: 1 running, 1 pending") || terminal.contains("2 steps: 2 pending"), terminal)
    }

    /// Steps with the same cache key (same bundle, config and inputs) in one run each have their
    /// own job files: the first to finish and be recorded does not take away the result of
    /// another still running, nor does one adopt or wait for another's job. (They finish a
    /// second apart: with one shared folder, the second step found its result deleted.)
    func testStepsWithTheSameCacheKeyRunAsTheirOwnJobs() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("same", outputs: "{out: Text}", script: #"""
            echo x >> "$ZENML_BUNDLE_DIR/../../started"; sleep $(wc -l < "$ZENML_BUNDLE_DIR/../../started")
            echo same > "$(out out)/a.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: twins\nsteps:\n  one: {uses: ./bundles/same}\n  two: {uses: ./bundles/same}\n  three: {uses: ./bundles/same}\n")
        let before = try finishedJobs()
        let (result, summary) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm", "--jobs", "3"], environment: slurm)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["one": "done", "two": "done", "three": "done"], result.output)
        XCTAssertEqual(try finishedJobs() - before, 3, "one job each")
        let recorded = try executions(sandbox, run: summary["run_id"] as? String ?? "")
        XCTAssertEqual(recorded.count, 3)
        XCTAssertEqual(Set(recorded.compactMap { ($0["backend"] as? [String: Any])?["slurm_job_id"] as? String }).count, 3, "\(recorded)")
        for execution in recorded {
            XCTAssertNil((execution["backend"] as? [String: Any])?["adopted"], "no step adopts another's job of this run: \(execution)")
        }
        let jobs = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/.zenml/jobs")) ?? []
        XCTAssertEqual(jobs, [], "recorded jobs leave nothing to adopt")
    }

    /// Two runs of the same step at once each submit their own job (a live host's job is not
    /// taken over); a run started after its host was killed waits for the queued job instead.
    func testAJobOfALiveHostIsLeftAloneAndOneOfADeadHostIsWaitedFor() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("slow", outputs: "{out: Text}", config: "{properties: {n: {type: integer, default: 0}}}", script: #"""
            echo x >> "$ZENML_BUNDLE_DIR/../../started"; sleep 3; echo "$(num n)" > "$(out out)/n.txt"; echo '{"status":"ok"}'
            """#)
        func started() -> Int { ((try? sandbox.read("started")) ?? "").split(separator: "\n").count }
        func waitUntil(_ count: Int) {
            let deadline = Date().addingTimeInterval(30)
            while started() < count && Date() < deadline { usleep(50_000) }
        }
        func backend(_ result: Sandbox.Result) throws -> [String: Any] {
            let summary = ((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any])?["run"] as? [String: Any] ?? [:]
            return try executions(sandbox, run: summary["run_id"] as? String ?? "").first?["backend"] as? [String: Any] ?? [:]
        }
        try sandbox.write("pipeline.yaml", "name: slow\nsteps:\n  slow: {uses: ./bundles/slow, config: {n: 1}}\n")
        let before = try finishedJobs()
        let first = try sandbox.start(["run", "pipeline.yaml", "--backend", "slurm", "--json"], environment: slurm)
        waitUntil(1)
        let second = try sandbox.start(["run", "pipeline.yaml", "--backend", "slurm", "--json"], environment: slurm)
        waitUntil(2)
        XCTAssertEqual(started(), 2, "the second run submitted its own job while the first host waits for its one")
        let (one, two) = (try first.wait(timeout: 60), try second.wait(timeout: 60))
        XCTAssertEqual(one.exitCode, 0, one.output)
        XCTAssertEqual(two.exitCode, 0, two.output)
        XCTAssertEqual(try finishedJobs() - before, 2)
        for result in [one, two] {
            let details = try backend(result)
            XCTAssertNil(details["reattached"], "\(details)")
            XCTAssertNil(details["adopted"], "\(details)")
        }

        try sandbox.write("pipeline.yaml", "name: slow\nsteps:\n  slow: {uses: ./bundles/slow, config: {n: 2}}\n")
        let killed = try sandbox.start(["run", "pipeline.yaml", "--backend", "slurm"], environment: slurm)
        waitUntil(3)
        kill(killed.process.processIdentifier, SIGKILL)
        _ = try killed.wait(timeout: 10)
        let rerun = try sandbox.run(["run", "pipeline.yaml", "--backend", "slurm", "--json"], environment: slurm)
        XCTAssertEqual(rerun.exitCode, 0, rerun.output)
        XCTAssertEqual(started(), 3, "no new job: the rerun waited for the dead host's")
        XCTAssertEqual(try finishedJobs() - before, 3)
        XCTAssertEqual(try backend(rerun)["reattached"] as? Bool, true)
        let jobs = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/.zenml/jobs")) ?? []
        XCTAssertEqual(jobs, [], "recorded jobs leave nothing to adopt")
    }

    func testAFailingStepsDependentsAreNeverSubmittedAndCancellingEmptiesTheQueue() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("broken", outputs: "{out: Text}", script: #"""
            echo "about to fail" >&2; exit 4
            """#)
        try sandbox.shBundle("after", inputs: "{text: Text}", outputs: "{out: Text}", script: #"""
            touch "$ZENML_BUNDLE_DIR/../../after-ran"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: broken\nsteps:\n  broken: {uses: ./bundles/broken}\n  after: {uses: ./bundles/after, inputs: {text: broken.out}}\n")
        let before = try finishedJobs()
        // The workspace's default backend, instead of --backend on each run.
        let configured = try sandbox.run(["config", "backend", "set", "slurm"])
        XCTAssertEqual(configured.exitCode, 0, configured.output)
        XCTAssertTrue(try sandbox.run(["config", "show"]).stdout.contains("backend    slurm"))
        let (result, summary) = try sandbox.runPipeline("pipeline.yaml", [], environment: slurm)
        XCTAssertEqual(result.exitCode, 1, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["broken": "failed", "after": "skipped"])
        XCTAssertTrue(result.stdout.contains("about to fail"), "the stderr tail comes back from the node: \(result.stdout)")
        XCTAssertEqual(try finishedJobs() - before, 1, "the dependent was never submitted")
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.root + "/after-ran"))

        try sandbox.shBundle("slow", outputs: "{out: Text}", script: #"""
            touch "$ZENML_BUNDLE_DIR/../../slow-started"; sleep 60; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: slow\nsteps:\n  slow: {uses: ./bundles/slow}\n")
        let process = try sandbox.start(["run", "pipeline.yaml", "--backend", "slurm"], environment: slurm)
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: sandbox.root + "/slow-started") && Date() < deadline { usleep(50_000) }
        let queued = try queue()
        XCTAssertTrue(queued.contains("zenml-slow"), queued)
        kill(process.process.processIdentifier, SIGINT)
        let interrupted = try process.wait(timeout: 30)
        XCTAssertEqual(interrupted.exitCode, 130, interrupted.output)
        let left = try queue()
        XCTAssertFalse(left.contains("zenml-slow"), "no job is left in the queue: \(left)")
    }

    // MARK: Workers that stage and publish on the node

    /// A fresh bucket on the moto S3 server: its URL and the environment that reaches it.
    func motoBucket() throws -> (url: String, endpoint: String, bucket: String, environment: [String: String]) {
        let port = try Sandbox.service("s3-moto.sh")
        let bucket = "zenml-slurm-\(UUID().uuidString.prefix(8).lowercased())"
        let created = try Sandbox.shell("""
            curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 aws:amz:us-east-1:s3 \\
              -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \\
              'http://testing:testing@127.0.0.1:\(port)/\(bucket)'
            """)
        XCTAssertEqual(created, "200")
        return ("s3://\(bucket)/ws", "http://127.0.0.1:\(port)", bucket,
                ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_PROFILE": ""])
    }

    /// The artifact manifests in a moto bucket (one per published artifact, bundle snapshots too), as text.
    func manifests(in bucket: String, endpoint: String) throws -> [String] {
        func get(_ path: String) throws -> String {
            try Sandbox.shell("""
                curl -s --aws-sigv4 aws:amz:us-east-1:s3 \\
                  -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \\
                  '\(endpoint.replacingOccurrences(of: "http://", with: "http://testing:testing@"))/\(bucket)\(path)'
                """)
        }
        let listing = try get("?list-type=2&max-keys=1000")
        let keys = listing.components(separatedBy: "<Key>").dropFirst().compactMap { $0.components(separatedBy: "</Key>").first }
        return try keys.filter { $0.hasSuffix(".manifest.json") }.map { try get("/" + $0) }
    }

    /// The executions of a run, from `runs show --json`.
    func executions(_ sandbox: Sandbox, run: String, workspace: String? = nil, environment: [String: String] = [:]) throws -> [[String: Any]] {
        let show = try sandbox.run(["runs", "show", run, "--json"] + (workspace.map { ["--workspace", $0] } ?? []), environment: environment)
        XCTAssertEqual(show.exitCode, 0, show.output)
        let object = ((try? JSONSerialization.jsonObject(with: Data(show.stdout.utf8))) as? [String: Any])?["run"] as? [String: Any]
        return (object?["executions"] as? [[String: Any]] ?? []).filter { !(($0["step"] as? String) ?? "").hasPrefix("build:") }
    }

    /// With a bucket store, the worker fetches the inputs into the node's cache and publishes the
    /// outputs itself: the host's cache never holds a step's data, and the digests are a local run's.
    func testWithABucketStoreTheWorkerStagesAndPublishesOnTheNode() throws {
        let sandbox = try Sandbox()
        for member in ["local", "cluster"] {
            try Sandbox.shell("mkdir -p '\(sandbox.root)/\(member)' && cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/\(member)/quickstart'")
        }
        let local = try sandbox.run(["run", "local/quickstart/pipeline.yaml", "--workspace", "local", "--json"])
        XCTAssertEqual(local.exitCode, 0, local.output)
        let (url, endpoint, bucket, credentials) = try motoBucket()
        XCTAssertEqual(try sandbox.run(["init", "--workspace", "cluster"]).exitCode, 0)
        let configured = try sandbox.run(["config", "artifacts", "set", url, "--endpoint", endpoint, "--workspace", "cluster"], environment: credentials)
        XCTAssertEqual(configured.exitCode, 0, configured.output)
        var environment = slurm.merging(credentials) { $1 }
        environment["ZENML_NODE_CACHE"] = sandbox.root + "/node-cache"
        let cluster = try sandbox.run(["run", "cluster/quickstart/pipeline.yaml", "--workspace", "cluster", "--backend", "slurm", "--json"], environment: environment)
        XCTAssertEqual(cluster.exitCode, 0, cluster.output)
        func summary(_ result: Sandbox.Result) -> [String: Any] {
            ((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any])?["run"] as? [String: Any] ?? [:]
        }
        func outputs(_ result: Sandbox.Result) -> [String: [String: String]] {
            var outputs: [String: [String: String]] = [:]
            for step in summary(result)["steps"] as? [[String: Any]] ?? [] { outputs[step["name"] as? String ?? ""] = step["outputs"] as? [String: String] }
            return outputs
        }
        XCTAssertEqual(outputs(cluster), outputs(local), "the same artifact digests as a local run")
        let digests = outputs(cluster).values.flatMap(\.values).compactMap { $0.split(separator: ":").last.map(String.init) }
        XCTAssertEqual(digests.count, 3, cluster.stdout)
        for hex in digests {
            let relative = "/sha256/\(hex.prefix(2))/\(hex)"
            XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.root + "/cluster/.zenml/cache/artifacts" + relative),
                           "the host neither fetched nor published \(hex)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: sandbox.root + "/node-cache/artifacts" + relative),
                          "the node's cache holds \(hex): it published or fetched it")
        }
        let published = try manifests(in: bucket, endpoint: endpoint)
        for hex in digests { XCTAssertTrue(published.contains { $0.contains(hex) }, "\(hex) is in the bucket") }
        let recorded = try executions(sandbox, run: summary(cluster)["run_id"] as? String ?? "", workspace: "cluster", environment: credentials)
        XCTAssertEqual(recorded.count, 3)
        for execution in recorded {
            XCTAssertEqual((execution["backend"] as? [String: Any])?["published_by"] as? String, "worker", "\(execution)")
        }
        let jobs = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/cluster/.zenml/jobs")) ?? []
        XCTAssertEqual(jobs, [], "recorded jobs leave nothing to adopt")
    }

    /// A step that fails or is killed on the node publishes nothing, also not what it wrote before.
    func testAStepFailingOrKilledOnTheNodePublishesNothing() throws {
        let sandbox = try Sandbox()
        let (url, endpoint, bucket, credentials) = try motoBucket()
        let configured = try sandbox.run(["config", "artifacts", "set", url, "--endpoint", endpoint], environment: credentials)
        XCTAssertEqual(configured.exitCode, 0, configured.output)
        try sandbox.shBundle("source", outputs: "{out: Text}", script: #"""
            echo source > "$(out out)/a.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.shBundle("broken", inputs: "{text: Text}", outputs: "{out: Text}", script: #"""
            cat "$(inp text)/a.txt" > "$(out out)/half.txt"; echo "about to fail" >&2; exit 4
            """#)
        try sandbox.shBundle("killed", inputs: "{text: Text}", outputs: "{out: Text}", script: #"""
            cat "$(inp text)/a.txt" > "$(out out)/half.txt"; kill -KILL $$
            """#)
        try sandbox.write("pipeline.yaml", """
            name: partial
            steps:
              source: {uses: ./bundles/source}
              broken: {uses: ./bundles/broken, inputs: {text: source.out}}
              killed: {uses: ./bundles/killed, inputs: {text: source.out}}

            """)
        var environment = slurm.merging(credentials) { $1 }
        environment["ZENML_NODE_CACHE"] = sandbox.root + "/node-cache"
        let (result, summary) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm"], environment: environment)
        XCTAssertEqual(result.exitCode, 1, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["source": "done", "broken": "failed", "killed": "failed"], result.output)
        XCTAssertTrue(result.stdout.contains("about to fail"), result.stdout)
        let published = try manifests(in: bucket, endpoint: endpoint)
        XCTAssertEqual(published.filter { $0.contains("\"a.txt\"") }.count, 1, "the source's output is published: \(published)")
        XCTAssertEqual(published.filter { $0.contains("half.txt") }, [], "nothing of the failed or killed steps is")
        let staging = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/node-cache/tmp")) ?? []
        XCTAssertEqual(staging, [], "the node's work directories are gone")
    }

    /// The host is killed (SIGKILL) while a job runs; the job finishes and publishes on its own,
    /// and the next run adopts its result instead of submitting the step again.
    func testAJobThatFinishedAfterTheHostDiedIsAdoptedWithoutANewJob() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("slow", outputs: "{out: Text}", script: #"""
            touch "$ZENML_BUNDLE_DIR/../../slow-started"; sleep 3; echo done > "$(out out)/a.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: slow\nsteps:\n  slow: {uses: ./bundles/slow}\n")
        let before = try finishedJobs()
        let host = try sandbox.start(["run", "pipeline.yaml", "--backend", "slurm"], environment: slurm)
        let started = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: sandbox.root + "/slow-started") && Date() < started { usleep(50_000) }
        XCTAssertTrue(try queue().contains("zenml-slow"))
        kill(host.process.processIdentifier, SIGKILL)
        _ = try host.wait(timeout: 10)
        let finished = Date().addingTimeInterval(60)
        while try queue().contains("zenml-slow") && Date() < finished { usleep(100_000) }
        XCTAssertEqual(try finishedJobs() - before, 1, "the job ran to its end without its host")
        let jobs = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/.zenml/jobs")) ?? []
        XCTAssertEqual(jobs.count, 1, "the job's directory, named by cache key, outlived the host")

        let (rerun, summary) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm"], environment: slurm)
        XCTAssertEqual(rerun.exitCode, 0, rerun.output)
        XCTAssertEqual(Sandbox.states(summary), ["slow": "done"])
        XCTAssertEqual(try finishedJobs() - before, 1, "adopted, not submitted again")
        let recorded = try executions(sandbox, run: summary["run_id"] as? String ?? "")
        XCTAssertEqual(recorded.count, 1)
        let backend = recorded.first?["backend"] as? [String: Any]
        XCTAssertEqual(backend?["adopted"] as? Bool, true, "\(recorded)")
        XCTAssertEqual(backend?["published_by"] as? String, "worker", "\(recorded)")
        // Now recorded, it is an ordinary cache hit.
        let (again, cached) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm"], environment: slurm)
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertEqual(Sandbox.states(cached), ["slow": "cached"])
        XCTAssertEqual(try finishedJobs() - before, 1)

        // A forced run never adopts: the same key's orphaned result is dropped and the step runs.
        try FileManager.default.removeItem(atPath: sandbox.root + "/slow-started")
        let forced = try sandbox.start(["run", "pipeline.yaml", "--backend", "slurm", "--no-cache"], environment: slurm)
        let restarted = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: sandbox.root + "/slow-started") && Date() < restarted { usleep(50_000) }
        kill(forced.process.processIdentifier, SIGKILL)
        _ = try forced.wait(timeout: 10)
        let refinished = Date().addingTimeInterval(60)
        while try queue().contains("zenml-slow") && Date() < refinished { usleep(100_000) }
        XCTAssertEqual(try finishedJobs() - before, 2)
        let (fresh, freshSummary) = try sandbox.runPipeline("pipeline.yaml", ["--backend", "slurm", "--no-cache"], environment: slurm)
        XCTAssertEqual(fresh.exitCode, 0, fresh.output)
        XCTAssertEqual(try finishedJobs() - before, 3, "--no-cache submits a new job")
        let freshBackend = try executions(sandbox, run: freshSummary["run_id"] as? String ?? "").first?["backend"] as? [String: Any]
        XCTAssertNil(freshBackend?["adopted"], "\(String(describing: freshBackend))")
    }
}
