import Foundation
import XCTest

/// `runs verify`: deterministic steps verify, a step that writes the time does not (naming the
/// file), and TFRecords re-encoded with another compression count as the same records.
final class VerificationTests: XCTestCase {
    func testVerifyNamesTheFileOfANonDeterministicStepAndAcceptsReencodedRecords() throws {
        let sandbox = try Sandbox()
        let vectors = Sandbox.repository + "/../shared/testdata/tfrecord"
        try sandbox.shBundle("stable", outputs: "{out: Text}", script: #"""
            echo "seeded $(num seed)" > "$(out out)/value.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.shBundle("clock", outputs: "{out: Text}", script: #"""
            O=$(out out); echo fixed > "$O/fixed.txt"; date +%s%N > "$O/time.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.shBundle("after", inputs: "{text: Text}", outputs: "{out: Text}", script: #"""
            wc -l < "$(inp text)/fixed.txt" > "$(out out)/count.txt"; echo '{"status":"ok"}'
            """#)
        // Writes the same records uncompressed, then GZIP-compressed, then uncompressed...
        try sandbox.shBundle("recode", outputs: "{examples: Examples}", extra: "env: [RECODE_STATE, RECODE_VECTORS]\n", script: #"""
            n=$(cat "$RECODE_STATE" 2>/dev/null || echo 0); echo $((n + 1)) > "$RECODE_STATE"
            if [ $((n % 2)) -eq 0 ]; then f=examples.tfrecord; else f=examples.gz.tfrecord; fi
            cp "$RECODE_VECTORS/$f" "$(out examples)/data-00000-of-00001.tfrecord"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", """
            name: verified
            steps:
              stable: {uses: ./bundles/stable}
              clock: {uses: ./bundles/clock}
              after: {uses: ./bundles/after, inputs: {text: clock.out}}
              recode: {uses: ./bundles/recode}
            """)
        let environment = ["RECODE_STATE": sandbox.root + "/recode-state", "RECODE_VECTORS": vectors]
        let (result, summary) = try sandbox.runPipeline(environment: environment)
        XCTAssertEqual(result.exitCode, 0, result.output)
        let runID = summary["run_id"] as? String ?? ""

        let verify = try sandbox.run(["runs", "verify", runID, "--json"], environment: environment)
        XCTAssertEqual(verify.exitCode, 1, verify.output)
        let object = try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any]
        let steps = ((object?["verification"] as? [String: Any])?["steps"] as? [[String: Any]]) ?? []
        var verdicts: [String: String] = [:]
        for step in steps { verdicts[step["name"] as? String ?? ""] = step["verdict"] as? String }
        XCTAssertEqual(verdicts, ["stable": "reproducible", "clock": "differs", "after": "reproducible", "recode": "reproducible"], verify.stdout)
        let clock = steps.first { $0["name"] as? String == "clock" }
        XCTAssertEqual((clock?["outputs"] as? [[String: Any]])?.first?["differing_files"] as? [String], ["time.txt"], verify.stdout)
        let recode = steps.first { $0["name"] as? String == "recode" }
        XCTAssertTrue((recode?["message"] as? String ?? "").contains("same records"), verify.stdout)
        XCTAssertEqual((recode?["outputs"] as? [[String: Any]])?.first?["same_records"] as? Bool, true, verify.stdout)

        let text = try sandbox.run(["runs", "verify", runID], environment: environment)
        XCTAssertTrue(text.stdout.contains("differs in out/time.txt"), text.output)
        XCTAssertTrue(text.stdout.contains("NOT reproducible"), text.output)
        // Nothing was recorded: the run list has the one run.
        let runs = try sandbox.run(["runs", "list", "--json"])
        XCTAssertEqual(((try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [String: Any])?["runs"] as? [Any])?.count, 1)
    }

    func testADeterministicPipelineVerifiesAndADifferentRecordIsNamed() throws {
        let sandbox = try Sandbox()
        try Sandbox.shell("cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/quickstart'")
        var (result, summary) = try sandbox.runPipeline("quickstart/pipeline.yaml")
        XCTAssertEqual(result.exitCode, 0, result.output)
        var verify = try sandbox.run(["runs", "verify", summary["run_id"] as? String ?? ""])
        XCTAssertEqual(verify.exitCode, 0, verify.output)
        XCTAssertTrue(verify.stdout.contains("reproducible: every step gave its recorded outputs"), verify.output)

        // A step whose second record changes between executions.
        let vectors = Sandbox.repository + "/../shared/testdata/tfrecord"
        try sandbox.shBundle("drift", outputs: "{examples: Examples}", extra: "env: [DRIFT_STATE, DRIFT_VECTORS]\n", script: #"""
            n=$(cat "$DRIFT_STATE" 2>/dev/null || echo 0); echo $((n + 1)) > "$DRIFT_STATE"
            if [ "$n" -eq 0 ]; then f=examples.tfrecord; else f=raw.tfrecord; fi
            cp "$DRIFT_VECTORS/$f" "$(out examples)/data.tfrecord"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: drifting\nsteps:\n  drift: {uses: ./bundles/drift}\n")
        let environment = ["DRIFT_STATE": sandbox.root + "/drift-state", "DRIFT_VECTORS": vectors]
        (result, summary) = try sandbox.runPipeline(environment: environment)
        XCTAssertEqual(result.exitCode, 0, result.output)
        verify = try sandbox.run(["runs", "verify", summary["run_id"] as? String ?? ""], environment: environment)
        XCTAssertEqual(verify.exitCode, 1, verify.output)
        XCTAssertTrue(verify.stdout.contains("examples: first difference at data: record 0 differs"), verify.output)
    }

    /// `runs reproduce` and `pipelines export` in a fresh folder that has only the stores: no
    /// bundles, no data files, no pipeline file. The outputs have the original digests.
    func testReproduceAndExportWorkFromTheStoresAlone() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("read", outputs: "{out: Text}",
            config: "{properties: {data: {type: string, format: path}, factor: {type: integer, default: 2}}}",
            script: #"""
                awk -v f=$(num factor) '{ print $1 * f }' "$(jget data)" > "$(out out)/scaled.txt"; echo '{"status":"ok"}'
                """#)
        try sandbox.shBundle("sum", inputs: "{text: Text}", outputs: "{out: Text}", script: #"""
            awk '{ s += $1 } END { print s }' "$(inp text)/scaled.txt" > "$(out out)/sum.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("team/data/numbers.txt", "1\n2\n3\n")
        try sandbox.write("team/pipeline.yaml", """
            name: numbers
            steps:
              read: {uses: ../bundles/read, config: {data: data/numbers.txt, factor: 3}}
              sum: {uses: ../bundles/sum, inputs: {text: read.out}}
            """)
        let (result, summary) = try sandbox.runPipeline("team/pipeline.yaml")
        XCTAssertEqual(result.exitCode, 0, result.output)
        let runID = summary["run_id"] as? String ?? ""
        let outputs = (summary["steps"] as? [[String: Any]] ?? []).map { $0["outputs"] as? [String: String] ?? [:] }

        // The working tree goes away: only the stores (.zenml) are left, and a fresh folder.
        try Sandbox.shell("rm -rf '\(sandbox.root)/bundles' '\(sandbox.root)/team'")
        let member = sandbox.root + "/fresh"
        try FileManager.default.createDirectory(atPath: member, withIntermediateDirectories: true)
        let workspace = sandbox.root

        var step = try sandbox.run(["runs", "reproduce", runID, "--no-cache", "--into", member + "/repro", "--workspace", workspace, "--json"])
        XCTAssertEqual(step.exitCode, 0, step.output)
        let reproduced = try JSONSerialization.jsonObject(with: Data(step.stdout.utf8)) as? [String: Any]
        let steps = (reproduced?["run"] as? [String: Any])?["steps"] as? [[String: Any]] ?? []
        XCTAssertEqual(steps.map { $0["state"] as? String }, ["done", "done"], step.output)
        XCTAssertEqual(steps.map { $0["outputs"] as? [String: String] ?? [:] }, outputs, "the same digests, executed again")

        step = try sandbox.run(["pipelines", "export", "numbers", "-o", member + "/pinned.yaml", "--workspace", workspace])
        XCTAssertEqual(step.exitCode, 0, step.output)
        let pinned = try String(contentsOfFile: member + "/pinned.yaml", encoding: .utf8)
        XCTAssertTrue(pinned.contains("\"data\" : \"sha256:"), pinned)
        XCTAssertFalse(pinned.contains("numbers.txt"), pinned)
        step = try sandbox.run(["run", member + "/pinned.yaml", "--workspace", workspace, "--json"])
        XCTAssertEqual(step.exitCode, 0, step.output)
        let rerun = try JSONSerialization.jsonObject(with: Data(step.stdout.utf8)) as? [String: Any]
        let states = ((rerun?["run"] as? [String: Any])?["steps"] as? [[String: Any]] ?? []).map { $0["state"] as? String }
        XCTAssertEqual(states, ["cached", "cached"], "the pinned file has the original cache keys: \(step.stdout)")
    }

    /// A run from a work tree with uncommitted changes records the commit, that it was dirty, and the diff.
    func testADirtyWorkTreeIsRecordedWithItsDiff() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("one", outputs: "{out: Text}", script: #"""
            echo 1 > "$(out out)/one.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: tracked\nsteps:\n  one: {uses: ./bundles/one}\n")
        try sandbox.write("notes.txt", "first\n")
        _ = try Sandbox.shell("cd '\(sandbox.root)' && git init -q && git add pipeline.yaml bundles notes.txt && git -c user.email=t@example.com -c user.name=t commit -qm init")
        try sandbox.write("notes.txt", "first\nsecond line, not committed\n")
        let (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        let show = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? "", "--json"])
        let run = (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["run"] as? [String: Any]
        let record = run?["run"] as? [String: Any]
        XCTAssertEqual(record?["git_dirty"] as? Bool, true, show.stdout)
        XCTAssertEqual((record?["git_commit"] as? String)?.count, 40, show.stdout)
        XCTAssertTrue((record?["git_diff"] as? String ?? "").contains("+second line, not committed"), show.stdout)
    }
}
