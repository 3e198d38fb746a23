import Foundation
import XCTest

/// `metadata info` and `metadata check` on a SQLite store, including one damaged behind our back.
final class MetadataCommandTests: XCTestCase {
    func testCheckFindsRecordsPointingAtMissingOnes() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("one", outputs: "{out: Text}", script: #"""
            echo 1 > "$(out out)/one.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: checked\nsteps:\n  one: {uses: ./bundles/one}\n")
        XCTAssertEqual(try sandbox.runPipeline().0.exitCode, 0)
        var result = try sandbox.run(["metadata", "info"])
        XCTAssertTrue(result.stdout.contains("schema      ML Metadata version 10") && result.stdout.contains("runs        1"), result.output)
        result = try sandbox.run(["metadata", "check"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertTrue(result.stdout.contains("ok: no problems found"), result.output)

        // Another tool deletes the output artifact's row but leaves its event and properties.
        _ = try Sandbox.shell("""
            python3 -c "import sqlite3; db = sqlite3.connect('\(sandbox.root)/.zenml/metadata.db'); \
            db.execute(\\"DELETE FROM Artifact WHERE id = (SELECT artifact_id FROM Event WHERE type = 4 LIMIT 1)\\"); db.commit()"
            """)
        result = try sandbox.run(["metadata", "check"])
        XCTAssertEqual(result.exitCode, 1, result.output)
        XCTAssertTrue(result.stdout.contains("problem: 1 events naming a missing artifact"), result.output)
        XCTAssertTrue(result.stdout.contains("artifact properties of a missing artifact"), result.output)
    }
}
