import Foundation
import XCTest

/// Two team members' workspaces share a MariaDB metadata store and an artifact folder: what one
/// ran, the other finds and reuses. The server is a real MariaDB started on 127.0.0.1 by
/// `scripts/services/mariadb.sh` (installed if missing).
final class TeamTests: XCTestCase {
    func testSharedMySQLStoreAndArtifactFolderGiveCacheHitsAcrossWorkspaces() throws {
        let port = try Sandbox.service("mariadb.sh")
        let sandbox = try Sandbox()
        let database = "zenml_e2e_\(UUID().uuidString.prefix(8).lowercased())"
        let shared = sandbox.root + "/shared-artifacts"
        let password = ["ZENML_METADATA_PASSWORD": "zenml-test-pw"]
        for member in ["alice", "bob"] {
            try Sandbox.shell("mkdir -p '\(sandbox.root)/\(member)' && cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/\(member)/quickstart'")
            var result = try sandbox.run(["config", "metadata", "set", "mysql", "--host", "127.0.0.1", "--port", port, "--username", "zenml", "--database", database, "--workspace", member], environment: password)
            XCTAssertEqual(result.exitCode, 0, result.output)
            result = try sandbox.run(["config", "artifacts", "set", shared, "--workspace", member])
            XCTAssertEqual(result.exitCode, 0, result.output)
        }
        let config = try sandbox.read("alice/.zenml/config.json")
        XCTAssertFalse(config.contains("zenml-test-pw"), "the password is never written")

        let alice = try sandbox.run(["run", "alice/quickstart/pipeline.yaml", "--workspace", "alice", "--json"], environment: password)
        XCTAssertEqual(alice.exitCode, 0, alice.output)
        XCTAssertTrue(alice.stdout.contains("\"state\" : \"done\""), alice.stdout)

        let listed = try sandbox.run(["runs", "list", "--workspace", "bob"], environment: password)
        XCTAssertTrue(listed.stdout.contains("quickstart"), "bob sees alice's run: \(listed.output)")
        let bob = try sandbox.run(["run", "bob/quickstart/pipeline.yaml", "--workspace", "bob", "--json"], environment: password)
        XCTAssertEqual(bob.exitCode, 0, bob.output)
        XCTAssertFalse(bob.stdout.contains("\"state\" : \"done\""), "every step is reused from alice's run: \(bob.stdout)")
        XCTAssertTrue(bob.stdout.contains("\"state\" : \"cached\""), bob.stdout)

        // Bob copies alice's pipeline. Her checkout is not on his machine (moved away here): the
        // base's bundles are read from his checkout, at the same place in his workspace.
        try Sandbox.shell("mv '\(sandbox.root)/alice/quickstart' '\(sandbox.root)/alice/elsewhere'")
        let copied = try sandbox.run(
            ["pipelines", "copy", "quickstart", "quickstart-bob", "-o", "bob/quickstart/copy.yaml", "--workspace", "bob"], environment: password)
        XCTAssertEqual(copied.exitCode, 0, copied.output)
        let copy = try sandbox.run(["run", "bob/quickstart/copy.yaml", "--workspace", "bob", "--json"], environment: password)
        XCTAssertEqual(copy.exitCode, 0, copy.output)
        XCTAssertFalse(copy.stdout.contains("\"state\" : \"done\""), "an unchanged copy is all cache hits: \(copy.stdout)")
        XCTAssertEqual(copy.stdout.components(separatedBy: "\"state\" : \"cached\"").count - 1, 3, copy.stdout)

        let missing = try sandbox.run(["runs", "list", "--workspace", "bob"])
        XCTAssertEqual(missing.exitCode, 3)
        XCTAssertTrue(missing.stderr.contains("set the environment variable ZENML_METADATA_PASSWORD"), missing.stderr)
    }

    /// `metadata export | metadata import` moves a store from SQLite to MySQL and back without
    /// changing a row; `metadata info` and `check` read either.
    func testExportImportMovesAStoreBetweenSQLiteAndMySQLUnchanged() throws {
        let port = try Sandbox.service("mariadb.sh")
        let sandbox = try Sandbox()
        let password = ["ZENML_METADATA_PASSWORD": "zenml-test-pw"]
        try Sandbox.shell("mkdir -p '\(sandbox.root)/a' && cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/a/quickstart'")
        XCTAssertEqual(try sandbox.run(["run", "a/quickstart/pipeline.yaml", "--workspace", "a"]).exitCode, 0)
        let first = try sandbox.run(["metadata", "export", "--workspace", "a"])
        XCTAssertEqual(first.exitCode, 0, first.stderr)
        try sandbox.write("a.jsonl", first.stdout)

        let database = "zenml_dump_\(UUID().uuidString.prefix(8).lowercased())"
        var result = try sandbox.run(["config", "metadata", "set", "mysql", "--host", "127.0.0.1", "--port", port, "--username", "zenml", "--database", database, "--workspace", "b"], environment: password)
        XCTAssertEqual(result.exitCode, 0, result.output)
        result = try sandbox.run(["metadata", "import", sandbox.root + "/a.jsonl", "--workspace", "b"], environment: password)
        XCTAssertEqual(result.exitCode, 0, result.output)
        result = try sandbox.run(["metadata", "info", "--workspace", "b", "--json"], environment: password)
        let info = (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["metadata"] as? [String: Any]
        XCTAssertEqual(info?["backend"] as? String, "mysql", result.output)
        XCTAssertEqual(info?["runs"] as? Int, 1, result.output)
        XCTAssertEqual(try sandbox.run(["metadata", "check", "--workspace", "b"], environment: password).exitCode, 0)
        XCTAssertTrue(try sandbox.run(["runs", "list", "--workspace", "b"], environment: password).stdout.contains("quickstart"))

        // A second import into a store that has runs is refused, and changes nothing.
        result = try sandbox.run(["metadata", "import", sandbox.root + "/a.jsonl", "--workspace", "b"], environment: password)
        XCTAssertEqual(result.exitCode, 2, result.output)
        XCTAssertTrue(result.stderr.contains("already holds"), result.output)

        let fromMySQL = try sandbox.run(["metadata", "export", "--workspace", "b"], environment: password)
        try sandbox.write("b.jsonl", fromMySQL.stdout)
        result = try sandbox.run(["metadata", "import", sandbox.root + "/b.jsonl", "--workspace", "c"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        let back = try sandbox.run(["metadata", "export", "--workspace", "c"])
        XCTAssertEqual(back.stdout.split(separator: "\n").sorted(), first.stdout.split(separator: "\n").sorted(), "the same rows after SQLite -> MySQL -> SQLite")
    }

    /// Two members start the same pipeline at the same moment against one MariaDB store and one
    /// artifact folder: both runs complete, each step runs at most twice, no record is lost or
    /// duplicated, and a third run reuses everything.
    func testTwoMembersRunningAtOnceOnMySQLBothCompleteConsistently() throws {
        let port = try Sandbox.service("mariadb.sh")
        let sandbox = try Sandbox()
        let database = "zenml_race_\(UUID().uuidString.prefix(8).lowercased())"
        let password = ["ZENML_METADATA_PASSWORD": "zenml-test-pw"]
        try ConcurrentRunTests.writeSixSlowSteps(sandbox)
        for member in ["alice", "bob"] {
            var result = try sandbox.run(["config", "metadata", "set", "mysql", "--host", "127.0.0.1", "--port", port, "--username", "zenml", "--database", database, "--workspace", member], environment: password)
            XCTAssertEqual(result.exitCode, 0, result.output)
            result = try sandbox.run(["config", "artifacts", "set", sandbox.root + "/shared", "--workspace", member])
            XCTAssertEqual(result.exitCode, 0, result.output)
        }
        let first = try sandbox.start(["run", "pipeline.yaml", "--workspace", "alice", "--json"], environment: password)
        let second = try sandbox.start(["run", "pipeline.yaml", "--workspace", "bob", "--json"], environment: password)
        try ConcurrentRunTests.assertBothCompletedConsistently([try first.wait(timeout: 90), try second.wait(timeout: 90)], sandbox)
        let info = try sandbox.run(["metadata", "info", "--workspace", "alice", "--json"], environment: password)
        let counts = (try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])?["metadata"] as? [String: Any]
        XCTAssertEqual(counts?["runs"] as? Int, 2, info.output)
        XCTAssertEqual(counts?["executions"] as? Int, 12, "six per run, none lost or doubled: \(info.output)")
        XCTAssertEqual(try sandbox.run(["metadata", "check", "--workspace", "bob"], environment: password).exitCode, 0)
        let (third, summary) = try sandbox.runPipeline("pipeline.yaml", ["--workspace", "bob"], environment: password)
        XCTAssertEqual(third.exitCode, 0, third.output)
        XCTAssertTrue(Sandbox.states(summary).values.allSatisfy { $0 == "cached" }, "\(Sandbox.states(summary))")
    }
}
