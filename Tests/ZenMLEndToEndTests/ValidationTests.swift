import Foundation
import XCTest

/// Invalid pipelines are rejected before anything runs, with file:line and what to change.
final class ValidationTests: XCTestCase {
    func makeBundles(_ sandbox: Sandbox) throws {
        try sandbox.shBundle("make", outputs: "{table: Table}",
            config: "{properties: {rows: {type: integer, minimum: 1, default: 10}, mode: {type: string, enum: [fast, exact]}}, required: [mode]}",
            script: #"O=$(out table); echo x > "$O/t"; echo '{"status":"ok"}'"#)
        try sandbox.shBundle("use", inputs: "{table: Table}", outputs: "{model: Model}",
            script: #"O=$(out model); echo x > "$O/m"; echo '{"status":"ok"}'"#)
    }

    func expectRejected(_ pipeline: String, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let sandbox = try Sandbox()
        try makeBundles(sandbox)
        try sandbox.write("pipeline.yaml", pipeline)
        let result = try sandbox.run(["run", "pipeline.yaml"])
        XCTAssertEqual(result.exitCode, 2, result.output, file: file, line: line)
        for text in expected {
            XCTAssertTrue(result.stderr.contains(text), "expected '\(text)' in:\n\(result.stderr)", file: file, line: line)
        }
        // Nothing ran and nothing was recorded.
        let runs = try sandbox.run(["runs", "list", "--json"])
        XCTAssertFalse(runs.stdout.contains("\"id\""), "no run may be recorded: \(runs.output)", file: file, line: line)
    }

    func testMalformedYAMLPointsAtTheLine() throws {
        try expectRejected("name: p\nsteps:\n  make:\n    uses: ./bundles/make\n    config: {mode: fast\n", ["pipeline.yaml:6:", "invalid YAML"])
    }

    func testRealCycle() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("loop", inputs: "{x: X}", outputs: "{x: X}", script: "true")
        try sandbox.write("pipeline.yaml", """
            name: p
            steps:
              a: {uses: ./bundles/loop, inputs: {x: c.x}}
              b: {uses: ./bundles/loop, inputs: {x: a.x}}
              c: {uses: ./bundles/loop, inputs: {x: b.x}}
            """)
        let result = try sandbox.run(["run", "pipeline.yaml"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("the steps form a cycle: a -> b -> c -> a"), result.stderr)
        XCTAssertTrue(result.stderr.contains("pipeline.yaml:3:"), result.stderr)
    }

    func testUnknownStepAndOutputAndTypeMismatchAndMissingInput() throws {
        try expectRejected("""
            name: p
            steps:
              make: {uses: ./bundles/make, config: {mode: fast}}
              typo:
                uses: ./bundles/use
                inputs: {table: mkae.table}
              wrong_output:
                uses: ./bundles/use
                inputs: {table: make.tables}
              unwired:
                uses: ./bundles/use
              mismatch:
                uses: ./bundles/use
                inputs: {table: typo.model}
            """, [
                "pipeline.yaml:6:", "there is no step 'mkae'; did you mean 'make'?",
                "pipeline.yaml:9:", "step 'make' has no output 'tables' (its outputs: table)",
                "pipeline.yaml:10:", "step 'unwired' needs its input 'table' (Table)",
                "pipeline.yaml:14:", "type mismatch: input 'table' of step 'mismatch' takes Table, but 'typo.model' is Model",
            ])
    }

    func testConfigThatFailsTheSchema() throws {
        try expectRejected("""
            name: p
            steps:
              make:
                uses: ./bundles/make
                config:
                  rows: 0
                  mode: slow
                  colour: red
            """, [
                "pipeline.yaml:6:", "config key 'rows' is 0; it must be at least 1",
                "pipeline.yaml:7:", "config key 'mode' is \"slow\"; it must be one of \"fast\", \"exact\"",
                "pipeline.yaml:8:", "unknown config key 'colour'",
            ])
        try expectRejected("name: p\nsteps:\n  make:\n    uses: ./bundles/make\n", ["pipeline.yaml:3:", "required config key 'mode' is missing"])
    }

    func testMissingBundleAndBadManifest() throws {
        try expectRejected("name: p\nsteps:\n  x: {uses: ./bundles/nothing}\n", ["pipeline.yaml:3:", "there is no bundle folder at"])
        let sandbox = try Sandbox()
        try sandbox.write("bundles/v2/step.yaml", "contract: 2\nname: v2\nversion: 1\nentrypoint: run.sh\n")
        try sandbox.write("pipeline.yaml", "name: p\nsteps:\n  x: {uses: ./bundles/v2}\n")
        let result = try sandbox.run(["run", "pipeline.yaml"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("bundles/v2/step.yaml:1:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("written for contract version 2; this zenml-run speaks version 1"), result.stderr)
    }

    func testUsageErrorsExplainThemselves() throws {
        let sandbox = try Sandbox()
        let missing = try sandbox.run(["run", "nope.yaml"])
        XCTAssertEqual(missing.exitCode, 2)
        XCTAssertTrue(missing.stderr.contains("no pipeline file at 'nope.yaml'"), missing.stderr)
        let jobs = try sandbox.run(["run", "nope.yaml", "--jobs", "0"])
        XCTAssertNotEqual(jobs.exitCode, 0)
        XCTAssertTrue(jobs.stderr.contains("--jobs a value of at least 1"), jobs.stderr)
        let help = try sandbox.run(["run", "--help"])
        XCTAssertTrue(help.stdout.contains("zenml-run run pipeline.yaml --jobs 4"), help.stdout)
    }
}
