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
