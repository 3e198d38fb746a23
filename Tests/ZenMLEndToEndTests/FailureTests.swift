import Foundation
import XCTest

/// Steps that crash, hang, lie or escape: each fails clearly, publishes nothing and is not cached.
final class FailureTests: XCTestCase {
    func okBundle(_ sandbox: Sandbox, _ name: String, inputs: String = "{}") throws {
        try sandbox.shBundle(name, inputs: inputs, outputs: "{result: Result}", script: #"""
            O=$(out result); echo ok > "$O/ok.txt"; echo '{"status":"ok"}'
            """#)
    }

    func testFailingStepStopsDependentsWhileOthersFinish() throws {
        let sandbox = try Sandbox()
        try okBundle(sandbox, "first")
        try sandbox.shBundle("flaky", inputs: "{result: Result}", outputs: "{result: Result}", script: #"""
            O=$(out result); echo "partial" > "$O/partial.txt"
            if [ ! -f "$ZENML_BUNDLE_DIR/fixed" ]; then echo "boom: the model diverged" >&2; exit 3; fi
            echo '{"status":"ok"}'
            """#)
        try okBundle(sandbox, "after", inputs: "{result: Result}")
        try okBundle(sandbox, "independent")
        try sandbox.write("pipeline.yaml", """
            name: failing
            steps:
              first: {uses: ./bundles/first}
              flaky: {uses: ./bundles/flaky, inputs: {result: first.result}}
              after: {uses: ./bundles/after, inputs: {result: flaky.result}}
              independent: {uses: ./bundles/independent}
            """)
        let text = try sandbox.run(["run", "pipeline.yaml", "--jobs", "1"])
        XCTAssertEqual(text.exitCode, 1, text.output)
        XCTAssertTrue(text.stderr.contains("step 'flaky' failed: the step exited with code 3"), text.output)
        XCTAssertTrue(text.stderr.contains("| boom: the model diverged"), "the stderr tail must be shown: \(text.output)")
        XCTAssertTrue(text.stderr.contains("full log: "), text.output)
        XCTAssertEqual(sandbox.files(under: ".zenml/tmp"), [], "a failed step leaves nothing staged")

        var (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 1)
        XCTAssertEqual(Sandbox.states(summary), ["first": "cached", "flaky": "failed", "after": "skipped", "independent": "cached"], "a failed step is never cached")
        // No artifact contains the failed step's partial file.
        let partial = try Sandbox.shell("find '\(sandbox.root)/.zenml/artifacts' -name partial.txt")
        XCTAssertEqual(partial, "")

        try sandbox.write("bundles/flaky/fixed", "")
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["first": "cached", "flaky": "done", "after": "done", "independent": "cached"])
    }

    /// Runs a one-step pipeline whose step runs `script` and returns the text result.
    func runBadStep(_ script: String, extra: String = "", timeout: String = "") throws -> (Sandbox, Sandbox.Result) {
        let sandbox = try Sandbox()
        try sandbox.shBundle("bad", outputs: "{result: Result}", extra: extra, script: script)
        try sandbox.write("pipeline.yaml", "name: bad\nsteps:\n  bad:\n    uses: ./bundles/bad\n\(timeout)")
        return (sandbox, try sandbox.run(["run", "pipeline.yaml"]))
    }

    func assertFailsAndIsNotCached(_ sandbox: Sandbox, _ result: Sandbox.Result, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(result.exitCode, 1, result.output, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(expected), "expected '\(expected)' in: \(result.output)", file: file, line: line)
        let again = try sandbox.runPipeline().1
        XCTAssertEqual(Sandbox.states(again)["bad"], "failed", "a failed step must run again, not come from the cache", file: file, line: line)
        XCTAssertEqual(Sandbox.shell_find(sandbox, "ok.txt"), "", "nothing of the failed step may be published", file: file, line: line)
    }

    func testGarbageOnStdoutFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; echo "Epoch 1: loss 0.3"; echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "the step's stdout is not JSON (it starts with 'Epoch 1: loss 0.3")
    }

    func testTwoJSONObjectsFail() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; echo '{"status":"ok"}'; echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "must be exactly one JSON object")
    }

    func testInvalidResponseFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; echo '{"status":"ok","metrics":{"loss":"low"}}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "metrics.loss: must be a number")
    }

    func testExitZeroWithoutOutputsFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "left its declared output 'result' empty")
    }

    func testSymlinkOutOfTheOutputFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; ln -s /etc/passwd "$O/passwd"; echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "points outside the output")
    }

    func testRelativeSymlinkEscapingFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; mkdir "$O/sub"; ln -s ../../../../x "$O/sub/up"; echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "points outside the output")
    }

    func testLinkClimbingOutThroughASameNamedFolderFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; ln -s ../result/ok.txt "$O/sneaky"; echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "points outside the output")
    }

    func testUndeclaredOutputFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; mkdir "$O/../extra"; echo x > "$O/../extra/x"; echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "wrote 'extra' beside its outputs, which is not a declared output")
    }

    func testReportedErrorShowsTheStepsMessage() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; echo '{"status":"error","message":"labels column missing"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "the step reported an error: labels column missing")
    }

    func testFloodingStdoutFails() throws {
        let (sandbox, result) = try runBadStep(#"""
            O=$(out result); echo ok > "$O/ok.txt"; head -c 3000000 /dev/zero | tr '\0' 'x'; echo '{"status":"ok"}'
            """#)
        try assertFailsAndIsNotCached(sandbox, result, "printed more than 1048576 bytes on stdout")
    }

    func testMissingEntrypointIsExplained() throws {
        let sandbox = try Sandbox()
        try sandbox.write("bundles/bad/step.yaml", "name: bad\nversion: 1\nentrypoint: train.py\noutputs: {model: Model}\n")
        try sandbox.write("bundles/bad/train.py", "print('{}')\n")
        try sandbox.write("pipeline.yaml", "name: bad\nsteps:\n  bad: {uses: ./bundles/bad}\n")
        let result = try sandbox.run(["run", "pipeline.yaml"])
        XCTAssertEqual(result.exitCode, 1)
        XCTAssertTrue(result.stderr.contains("is not executable; run chmod +x on it"), result.output)
    }

    func testHangingStepHitsItsTimeoutAndItsChildrenAreKilled() throws {
        let started = Date()
        let (sandbox, result) = try runBadStep(#"""
            sleep 300 & echo $! > "$ZENML_BUNDLE_DIR/../../child.pid"
            sleep 300
            """#, extra: "timeout: 30\n", timeout: "    timeout: 1\n")
        XCTAssertLessThan(Date().timeIntervalSince(started), 15, "the pipeline's timeout (1 s) overrides the bundle's (30 s)")
        XCTAssertEqual(result.exitCode, 1, result.output)
        XCTAssertTrue(result.stderr.contains("ran longer than its timeout of 1 s"), result.output)
        let pid = try sandbox.read("child.pid").trimmingCharacters(in: .whitespacesAndNewlines)
        usleep(200_000)
        let alive = try Sandbox.shell("ps -o stat= -p \(pid) | grep -v Z || true")
        XCTAssertEqual(alive.trimmingCharacters(in: .whitespacesAndNewlines), "", "the step's background child must be killed with its process group")
    }

    func testALongStepIsVisibleAsRunningWhileItRuns() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("slow", outputs: "{result: Result}", script: #"""
            touch "$ZENML_BUNDLE_DIR/../../started"; sleep 3
            O=$(out result); echo ok > "$O/ok.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: visible\nsteps:\n  slow: {uses: ./bundles/slow}\n")
        let process = try sandbox.start(["run", "pipeline.yaml"])
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: sandbox.root + "/started") && Date() < deadline { usleep(20_000) }
        usleep(1_800_000)  // past the one second after which a running step is recorded
        let runs = try sandbox.run(["runs", "list", "--json"])
        let runID = (runs.stdout.components(separatedBy: "\"id\" : \"").dropFirst().first ?? "").components(separatedBy: "\"").first ?? ""
        let during = try sandbox.run(["runs", "show", runID])
        XCTAssertTrue(during.stdout.contains("slow: running"), during.output)
        XCTAssertEqual(try process.wait(timeout: 30).exitCode, 0)
        let after = try sandbox.run(["runs", "show", runID])
        XCTAssertTrue(after.stdout.contains("slow: complete"), after.output)
        XCTAssertTrue(after.stdout.contains("state     complete"), after.output)
    }

    func testRetriesGiveAFlakyStepMoreAttempts() throws {
        let sandbox = try Sandbox()
        // Fails on its first two attempts, then succeeds.
        try sandbox.shBundle("flaky", outputs: "{out: Text}", script: #"""
            n=$(cat "$ZENML_BUNDLE_DIR/../../attempts" 2>/dev/null || echo 0); echo $((n + 1)) > "$ZENML_BUNDLE_DIR/../../attempts"
            if [ "$n" -lt 2 ]; then echo "flaking ($n)" >&2; exit 1; fi
            echo ok > "$(out out)/ok.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: flaky\nsteps:\n  flaky: {uses: ./bundles/flaky, retries: 1}\n")
        var (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 1, "two attempts are not enough: \(result.output)")
        XCTAssertEqual(try sandbox.read("attempts").trimmingCharacters(in: .whitespacesAndNewlines), "2")
        /// The `attempts` recorded with the run's execution of the step.
        func attempts(_ summary: [String: Any]) throws -> Int? {
            let show = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? "", "--json"])
            let run = (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["run"] as? [String: Any]
            let executions = run?["executions"] as? [[String: Any]] ?? []
            XCTAssertEqual(executions.count, 1, show.stdout)
            return (executions.first?["backend"] as? [String: Any])?["attempts"] as? Int
        }
        XCTAssertEqual(try attempts(summary), 2, "the failed execution records both attempts")
        try sandbox.write("attempts", "1\n")
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["flaky": "done"])
        XCTAssertEqual(try attempts(summary), 2, "it took a second attempt")
        try sandbox.write("pipeline.yaml", "name: flaky\nsteps:\n  flaky: {uses: ./bundles/flaky, retries: 11}\n")
        result = try sandbox.run(["run", "pipeline.yaml"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("pipeline.yaml:3:") && result.stderr.contains("'retries' must be a whole number from 0 to 10"), result.output)
    }

    func testWritingIntoAnInputFailsAndTheDamagedArtifactIsRebuilt() throws {
        let sandbox = try Sandbox()
        try okBundle(sandbox, "make")
        try sandbox.shBundle("vandal", inputs: "{result: Result}", outputs: "{result: Result}", script: #"""
            I=$(inp result); O=$(out result)
            # Root ignores permission bits; so does a step that chmods. The host notices either way.
            if [ ! -f "$ZENML_BUNDLE_DIR/polite" ]; then chmod u+w "$I" 2>/dev/null; echo tampered >> "$I/ok.txt" || true; fi
            echo ok > "$O/ok.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: p\nsteps:\n  make: {uses: ./bundles/make}\n  vandal: {uses: ./bundles/vandal, inputs: {result: make.result}}\n")
        let result = try sandbox.run(["run", "pipeline.yaml"])
        XCTAssertEqual(result.exitCode, 1, result.output)
        XCTAssertTrue(result.stderr.contains("the step changed its input artifact"), result.output)
        XCTAssertEqual(try Sandbox.shell("grep -rl --include=ok.txt tampered '\(sandbox.root)/.zenml/artifacts' || true"), "", "the damaged artifact is gone from the store")
        try sandbox.write("bundles/vandal/polite", "")
        let (rerun, summary) = try sandbox.runPipeline()
        XCTAssertEqual(rerun.exitCode, 0, rerun.output)
        XCTAssertEqual(Sandbox.states(summary), ["make": "done", "vandal": "done"], "the damaged input is rebuilt, not reused")
    }

    /// A host killed with SIGKILL cannot record anything; the next run on the machine notices
    /// that its process is gone and records the run and its running step as canceled.
    func testARunWhoseHostWasKilledIsClosedByTheNextRun() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("slow", outputs: "{result: Result}", script: #"""
            touch "$ZENML_BUNDLE_DIR/../../started"; sleep 3; echo done > "$(out result)/done.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: killed\nsteps:\n  slow: {uses: ./bundles/slow}\n")
        let process = try sandbox.start(["run", "pipeline.yaml"])
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: sandbox.root + "/started") && Date() < deadline { usleep(20_000) }
        usleep(1_500_000)  // past the second after which a running step is recorded as RUNNING
        kill(process.process.processIdentifier, SIGKILL)
        _ = try process.wait(timeout: 30)
        var list = try sandbox.run(["runs", "list"])
        XCTAssertTrue(list.stdout.contains("running"), list.output)

        try sandbox.write("pipeline.yaml", "name: other\nsteps:\n  slow: {uses: ./bundles/slow}\n")
        let next = try sandbox.runPipeline().0
        XCTAssertEqual(next.exitCode, 0, next.output)
        list = try sandbox.run(["runs", "list"])
        let killed = list.stdout.split(separator: "\n").first { $0.contains("killed") } ?? ""
        XCTAssertTrue(killed.contains("canceled"), list.stdout)
        let check = try sandbox.run(["metadata", "check"])
        XCTAssertEqual(check.exitCode, 0, "no execution is left RUNNING: \(check.output)")
    }

    func testInterruptKeepsNothingPartialAndARerunCompletes() throws {
        let sandbox = try Sandbox()
        try okBundle(sandbox, "quick")
        try sandbox.shBundle("slow", inputs: "{result: Result}", outputs: "{result: Result}", script: #"""
            O=$(out result); echo half > "$O/half.txt"
            touch "$ZENML_BUNDLE_DIR/../../started"
            if [ -f "$ZENML_BUNDLE_DIR/../../slow" ]; then sleep 60; fi
            echo '{"status":"ok"}'
            """#)
        try sandbox.write("slow", "")
        try sandbox.write("pipeline.yaml", """
            name: interrupted
            steps:
              quick: {uses: ./bundles/quick}
              slow: {uses: ./bundles/slow, inputs: {result: quick.result}}
            """)
        let process = try sandbox.start(["run", "pipeline.yaml"])
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: sandbox.root + "/started") && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: sandbox.root + "/started"))
        kill(process.process.processIdentifier, SIGINT)
        let started = Date()
        let result = try process.wait(timeout: 20)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertEqual(result.exitCode, 130, result.output)
        XCTAssertEqual(try Sandbox.shell("find '\(sandbox.root)/.zenml/artifacts' -name half.txt"), "", "no partial artifact")
        XCTAssertEqual(sandbox.files(under: ".zenml/tmp"), [])
        let runs = try sandbox.run(["runs", "list", "--json"])
        XCTAssertTrue(runs.stdout.contains("\"state\" : \"canceled\""), runs.stdout)
        let show = try sandbox.run(["runs", "show", (runs.stdout.components(separatedBy: "\"id\" : \"").dropFirst().first ?? "").components(separatedBy: "\"").first ?? ""])
        XCTAssertTrue(show.stdout.contains("slow: canceled"), show.output)
        XCTAssertTrue(show.stdout.contains("quick: complete"), show.output)

        try FileManager.default.removeItem(atPath: sandbox.root + "/slow")
        let (rerun, summary) = try sandbox.runPipeline()
        XCTAssertEqual(rerun.exitCode, 0, rerun.output)
        XCTAssertEqual(Sandbox.states(summary), ["quick": "cached", "slow": "done"])
    }

    /// Another process holds the store's write lock past the busy timeout just as a step ends:
    /// that step's execution cannot be recorded, so it fails, the step after it (already started,
    /// since recording does not hold up the next step) is not recorded either, and nothing of
    /// either is recorded as complete. Once the lock is gone, both run again.
    func testAStepWhoseExecutionCannotBeRecordedFailsWithWhatComesAfterIt() throws {
        let sandbox = try Sandbox()
        try okBundle(sandbox, "first")
        // Takes the write lock for 4 s in a process of its own session (so the host does not stop
        // it with the step's process group), and ends once the lock is held.
        try sandbox.shBundle("locker", inputs: "{result: Result}", outputs: "{result: Result}", script: #"""
            O=$(out result); echo ok > "$O/ok.txt"
            DB="${O%%/.zenml/*}/.zenml/metadata.db"
            MARK="$ZENML_BUNDLE_DIR/../../locked"
            if [ ! -f "$ZENML_BUNDLE_DIR/../../unlocked" ]; then
              setsid python3 -c 'import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            open(sys.argv[2], "w").close()
            time.sleep(4)' "$DB" "$MARK" </dev/null >/dev/null 2>&1 &
              while [ ! -f "$MARK" ]; do sleep 0.02; done
            fi
            echo '{"status":"ok"}'
            """#)
        try okBundle(sandbox, "after", inputs: "{result: Result}")
        try sandbox.write("pipeline.yaml", """
            name: unrecorded
            steps:
              first: {uses: ./bundles/first}
              locker: {uses: ./bundles/locker, inputs: {result: first.result}}
              after: {uses: ./bundles/after, inputs: {result: locker.result}}
            """)
        let (result, summary) = try sandbox.runPipeline(environment: ["ZENML_SQLITE_BUSY_TIMEOUT": "2.5"])
        XCTAssertEqual(result.exitCode, 1, result.output)
        XCTAssertTrue(result.stdout.contains("cannot record the execution: another process kept the metadata store at"), result.output)
        XCTAssertTrue(result.stdout.contains("ZENML_SQLITE_BUSY_TIMEOUT"), "the message says what to do: \(result.output)")
        let states = Sandbox.states(summary)
        XCTAssertEqual(states["first"], "done")
        XCTAssertEqual(states["locker"], "failed")
        XCTAssertTrue(["failed", "skipped"].contains(states["after"] ?? ""), "\(states)")

        let recorded = try Sandbox.shell("""
            python3 -c 'import sqlite3; db = sqlite3.connect("\(sandbox.root)/.zenml/metadata.db")
            print(sorted(s for (s,) in db.execute("SELECT p.string_value FROM Execution e JOIN ExecutionProperty p ON p.execution_id = e.id AND p.name = \\"step\\" WHERE e.last_known_state IN (3, 5)")))'
            """)
        XCTAssertEqual(recorded.trimmingCharacters(in: .whitespacesAndNewlines), "['first']", "only the step recorded before the lock is complete")

        try sandbox.write("unlocked", "")
        let (again, summaryAgain) = try sandbox.runPipeline()
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertEqual(Sandbox.states(summaryAgain), ["first": "cached", "locker": "done", "after": "done"])
    }
}

extension Sandbox {
    static func shell_find(_ sandbox: Sandbox, _ name: String) -> String {
        (try? shell("find '\(sandbox.root)/.zenml/artifacts' -name '\(name)'")) ?? "?"
    }
}
