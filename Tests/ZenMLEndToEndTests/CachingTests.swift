import Foundation
import XCTest

/// The cache hit/miss matrix, driven through the real binary.
final class CachingTests: XCTestCase {
    /// source(value) -> double -> total, plus an independent `side` step.
    func makeChain(_ sandbox: Sandbox) throws {
        try sandbox.shBundle(
            "source", outputs: "{numbers: Numbers}",
            config: "{properties: {value: {type: integer, default: 1}, data: {type: string, format: path, default: data.txt}}}",
            script: #"""
                O=$(out numbers); V=$(num value); D=$(jget data)
                echo "source: writing $V" >&2
                { echo "$V"; cat "$D"; } > "$O/values.txt"
                echo '{"status":"ok","outputs":{"numbers":{"properties":{"records":1}}}}'
                """#)
        try sandbox.write("bundles/double/helper.sh", "double() { echo $(( $1 * 2 )); }\n")
        try sandbox.shBundle(
            "double", inputs: "{numbers: Numbers}", outputs: "{numbers: Numbers}",
            script: #"""
                . "$ZENML_BUNDLE_DIR/helper.sh"
                I=$(inp numbers); O=$(out numbers)
                double $(head -n1 "$I/values.txt") > "$O/values.txt"
                echo '{"status":"ok"}'
                """#)
        try sandbox.shBundle(
            "total", inputs: "{numbers: Numbers}", outputs: "{report: Report}",
            extra: "env: [TOTAL_LABEL]\n",
            script: #"""
                I=$(inp numbers); O=$(out report)
                echo "${TOTAL_LABEL:-total}=$(cat "$I/values.txt")" > "$O/report.txt"
                echo '{"status":"ok","metrics":{"total":1}}'
                """#)
        try sandbox.shBundle(
            "side", outputs: "{report: Report}",
            script: #"""
                O=$(out report); echo side > "$O/side.txt"; echo '{"status":"ok"}'
                """#)
        try sandbox.write("data.txt", "external\n")
        try writePipeline(sandbox, value: 1)
    }

    func writePipeline(_ sandbox: Sandbox, value: Int, extra: String = "") throws {
        try sandbox.write(
            "pipeline.yaml",
            """
            name: chain
            steps:
              source:
                uses: ./bundles/source
                config: {value: \(value)}
              double:
                uses: ./bundles/double
                inputs: {numbers: source.numbers}\(extra)
              total:
                uses: ./bundles/total
                inputs:
                  numbers: double.numbers
              side:
                uses: ./bundles/side

            """)
    }

    /// `pipelines copy` with another bundle for one step: the copy re-uses every step upstream of
    /// the change (no process started for them) and runs only the changed step and what follows.
    func testACopiedPipelineReusesTheStepsUpstreamOfItsChange() throws {
        let sandbox = try Sandbox()
        try makeChain(sandbox)
        try sandbox.shBundle(
            "triple", inputs: "{numbers: Numbers}", outputs: "{numbers: Numbers}",
            script: #"""
                I=$(inp numbers); O=$(out numbers)
                echo $(( $(head -n1 "$I/values.txt") * 3 )) > "$O/values.txt"
                echo '{"status":"ok"}'
                """#)
        var (result, _) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)

        result = try sandbox.run(["pipelines", "copy", "chain", "chain-triple", "--set", "double.uses=bundles/triple", "-o", "copies/triple.yaml"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        let copy = try sandbox.read("copies/triple.yaml")
        XCTAssertTrue(copy.contains("base: chain@"), copy)
        XCTAssertTrue(copy.contains("uses: \"../bundles/triple\""), copy)

        let status = try sandbox.run(["status", "copies/triple.yaml"])
        let lines = status.stdout.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("source") && $0.contains("cached") }, status.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("double") && $0.contains("vs pipeline chain: bundle file") }, status.output)

        var summary: [String: Any]
        (result, summary) = try sandbox.runPipeline("copies/triple.yaml")
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["source": "cached", "double": "done", "total": "done", "side": "cached"])
        // The steps that ran wrote nothing to stderr, so they have no log file (and none is
        // recorded); the cached ones started no process.
        let runID = summary["run_id"] as? String ?? ""
        XCTAssertEqual(sandbox.files(under: ".zenml/logs/" + runID), [], "no log files")
        let shown = try sandbox.run(["runs", "show", runID])
        XCTAssertEqual(shown.exitCode, 0, shown.output)
        XCTAssertFalse(shown.stdout.contains("double.log"), shown.stdout)
        let pipelines = try sandbox.run(["pipelines", "list"]).stdout
        XCTAssertTrue(pipelines.contains("chain-triple"), pipelines)

        // A change the base does not have is refused, and no file is left behind.
        result = try sandbox.run(["pipelines", "copy", "chain", "bad", "--set", "nosuch.uses=bundles/triple"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("the base has no step 'nosuch'"), result.output)
        result = try sandbox.run(["pipelines", "copy", "chain", "bad2", "--set", "double.config.nokey=1"])
        XCTAssertEqual(result.exitCode, 2, result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sandbox.root + "/bad2.yaml"))
    }

    /// `runs diff` on two runs that differ in one config key, one bundle file and one data row
    /// names exactly those (and what followed from them), and `runs compare` shows what they shared.
    func testDiffNamesExactlyTheConfigKeyBundleFileAndDataThatChanged() throws {
        let sandbox = try Sandbox()
        try makeChain(sandbox)
        var (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        let runA = summary["run_id"] as? String ?? ""

        try writePipeline(sandbox, value: 2)
        try sandbox.write("bundles/double/helper.sh", "double() { echo $(( $1 + $1 )); }\n")
        try sandbox.write("data.txt", "external\nanother row\n")
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        let runB = summary["run_id"] as? String ?? ""

        let diff = try sandbox.run(["runs", "diff", runA, runB])
        XCTAssertEqual(diff.exitCode, 0, diff.output)
        let lines = diff.stdout.split(separator: "\n").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertTrue(lines.contains("step source: config key data: content of \(sandbox.root)/data.txt changed"), diff.stdout)
        XCTAssertTrue(lines.contains("step source: config key value: 1 -> 2"), diff.stdout)
        XCTAssertTrue(lines.contains("step double: bundle file helper.sh changed"), diff.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("data source.data: sha256:") }, diff.stdout)
        XCTAssertTrue(lines.contains("step double: input numbers changed"), diff.stdout)

        // status --explain says the same of the next run, a change a line.
        try writePipeline(sandbox, value: 3)
        let explained = try sandbox.run(["status", "pipeline.yaml", "--explain"])
        XCTAssertTrue(explained.stdout.contains("source: would run\n    cache key sha256:"), explained.stdout)
        XCTAssertTrue(explained.stdout.contains("    - config key value: 2 -> 3\n"), explained.stdout)
        XCTAssertTrue(explained.stdout.contains("side: cached, from run \(runB)"), explained.stdout)
        try writePipeline(sandbox, value: 2)
        XCTAssertTrue(lines.contains("step total: input numbers changed"), diff.stdout)
        XCTAssertFalse(lines.contains { $0.contains("side") }, "the untouched step is not a difference: \(diff.stdout)")
        XCTAssertFalse(lines.contains { $0.hasPrefix("environment") }, "same machine: \(diff.stdout)")

        let json = try sandbox.run(["runs", "diff", runA, runB, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let steps = ((object?["comparison"] as? [String: Any])?["steps"] as? [[String: Any]]) ?? []
        XCTAssertEqual(steps.filter { $0["shared"] as? Bool == true }.compactMap { $0["name"] as? String }, ["side"], json.stdout)

        let same = try sandbox.run(["runs", "diff", runB, runB])
        XCTAssertTrue(same.stdout.contains("no differences"), same.output)
        let compare = try sandbox.run(["runs", "compare", runA, runB])
        XCTAssertTrue(compare.stdout.contains("shared steps: side"), compare.output)
    }

    func testHitMissMatrix() throws {
        let sandbox = try Sandbox()
        try makeChain(sandbox)

        var (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["source": "done", "double": "done", "total": "done", "side": "done"])

        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["source": "cached", "double": "cached", "total": "cached", "side": "cached"], "an unchanged pipeline must be fully cached")
        // The hits of a run are recorded together after their lookups: each still gets its own execution.
        let cachedIDs = (summary["steps"] as? [[String: Any]] ?? []).compactMap { $0["execution_id"] as? Int }
        XCTAssertEqual(Set(cachedIDs).count, 4, "every cached step reports its own recorded execution: \(summary)")
        let shown = try sandbox.run(["runs", "show", try XCTUnwrap(summary["run_id"] as? String), "--json"])
        XCTAssertEqual(shown.stdout.components(separatedBy: "\"cached\"").count - 1, 4, shown.output)

        // A config change re-runs the step and its dependents only.
        try writePipeline(sandbox, value: 5)
        let status = try sandbox.run(["status", "pipeline.yaml"])
        XCTAssertTrue(status.stdout.contains("config key value: 1 -> 5"), status.output)
        XCTAssertTrue(status.stdout.contains("upstream step source will run"), status.output)
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(Sandbox.states(summary), ["source": "done", "double": "done", "total": "done", "side": "cached"])

        // Editing a helper file beside the entrypoint invalidates that bundle.
        try sandbox.write("bundles/double/helper.sh", "double() { echo $(( $1 + $1 )); }\n")
        let explained = try sandbox.run(["status", "pipeline.yaml"])
        XCTAssertTrue(explained.stdout.contains("bundle file helper.sh changed"), explained.output)
        (result, summary) = try sandbox.runPipeline()
        // Same numbers come out of the changed helper, so `total` sees an identical input and is reused.
        XCTAssertEqual(Sandbox.states(summary), ["source": "cached", "double": "done", "total": "cached", "side": "cached"])

        // Touching external data does not re-run; editing it does.
        try Sandbox.shell("touch -d '2 hours ago' '\(sandbox.root)/data.txt'")
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(Sandbox.states(summary)["source"], "cached", "a touched but unchanged file must not re-run its step")
        try sandbox.write("data.txt", "external, edited\n")
        let dataStatus = try sandbox.run(["status", "pipeline.yaml"])
        XCTAssertTrue(dataStatus.stdout.contains("config key data: content of"), dataStatus.output)
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(Sandbox.states(summary)["source"], "done")
        // source's output changed, so double re-runs; it reads only the first line, so its output
        // is identical and total is reused (early cut-off on content, not on timestamps).
        XCTAssertEqual(Sandbox.states(summary)["double"], "done")
        XCTAssertEqual(Sandbox.states(summary)["total"], "cached")

        // A declared environment variable enters the key; an undeclared one does not.
        (result, summary) = try sandbox.runPipeline(environment: ["TOTAL_LABEL": "sum", "UNRELATED": "x"])
        XCTAssertEqual(Sandbox.states(summary)["total"], "done")
        XCTAssertEqual(Sandbox.states(summary)["side"], "cached")
        (result, summary) = try sandbox.runPipeline(environment: ["TOTAL_LABEL": "sum", "UNRELATED": "y"])
        XCTAssertEqual(Sandbox.states(summary)["total"], "cached")

        // --no-cache and cache: false force runs.
        (result, summary) = try sandbox.runPipeline("pipeline.yaml", ["--no-cache", "--only", "double"], environment: ["TOTAL_LABEL": "sum"])
        XCTAssertEqual(Sandbox.states(summary), ["source": "done", "double": "done"], "--only runs the step and its upstream")
        try writePipeline(sandbox, value: 5, extra: "\n    cache: false")
        (result, summary) = try sandbox.runPipeline(environment: ["TOTAL_LABEL": "sum"])
        XCTAssertEqual(Sandbox.states(summary)["double"], "done")
        XCTAssertEqual(Sandbox.states(summary)["source"], "cached")
    }

    func testCachedOutputsMustStillBeInTheStore() throws {
        let sandbox = try Sandbox()
        try makeChain(sandbox)
        XCTAssertEqual(try sandbox.runPipeline().0.exitCode, 0)
        // Remove every artifact: the recorded executions can no longer be reused.
        try Sandbox.shell("chmod -R u+w '\(sandbox.root)/.zenml/artifacts' && rm -rf '\(sandbox.root)/.zenml/artifacts/sha256'/*")
        let status = try sandbox.run(["status", "pipeline.yaml"])
        XCTAssertTrue(status.stdout.contains("outputs of the previous run are missing"), status.output)
        let (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary)["source"], "done")
    }

    func testArtifactsAreReadOnlyContentAddressedAndDeduplicated() throws {
        let sandbox = try Sandbox()
        try makeChain(sandbox)
        let (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        let steps = summary["steps"] as? [[String: Any]] ?? []
        let report = steps.first { $0["name"] as? String == "total" }?["outputs"] as? [String: String]
        let digest = try XCTUnwrap(report?["report"])
        XCTAssertTrue(digest.hasPrefix("sha256:"))
        let hex = String(digest.dropFirst(7))
        let path = "\(sandbox.root)/.zenml/artifacts/sha256/\(hex.prefix(2))/\(hex)"
        XCTAssertEqual(try String(contentsOfFile: path + "/report.txt", encoding: .utf8), "total=2\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: path + "/report.txt")
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
        XCTAssertEqual(mode & 0o222, 0, "published artifact files must be read-only")
        // Nothing is left in the staging area.
        XCTAssertEqual(sandbox.files(under: ".zenml/tmp"), [])

        // Lineage both ways: the report comes from source through double; source fed double and total.
        let upstream = try sandbox.run(["lineage", String(hex.prefix(10))])
        XCTAssertTrue(upstream.stdout.contains("<- total") && upstream.stdout.contains("<- double") && upstream.stdout.contains("<- source"), upstream.output)
        let source = (steps.first { $0["name"] as? String == "source" }?["outputs"] as? [String: String])?["numbers"] ?? ""
        let downstream = try sandbox.run(["lineage", String(source.dropFirst(7).prefix(10)), "--downstream"])
        XCTAssertEqual(downstream.exitCode, 0, downstream.output)
        let lines = downstream.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  double ") } && lines.contains { $0.hasPrefix("  total ") }, downstream.stdout)
        XCTAssertFalse(lines.contains { $0.hasPrefix("  side ") }, "side does not read source: \(downstream.stdout)")
    }
}

/// Two `zenml-run run` processes on one workspace at once.
final class ConcurrentRunTests: XCTestCase {
    /// Six independent steps of one bundle that each take 0.3 s and log their process id.
    static func writeSixSlowSteps(_ sandbox: Sandbox) throws {
        try sandbox.shBundle("work", outputs: "{result: Result}", config: "{properties: {n: {type: integer}}}", script: #"""
            O=$(out result); sleep 0.3; echo "$(num n)" > "$O/n.txt"; echo "$$" >> "$ZENML_BUNDLE_DIR/../../executions.log"
            echo '{"status":"ok"}'
            """#)
        var pipeline = "name: twice\nsteps:\n"
        for index in 0..<6 { pipeline += "  s\(index): {uses: ./bundles/work, config: {n: \(index)}}\n" }
        try sandbox.write("pipeline.yaml", pipeline)
    }

    /// Both runs succeeded, each step ran at most twice (once per process), and every step is
    /// done or cached in each run.
    static func assertBothCompletedConsistently(_ results: [Sandbox.Result], _ sandbox: Sandbox) throws {
        for result in results { XCTAssertEqual(result.exitCode, 0, result.output) }
        let executions = try sandbox.read("executions.log").split(separator: "\n").count
        XCTAssertGreaterThanOrEqual(executions, 6)
        XCTAssertLessThanOrEqual(executions, 12)
        for result in results {
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let states = Sandbox.states(object?["run"] as? [String: Any] ?? [:])
            XCTAssertEqual(states.count, 6)
            XCTAssertTrue(states.values.allSatisfy { $0 == "done" || $0 == "cached" }, "\(states)")
        }
    }

    func testTwoRunsOfTheSamePipelineAtOnceBothCompleteConsistently() throws {
        let sandbox = try Sandbox()
        try Self.writeSixSlowSteps(sandbox)
        try sandbox.run(["init"])
        let first = try sandbox.start(["run", "pipeline.yaml", "--json"])
        let second = try sandbox.start(["run", "pipeline.yaml", "--json"])
        try Self.assertBothCompletedConsistently([try first.wait(timeout: 60), try second.wait(timeout: 60)], sandbox)
        // Identical outputs were stored once, and a third run reuses everything.
        let artifacts = try Sandbox.shell("find '\(sandbox.root)/.zenml/artifacts/sha256' -mindepth 2 -maxdepth 2 -type d | wc -l")
        XCTAssertEqual(Int(artifacts.trimmingCharacters(in: .whitespacesAndNewlines)), 7, "one artifact per distinct output, and the one stored copy of the bundle")
        let (third, summary) = try sandbox.runPipeline()
        XCTAssertEqual(third.exitCode, 0, third.output)
        XCTAssertTrue(Sandbox.states(summary).values.allSatisfy { $0 == "cached" }, "\(Sandbox.states(summary))")
        XCTAssertEqual(sandbox.files(under: ".zenml/tmp"), [])
    }
}
