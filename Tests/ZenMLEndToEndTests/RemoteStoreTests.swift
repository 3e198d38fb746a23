import Foundation
import XCTest

/// Two team members on two "machines" (separate folders and HOMEs) share a MariaDB metadata store
/// and a bucket: a gs:// bucket on the GCS emulator, or an s3:// bucket on OpenStack Swift (which
/// verifies SigV4 signatures). Servers are started on 127.0.0.1 by `scripts/services/`.
final class RemoteStoreTests: XCTestCase {
    struct ServerUnavailable: Error, CustomStringConvertible { var description: String }

    func startService(_ script: String) throws -> String {
        let log = "/tmp/zenml-e2e-\(script).log"
        let port = try Sandbox.shell("'\(Sandbox.repository)/scripts/services/\(script)' start 2>\(log)").trimmingCharacters(in: .whitespacesAndNewlines)
        // A missing server is a broken test setup, not a reason to pass quietly.
        guard Int(port) != nil else { throw ServerUnavailable(description: "could not start \(script): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")") }
        return port
    }

    enum Backend { case gcs, s3 }

    /// The bucket URL, the `config artifacts set` extras and each member's environment.
    func prepareBucket(_ backend: Backend, sandbox: Sandbox) throws -> (url: String, options: [String], environment: [String: [String: String]]) {
        let bucket = "zenml-team-\(UUID().uuidString.prefix(8).lowercased())"
        switch backend {
        case .gcs:
            let port = try startService("gcs-emulator.sh")
            let created = try Sandbox.shell("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{\"name\":\"\(bucket)\"}' 'http://127.0.0.1:\(port)/storage/v1/b?project=test'")
            XCTAssertEqual(created, "200")
            let environment = ["STORAGE_EMULATOR_HOST": "http://127.0.0.1:\(port)"]
            return ("gs://\(bucket)/team", [], ["alice": environment, "bob": environment])
        case .s3:
            let port = try startService("swift-s3.sh")
            let created = try Sandbox.shell("""
                curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 aws:amz:us-east-1:s3 \
                  -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
                  'http://test%3Atester:testing@127.0.0.1:\(port)/\(bucket)'
                """)
            XCTAssertEqual(created, "200")
            // Alice has her keys in the environment, Bob in ~/.aws/credentials.
            try sandbox.write("bob-home/.aws/credentials", "[default]\naws_access_key_id = test:tester\naws_secret_access_key = testing\n")
            return ("s3://\(bucket)/team", ["--endpoint", "http://127.0.0.1:\(port)"],
                    ["alice": ["AWS_ACCESS_KEY_ID": "test:tester", "AWS_SECRET_ACCESS_KEY": "testing"], "bob": [:]])
        }
    }

    func collaborate(_ backend: Backend) throws {
        let mysqlPort = try startService("mariadb.sh")
        let sandbox = try Sandbox()
        let (url, options, credentials) = try prepareBucket(backend, sandbox: sandbox)
        let database = "zenml_e2e_\(UUID().uuidString.prefix(8).lowercased())"
        var environment: [String: [String: String]] = [:]
        for member in ["alice", "bob"] {
            // Separate HOMEs, and none of the test runner's own cloud settings.
            var env = ["HOME": sandbox.root + "/\(member)-home", "ZENML_METADATA_PASSWORD": "zenml-test-pw",
                       "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "STORAGE_EMULATOR_HOST": ""]
            env.merge(credentials[member] ?? [:]) { _, new in new }
            if env["AWS_PROFILE"] == "" { env["AWS_PROFILE"] = "default" }
            environment[member] = env
            try Sandbox.shell("mkdir -p '\(sandbox.root)/\(member)-home' '\(sandbox.root)/\(member)' && cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/\(member)/quickstart'")
            var result = try sandbox.run(["config", "metadata", "set", "mysql", "--host", "127.0.0.1", "--port", mysqlPort, "--username", "zenml", "--database", database, "--workspace", member], environment: env)
            XCTAssertEqual(result.exitCode, 0, result.output)
            result = try sandbox.run(["config", "artifacts", "set", url] + options + ["--workspace", member], environment: env)
            XCTAssertEqual(result.exitCode, 0, result.output)
        }
        let config = try sandbox.read("alice/.zenml/config.json")
        XCTAssertTrue(config.contains(url.replacingOccurrences(of: "/", with: "\\/")), config)
        XCTAssertFalse(config.contains("testing") || config.contains("zenml-test-pw"), "no secret is written: \(config)")

        // Alice runs the pipeline: every step runs and its outputs go to the bucket.
        let (alice, aliceSummary) = try sandbox.runPipeline("alice/quickstart/pipeline.yaml", ["--workspace", "alice"], environment: environment["alice"]!)
        XCTAssertEqual(alice.exitCode, 0, alice.output)
        XCTAssertEqual(Set(Sandbox.states(aliceSummary).values), ["done"], alice.stdout)
        let reportDigest = try XCTUnwrap(((aliceSummary["steps"] as? [[String: Any]])?.first { $0["name"] as? String == "report" }?["outputs"] as? [String: String])?.values.first)

        // Bob runs the same pipeline: all cache hits on Alice's artifacts, no step process, no download.
        let (bob, bobSummary) = try sandbox.runPipeline("bob/quickstart/pipeline.yaml", ["--workspace", "bob"], environment: environment["bob"]!)
        XCTAssertEqual(bob.exitCode, 0, bob.output)
        XCTAssertEqual(Set(Sandbox.states(bobSummary).values), ["cached"], bob.stdout)
        XCTAssertEqual(sandbox.files(under: "bob/.zenml/cache/artifacts/sha256"), [], "a cache hit downloads nothing")
        XCTAssertEqual(sandbox.files(under: "bob/.zenml/logs").filter { $0.hasSuffix(".log") }, [], "no step process ran (a step's log is its output)")

        // Bob can still read Alice's output: it is fetched from the bucket and verified.
        let export = try sandbox.run(["artifacts", "export", String(reportDigest.dropFirst("sha256:".count).prefix(16)), "bob/report-copy", "--workspace", "bob"], environment: environment["bob"]!)
        XCTAssertEqual(export.exitCode, 0, export.output)
        XCTAssertFalse(sandbox.files(under: "bob/report-copy").isEmpty)
        XCTAssertEqual(
            try Sandbox.shell("cd '\(sandbox.root)/bob/report-copy' && find . -type f | sort | xargs cat | sha256sum"),
            try Sandbox.shell("cd \"$(ls -d '\(sandbox.root)'/alice/.zenml/cache/artifacts/sha256/*/\(reportDigest.dropFirst(7)))\" && find . -type f | sort | xargs cat | sha256sum"))

        // Alice sees Bob's run.
        let listed = try sandbox.run(["runs", "list", "--workspace", "alice", "--json"], environment: environment["alice"]!)
        XCTAssertEqual(listed.exitCode, 0, listed.output)
        let bobRun = try XCTUnwrap(bobSummary["id"] as? String ?? bobSummary["run_id"] as? String ?? bobSummary["runID"] as? String, "\(bobSummary.keys)")
        XCTAssertTrue(listed.stdout.contains(bobRun), listed.stdout)

        // Without credentials, the error names what to set.
        var bare = environment["bob"]!
        bare["HOME"] = sandbox.root + "/nobody"
        bare["STORAGE_EMULATOR_HOST"] = nil
        if backend == .s3 {
            let refused = try sandbox.run(["run", "bob/quickstart/pipeline.yaml", "--workspace", "bob"], environment: bare)
            XCTAssertEqual(refused.exitCode, 3, refused.output)
            XCTAssertTrue(refused.stderr.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), refused.stderr)
            var wrong = environment["alice"]!
            wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
            let denied = try sandbox.run(["run", "alice/quickstart/pipeline.yaml", "--workspace", "alice"], environment: wrong)
            XCTAssertNotEqual(denied.exitCode, 0, denied.output)
            XCTAssertTrue(denied.output.contains("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), denied.output)
            XCTAssertFalse(denied.output.contains("not-the-secret"), "the secret is never printed")
        }
    }

    func testTeamSharesAGCSBucket() throws { try collaborate(.gcs) }

    func testTeamSharesAnS3Bucket() throws { try collaborate(.s3) }

    /// A run killed while uploading a large output leaves no artifact; the next run publishes it.
    func testKilledUploadIsInvisibleAndTheNextRunRepublishes() throws {
        let port = try startService("gcs-emulator.sh")
        let sandbox = try Sandbox()
        let bucket = "zenml-kill-\(UUID().uuidString.prefix(8).lowercased())"
        XCTAssertEqual(try Sandbox.shell("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{\"name\":\"\(bucket)\"}' 'http://127.0.0.1:\(port)/storage/v1/b?project=test'"), "200")
        // One output of 200 files of 256 KiB, uploaded one at a time: slow enough to be killed half-way.
        try sandbox.shBundle("big", outputs: "{data: Dataset}", script: #"""
            O=$(out data)
            i=0; while [ $i -lt 200 ]; do head -c 262144 /dev/urandom > "$O/part-$i"; i=$((i+1)); done
            echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: big\nsteps:\n  big:\n    uses: ./bundles/big\n")
        let env = ["STORAGE_EMULATOR_HOST": "http://127.0.0.1:\(port)", "ZENML_TRANSFERS": "1", "HOME": sandbox.root]
        XCTAssertEqual(try sandbox.run(["init"], environment: env).exitCode, 0)
        XCTAssertEqual(try sandbox.run(["config", "artifacts", "set", "gs://\(bucket)/a"], environment: env).exitCode, 0)
        let listURL = "http://127.0.0.1:\(port)/storage/v1/b/\(bucket)/o?prefix=a/"
        let process = try sandbox.start(["run", "pipeline.yaml"], environment: env)
        let deadline = Date().addingTimeInterval(60)
        var uploaded = 0
        while Date() < deadline {
            uploaded = Int(try Sandbox.shell("curl -s '\(listURL)' | grep -o '\"name\": \"a/sha256/[^\"]*/part-' | wc -l").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            if uploaded >= 20 { break }
            usleep(20_000)
        }
        kill(process.process.processIdentifier, SIGKILL)
        _ = try process.wait(timeout: 10)
        XCTAssertGreaterThanOrEqual(uploaded, 20, "the upload had started")
        // Manifests (one per published artifact): before the step ran, the run kept a copy of the
        // bundle; the step's output, killed half-way, must have none.
        func manifests() throws -> Int {
            Int(try Sandbox.shell("curl -s '\(listURL)' | grep -o '\"name\": \"a/sha256/[^\"]*\\.manifest\\.json\"' | sort -u | wc -l")
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let afterKill = try Sandbox.shell("curl -s '\(listURL)'")
        XCTAssertEqual(try manifests(), 1, "only the bundle's copy, no output artifact: \(afterKill.prefix(300))")
        XCTAssertLessThan(afterKill.components(separatedBy: "/part-").count - 1, 200, "killed before the end")

        let (again, summary) = try sandbox.runPipeline("pipeline.yaml", [], environment: env)
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertEqual(Sandbox.states(summary)["big"], "done", "nothing was published, so the step runs again")
        XCTAssertEqual(try manifests(), 2, "the output is published now")
        let (third, thirdSummary) = try sandbox.runPipeline("pipeline.yaml", [], environment: env)
        XCTAssertEqual(third.exitCode, 0, third.output)
        XCTAssertEqual(Sandbox.states(thirdSummary)["big"], "cached")
    }
}
