import Foundation
import XCTest

/// Bundles with a `build:` command are compiled once per bundle version and platform.
final class BuildTests: XCTestCase {
    func makeCompiledStep(_ sandbox: Sandbox, message: String = "hello") throws {
        try sandbox.write("bundles/hello/main.c", """
            #include <stdio.h>
            int main(int argc, char **argv) {
                FILE *out = fopen(argv[1], "w");
                if (!out) return 2;
                fprintf(out, "%s\\n", "\(message)");
                fclose(out);
                printf("{\\"status\\":\\"ok\\"}\\n");
                return 0;
            }
            """)
        try sandbox.write("bundles/hello/step.yaml", """
            name: hello
            version: "1"
            build: echo building >&2 && echo built >> "$ZENML_BUNDLE_DIR/../../builds.log" && cc -O2 -o "$ZENML_BUILD_DIR/hello" "$ZENML_BUNDLE_DIR/main.c"
            entrypoint: run.sh
            outputs: {text: Text}
            config:
              properties:
                n: {type: integer, default: 1}
            """)
        try sandbox.write("bundles/hello/run.sh", Sandbox.shLibrary.replacingOccurrences(of: "REQ=$(cat)", with: "#!/bin/sh\nREQ=$(cat)") + #"""
            exec "$ZENML_BUILD_DIR/hello" "$(out text)/greeting.txt"
            """#, executable: true)
    }

    func pipeline(n: Int) -> String {
        "name: built\nsteps:\n  a: {uses: ./bundles/hello, config: {n: \(n)}}\n  b: {uses: ./bundles/hello, config: {n: \(n + 100)}}\n"
    }

    func builds(_ sandbox: Sandbox) -> Int {
        ((try? sandbox.read("builds.log")) ?? "").split(separator: "\n").count
    }

    func testBuiltOnceAndReused() throws {
        let sandbox = try Sandbox()
        try makeCompiledStep(sandbox)
        try sandbox.write("pipeline.yaml", pipeline(n: 1))
        var (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["a": "done", "b": "done"])
        XCTAssertEqual(builds(sandbox), 1, "two steps of one bundle share one build")

        try sandbox.write("pipeline.yaml", pipeline(n: 2))
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(Sandbox.states(summary), ["a": "done", "b": "done"])
        XCTAssertEqual(builds(sandbox), 1, "a config change re-runs the steps, not the build")

        try makeCompiledStep(sandbox, message: "bonjour")
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(builds(sandbox), 2, "a source change rebuilds")
        let show = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? ""])
        XCTAssertTrue(show.stdout.contains("build:hello: complete"), show.stdout)
    }

    /// `runs show --json`'s executions of a run, by step name.
    func executionsByStep(_ sandbox: Sandbox, run: String) throws -> [String: [String: Any]] {
        let show = try sandbox.run(["runs", "show", run, "--json"])
        XCTAssertEqual(show.exitCode, 0, show.output)
        let object = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        var byStep: [String: [String: Any]] = [:]
        for execution in ((object?["run"] as? [String: Any])?["executions"] as? [[String: Any]] ?? []) {
            if let step = execution["step"] as? String { byStep[step] = execution }
        }
        return byStep
    }

    func testStepsNameTheirBuildAndAMissingOrDamagedBuildIsRebuilt() throws {
        let sandbox = try Sandbox()
        try makeCompiledStep(sandbox)
        try sandbox.write("pipeline.yaml", pipeline(n: 1))
        var (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(builds(sandbox), 1)
        var executions = try executionsByStep(sandbox, run: summary["run_id"] as? String ?? "")
        let built = try XCTUnwrap((executions["build:hello"]?["outputs"] as? [String: Any])?["build"] as? [String: Any], "\(executions.keys)")
        let buildID = try XCTUnwrap(built["id"] as? Int), digest = try XCTUnwrap(built["digest"] as? String)
        for step in ["a", "b"] {
            let build = executions[step]?["build"] as? [String: Any]
            XCTAssertEqual(build?["id"] as? Int, buildID, "\(step) names the build it ran")
            XCTAssertEqual(build?["type"] as? String, "BundleBuild")
            XCTAssertEqual(build?["digest"] as? String, digest)
            XCTAssertEqual((executions[step]?["inputs"] as? [String: Any])?.count, 0, "the build is not a declared input")
        }
        XCTAssertNil(executions["build:hello"]?["build"])
        let text = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? ""])
        XCTAssertTrue(text.stdout.contains("  build  BundleBuild \(digest.dropFirst(7).prefix(12))"), text.stdout)

        // Lineage leads from a step's output to the build and the build's execution, and back.
        let output = try XCTUnwrap((executions["a"]?["outputs"] as? [String: Any])?["text"] as? [String: Any])
        let lineage = try sandbox.run(["lineage", String(try XCTUnwrap(output["id"] as? Int))])
        XCTAssertEqual(lineage.exitCode, 0, lineage.output)
        XCTAssertTrue(lineage.stdout.contains("BundleBuild \(digest.dropFirst(7).prefix(12))"), lineage.stdout)
        XCTAssertTrue(lineage.stdout.contains("<- build:hello"), lineage.stdout)
        let downstream = try sandbox.run(["lineage", String(buildID), "--downstream", "--json"])
        let made = (try JSONSerialization.jsonObject(with: Data(downstream.stdout.utf8)) as? [String: Any])?["downstream"] as? [String: Any]
        XCTAssertEqual(((made?["executions"] as? [[String: Any]]) ?? []).compactMap { $0["step"] as? String }.sorted(), ["a", "b"], downstream.output)

        // A cached execution ran nothing, so it names no build.
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(Sandbox.states(summary), ["a": "cached", "b": "cached"])
        executions = try executionsByStep(sandbox, run: summary["run_id"] as? String ?? "")
        XCTAssertNil(executions["a"]?["build"])

        // The build's folder deleted from the store: built again, and the steps name the new record.
        let hex = digest.dropFirst("sha256:".count)
        let folder = "\(sandbox.root)/.zenml/artifacts/sha256/\(hex.prefix(2))/\(hex)"
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/hello"))
        try Sandbox.shell("chmod -R u+w '\(folder)' && rm -rf '\(folder)'")
        try sandbox.write("pipeline.yaml", pipeline(n: 2))
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["a": "done", "b": "done"])
        XCTAssertEqual(builds(sandbox), 2, "a deleted build is built again, once")
        executions = try executionsByStep(sandbox, run: summary["run_id"] as? String ?? "")
        let rebuilt = try XCTUnwrap(executions["a"]?["build"] as? [String: Any])
        XCTAssertNotEqual(rebuilt["id"] as? Int, buildID)
        XCTAssertEqual(rebuilt["id"] as? Int, ((executions["build:hello"]?["outputs"] as? [String: Any])?["build"] as? [String: Any])?["id"] as? Int)
        XCTAssertEqual((executions["b"]?["build"] as? [String: Any])?["id"] as? Int, rebuilt["id"] as? Int)

        // Damaged (the binary cut short): built again too, and the steps run the good binary.
        let damaged = "\(sandbox.root)/.zenml/artifacts/sha256/\(String(describing: rebuilt["digest"] ?? "").dropFirst(7).prefix(2))/\(String(describing: rebuilt["digest"] ?? "").dropFirst(7))"
        try Sandbox.shell("chmod -R u+w '\(damaged)' && head -c 100 '\(damaged)/hello' > '\(damaged)/hello.cut' && mv '\(damaged)/hello.cut' '\(damaged)/hello'")
        try sandbox.write("pipeline.yaml", pipeline(n: 3))
        (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["a": "done", "b": "done"])
        XCTAssertEqual(builds(sandbox), 3, "a damaged build is built again, once")
        executions = try executionsByStep(sandbox, run: summary["run_id"] as? String ?? "")
        XCTAssertEqual((executions["build:hello"]?["state"] as? String), "complete", "\(executions.keys)")
    }

    func testBuildFailureIsExplained() throws {
        let sandbox = try Sandbox()
        try makeCompiledStep(sandbox)
        try sandbox.write("bundles/hello/main.c", "int main( { syntax error }\n")
        try sandbox.write("pipeline.yaml", pipeline(n: 1))
        let result = try sandbox.run(["run", "pipeline.yaml"])
        XCTAssertEqual(result.exitCode, 1)
        XCTAssertTrue(result.stderr.contains("the bundle's build command failed (exit code 1)"), result.output)
        XCTAssertTrue(result.stderr.contains("error"), "the compiler's message is in the tail: \(result.output)")
    }
}
