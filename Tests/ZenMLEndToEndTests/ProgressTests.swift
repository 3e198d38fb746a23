import Foundation
import XCTest

/// The live progress table that a terminal gets (`script` gives zenml-run a pseudo-terminal of a
/// chosen height).
final class ProgressTests: XCTestCase {
    /// Everything zenml-run wrote to the terminal while running `arguments` in the sandbox.
    func inTerminal(_ sandbox: Sandbox, rows: Int, _ arguments: String) throws -> String {
        try Sandbox.shell("""
            cd '\(sandbox.root)' && TERM=xterm script -qec "stty rows \(rows) cols 150; '\(Sandbox.binary)' \(arguments)" /dev/null 2>&1
            """)
    }

    func testATallPipelineIsShownAsCountsAndRedrawnAFewTimesNotOncePerStep() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("quick", outputs: "{out: Dataset}", config: "{properties: {i: {type: integer}}}", script: #"""
            echo "$(num i)" > "$(out out)/value"
            echo '{"status":"ok"}'
            """#)
        let steps = (0..<200).map { String(format: "s%03d", $0) }
        try sandbox.write("pipeline.yaml", "name: tall\nsteps:\n" + steps.enumerated().map { "  \($1):\n    uses: ./bundles/quick\n    config: {i: \($0)}\n" }.joined())
        XCTAssertEqual(try sandbox.run(["init"]).exitCode, 0)

        let cold = try inTerminal(sandbox, rows: 20, "run pipeline.yaml --jobs 2")
        XCTAssertTrue(cold.contains("complete: 200 ran, 0 cached"), cold.suffix(500).description)
        XCTAssertTrue(cold.contains("200 steps: "), "counts per state: \(cold.prefix(500))")

        // A fully cached run changes state 200 times in a blink: a frame per change was 200 frames
        // of 200 lines (2 MB); now a frame is one line of counts, drawn at most ten times a second.
        let cached = try inTerminal(sandbox, rows: 20, "run pipeline.yaml")
        XCTAssertTrue(cached.contains("200 steps: 200 cached"), cached.suffix(500).description)
        XCTAssertLessThan(cached.utf8.count, 20_000, "a few frames, not one per change")
        XCTAssertFalse(cached.contains("s150  "), "no step line: the terminal is too short for them")

        // In a terminal tall enough, every step has its line.
        let tall = try inTerminal(sandbox, rows: 300, "run pipeline.yaml")
        for step in ["s000", "s123", "s199"] {
            XCTAssertTrue(tall.contains("  \(step)      cached   (from run"), "\(step) in: \(tall.suffix(300))")
        }
        XCTAssertFalse(tall.contains("200 steps: "))
    }
}
