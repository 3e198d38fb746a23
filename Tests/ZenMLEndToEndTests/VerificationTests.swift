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
        try Sandbox.shell("cp -R '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/quickstart'")
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
}
