import Foundation
import XCTest

/// Two team members on two "machines" (separate workspaces and HOMEs) share a MariaDB metadata
/// store and a bucket: a gs:// bucket on the GCS emulator, or an s3:// bucket on OpenStack Swift (which
/// verifies SigV4 signatures). Servers are started on 127.0.0.1 by `scripts/services/`.
final class RemoteStoreTests: XCTestCase {
    enum Backend { case gcs, s3 }

    /// The bucket URL, the `config artifacts set` extras and each member's environment.
    func prepareBucket(_ backend: Backend, sandbox: Sandbox) throws -> (url: String, options: [String], environment: [String: [String: String]]) {
        let bucket = "zenml-team-\(UUID().uuidString.prefix(8).lowercased())"
        switch backend {
        case .gcs:
            let port = try Sandbox.service("gcs-emulator.sh", "fresh")
            let created = try Sandbox.shell("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{\"name\":\"\(bucket)\"}' 'http://127.0.0.1:\(port)/storage/v1/b?project=test'")
            XCTAssertEqual(created, "200")
            let environment = ["STORAGE_EMULATOR_HOST": "http://127.0.0.1:\(port)"]
            return ("gs://\(bucket)/team", [], ["alice": environment, "bob": environment])
        case .s3:
            let port = try Sandbox.service("swift-s3.sh")
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

    /// The collaboration scenario of the issue, on the penguins pipeline (seven bundles in Python and C).
    ///
    /// Each member has the project checked out in a folder of their own, and Alice's checkout is
    /// out of Bob's reach while he works (as on another machine): a copy of Alice's pipeline is
    /// built from the bundles her run kept in the stores, pinned by digest, not from her files.
    /// Their workspaces, HOMEs, credentials and artifact caches are separate.
    func collaborate(_ backend: Backend) throws {
        let mysqlPort = try Sandbox.service("mariadb.sh")
        let sandbox = try Sandbox()
        let (url, options, credentials) = try prepareBucket(backend, sandbox: sandbox)
        let database = "zenml_e2e_\(UUID().uuidString.prefix(8).lowercased())"
        try sandbox.copyExamplesAndSteps(into: "alice-src/project")
        try sandbox.copyExamplesAndSteps(into: "bob-checkout")
        let pipeline = "alice-src/project/examples/penguins/pipeline.yaml"
        let bobPipeline = "bob-checkout/examples/penguins/pipeline.yaml"
        var environment: [String: [String: String]] = [:]
        for member in ["alice", "bob"] {
            // Separate HOMEs, and none of the test runner's own cloud settings.
            var env = ["HOME": sandbox.root + "/\(member)-home", "ZENML_METADATA_PASSWORD": "zenml-test-pw",
                       "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "STORAGE_EMULATOR_HOST": ""]
            env.merge(credentials[member] ?? [:]) { _, new in new }
            if env["AWS_PROFILE"] == "" { env["AWS_PROFILE"] = "default" }
            environment[member] = env
            try Sandbox.shell("mkdir -p '\(sandbox.root)/\(member)-home' '\(sandbox.root)/\(member)'")
            var result = try sandbox.run(["config", "metadata", "set", "mysql", "--host", "127.0.0.1", "--port", mysqlPort, "--username", "zenml", "--database", database, "--workspace", member], environment: env)
            XCTAssertEqual(result.exitCode, 0, result.output)
            result = try sandbox.run(["config", "artifacts", "set", url] + options + ["--workspace", member], environment: env)
            XCTAssertEqual(result.exitCode, 0, result.output)
        }
        let alice = environment["alice"]!, bob = environment["bob"]!
        let config = try sandbox.read("alice/.zenml/config.json")
        XCTAssertTrue(config.contains(url.replacingOccurrences(of: "/", with: "\\/")), config)
        XCTAssertFalse(config.contains("testing") || config.contains("zenml-test-pw"), "no secret is written: \(config)")

        // Alice runs "Pipeline A": every step runs and its outputs go to the bucket.
        let (aliceRun, aliceSummary) = try sandbox.runPipeline(pipeline, ["--workspace", "alice"], environment: alice)
        XCTAssertEqual(aliceRun.exitCode, 0, aliceRun.output)
        XCTAssertEqual(Set(Sandbox.states(aliceSummary).values), ["done"], aliceRun.stdout)
        let aliceRunID = try XCTUnwrap(aliceSummary["run_id"] as? String, "\(aliceSummary.keys)")
        let aliceOutputs = Self.outputs(aliceSummary)
        // Alice's machine is out of reach from here until Bob is done.
        _ = try Sandbox.shell("mv '\(sandbox.root)/alice-src' '\(sandbox.root)/alice-machine'")

        // Bob finds it: the pipeline, Alice's run, and its statistics (fetched from the bucket).
        let pipelines = try sandbox.run(["pipelines", "list", "--workspace", "bob"], environment: bob)
        XCTAssertEqual(pipelines.exitCode, 0, pipelines.output)
        XCTAssertTrue(pipelines.stdout.contains("penguins"), pipelines.stdout)
        let shown = try sandbox.run(["runs", "show", aliceRunID, "--workspace", "bob"], environment: bob)
        XCTAssertEqual(shown.exitCode, 0, shown.output)
        for step in ["data", "split", "statistics", "schema", "validate", "train", "evaluate"] {
            XCTAssertTrue(shown.stdout.contains(step), "\(step) in: \(shown.stdout)")
        }
        XCTAssertEqual(sandbox.files(under: "bob/.zenml/cache/artifacts/sha256"), [], "listing and showing download nothing")
        let statistics = try sandbox.run(["pipelines", "show", "penguins", "--statistics", "--workspace", "bob"], environment: bob)
        XCTAssertEqual(statistics.exitCode, 0, statistics.output)
        XCTAssertTrue(statistics.stdout.contains("species") && statistics.stdout.contains("bill_length_mm"), statistics.stdout)
        func fetched() -> Set<String> {
            Set(sandbox.files(under: "bob/.zenml/cache/artifacts/sha256").filter { $0.split(separator: "/").count == 2 && !$0.hasSuffix(".size") }
                .map { ($0 as NSString).lastPathComponent })
        }
        // The view reads each artifact's manifest and fetches only the one holding statistics.json.
        XCTAssertEqual(fetched(), [String((aliceOutputs["statistics.statistics"] ?? "").dropFirst("sha256:".count))])
        // Empty Bob's cache, as on a fresh machine, so that what the run below fetches can be seen.
        let pruned = try sandbox.run(["cache", "prune", "--max-size", "0", "--workspace", "bob"], environment: bob)
        XCTAssertEqual(pruned.exitCode, 0, pruned.output)
        XCTAssertEqual(fetched(), [])

        // Bob copies it to "Pipeline B" with the other trainer (naive Bayes in Python instead of
        // softmax regression in C) and runs it: every step upstream of the trainer is a cache hit
        // on Alice's artifacts, no process is started for them, and only the trainer's inputs are
        // downloaded.
        let copied = try sandbox.run(["pipelines", "copy", "penguins", "penguins-nb", "--set", "train.uses=bob-checkout/steps/train-nb",
                                      "-o", "bob-checkout/examples/penguins/nb.yaml", "--workspace", "bob"], environment: bob)
        XCTAssertEqual(copied.exitCode, 0, copied.output)
        let (bobRun, bobSummary) = try sandbox.runPipeline("bob-checkout/examples/penguins/nb.yaml", ["--workspace", "bob"], environment: bob)
        XCTAssertEqual(bobRun.exitCode, 0, bobRun.output)
        let states = Sandbox.states(bobSummary)
        for step in ["data", "split", "statistics", "schema", "validate"] { XCTAssertEqual(states[step], "cached", "\(step): \(states)") }
        XCTAssertEqual(states["train"], "done", "\(states)")
        XCTAssertEqual(states["evaluate"], "done", "\(states)")
        let bobRunID = try XCTUnwrap(bobSummary["run_id"] as? String, "\(bobSummary.keys)")
        // A step's log is written by its process (when it writes to stderr): only the trainer and
        // what follows it started.
        let logs = Set(sandbox.files(under: "bob/.zenml/logs/\(bobRunID)").filter { $0.hasSuffix(".log") })
        XCTAssertTrue(logs.isSubset(of: ["evaluate.log", "train.log"]), "\(logs.sorted())")
        let cached = fetched()

        func hex(_ step: String, _ output: String) -> String { String((aliceOutputs["\(step).\(output)"] ?? "").dropFirst("sha256:".count)) }
        for needed in [hex("split", "examples"), hex("statistics", "statistics")] {
            XCTAssertTrue(cached.contains(needed), "the trainer's input \(needed) was fetched: \(cached)")
        }
        for unneeded in [hex("data", "examples"), hex("schema", "schema"), hex("train", "model")] {
            XCTAssertFalse(unneeded.isEmpty)
            XCTAssertFalse(cached.contains(unneeded), "\(unneeded) is not needed by the steps that ran, so it is not downloaded: \(cached)")
        }

        // Bob runs Alice's pipeline from his own checkout: all cache hits, no step process.
        let (again, againSummary) = try sandbox.runPipeline(bobPipeline, ["--workspace", "bob"], environment: bob)
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertEqual(Set(Sandbox.states(againSummary).values), ["cached"], again.stdout)
        XCTAssertEqual(sandbox.files(under: "bob/.zenml/logs/\(againSummary["run_id"] as? String ?? "")").filter { $0.hasSuffix(".log") }, [])

        // Bob can read Alice's model: fetched from the bucket, verified, the same bytes.
        let modelDigest = hex("train", "model")
        let export = try sandbox.run(["artifacts", "export", String(modelDigest.prefix(16)), "bob/model-copy", "--workspace", "bob"], environment: bob)
        XCTAssertEqual(export.exitCode, 0, export.output)
        XCTAssertFalse(sandbox.files(under: "bob/model-copy").isEmpty)
        XCTAssertEqual(
            try Sandbox.shell("cd '\(sandbox.root)/bob/model-copy' && find . -type f | sort | xargs cat | sha256sum"),
            try Sandbox.shell("cd \"$(ls -d '\(sandbox.root)'/alice/.zenml/cache/artifacts/sha256/*/\(modelDigest))\" && find . -type f | sort | xargs cat | sha256sum"))

        _ = try Sandbox.shell("mv '\(sandbox.root)/alice-machine' '\(sandbox.root)/alice-src'")
        // Alice sees Bob's run and pipeline, and its evaluation (fetched from the bucket).
        let listed = try sandbox.run(["runs", "list", "--workspace", "alice", "--json"], environment: alice)
        XCTAssertEqual(listed.exitCode, 0, listed.output)
        XCTAssertTrue(listed.stdout.contains(bobRunID), listed.stdout)
        let evaluation = try sandbox.run(["pipelines", "show", "penguins-nb", "--evaluation", "--workspace", "alice"], environment: alice)
        XCTAssertEqual(evaluation.exitCode, 0, evaluation.output)
        XCTAssertTrue(evaluation.stdout.contains("accuracy"), evaluation.stdout)

        // Without credentials, the error names what to set.
        var bare = bob
        bare["HOME"] = sandbox.root + "/nobody"
        bare["STORAGE_EMULATOR_HOST"] = nil
        if backend == .s3 {
            let refused = try sandbox.run(["run", bobPipeline, "--workspace", "bob"], environment: bare)
            XCTAssertEqual(refused.exitCode, 3, refused.output)
            XCTAssertTrue(refused.stderr.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), refused.stderr)
            var wrong = alice
            wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
            let denied = try sandbox.run(["run", pipeline, "--workspace", "alice"], environment: wrong)
            XCTAssertNotEqual(denied.exitCode, 0, denied.output)
            XCTAssertTrue(denied.output.contains("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), denied.output)
            XCTAssertFalse(denied.output.contains("not-the-secret"), "the secret is never printed")
        }
    }

    /// `STEP.OUTPUT` -> digest, from a run summary.
    static func outputs(_ summary: [String: Any]) -> [String: String] {
        var outputs: [String: String] = [:]
        for step in summary["steps"] as? [[String: Any]] ?? [] {
            for (name, digest) in step["outputs"] as? [String: String] ?? [:] { outputs["\(step["name"] as? String ?? "").\(name)"] = digest }
        }
        return outputs
    }

    func testTeamSharesAGCSBucket() throws { try collaborate(.gcs) }

    func testTeamSharesAnS3Bucket() throws { try collaborate(.s3) }

    /// A run killed while uploading a large output leaves no artifact; the next run publishes it.
    func testKilledUploadIsInvisibleAndTheNextRunRepublishes() throws {
        let port = try Sandbox.service("gcs-emulator.sh", "fresh")
        let sandbox = try Sandbox()
        let bucket = "zenml-kill-\(UUID().uuidString.prefix(8).lowercased())"
        XCTAssertEqual(try Sandbox.shell("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{\"name\":\"\(bucket)\"}' 'http://127.0.0.1:\(port)/storage/v1/b?project=test'"), "200")
        // One output of 400 files of 64 KiB, uploaded one at a time: slow enough to be killed
        // half-way, small enough for the emulator (Python) to take it again in well under a minute.
        try sandbox.shBundle("big", outputs: "{data: Dataset}", script: #"""
            O=$(out data)
            i=0; while [ $i -lt 400 ]; do head -c 65536 /dev/urandom > "$O/part-$i"; i=$((i+1)); done
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
            if uploaded >= 5 { break }
            usleep(20_000)
        }
        kill(process.process.processIdentifier, SIGKILL)
        _ = try process.wait(timeout: 10)
        XCTAssertGreaterThanOrEqual(uploaded, 5, "the upload had started")
        // Manifests (one per published artifact): before the step ran, the run kept a copy of the
        // bundle; the step's output, killed half-way, must have none.
        func manifests() throws -> Int {
            Int(try Sandbox.shell("curl -s '\(listURL)' | grep -o '\"name\": \"a/sha256/[^\"]*\\.manifest\\.json\"' | sort -u | wc -l")
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let afterKill = try Sandbox.shell("curl -s '\(listURL)'")
        XCTAssertEqual(try manifests(), 1, "only the bundle's copy, no output artifact: \(afterKill.prefix(300))")
        XCTAssertLessThan(afterKill.components(separatedBy: "/part-").count - 1, 400, "killed before the end")

        let (again, summary) = try sandbox.runPipeline("pipeline.yaml", [], environment: env)
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertEqual(Sandbox.states(summary)["big"], "done", "nothing was published, so the step runs again")
        XCTAssertEqual(try manifests(), 2, "the output is published now")
        let (third, thirdSummary) = try sandbox.runPipeline("pipeline.yaml", [], environment: env)
        XCTAssertEqual(third.exitCode, 0, third.output)
        XCTAssertEqual(Sandbox.states(thirdSummary)["big"], "cached")
    }

    /// A fresh bucket on moto (which accepts any credentials): its port and the bucket.
    func motoBucket(_ label: String) throws -> (port: String, bucket: String) {
        let port = try Sandbox.service("s3-moto.sh")
        let bucket = "zenml-\(label)-\(UUID().uuidString.prefix(8).lowercased())"
        XCTAssertEqual(try Sandbox.shell("curl -s -o /dev/null -w '%{http_code}' -X PUT 'http://127.0.0.1:\(port)/\(bucket)'"), "200")
        return (port, bucket)
    }

    /// Credentials are used to sign requests and nothing else: a distinctive secret and session
    /// token appear in no record, export, log, configuration or output, also of a failed run.
    func testCredentialsAreRecordedNowhere() throws {
        let (port, bucket) = try motoBucket("secret")
        let sandbox = try Sandbox()
        let secret = "zenml-test-SECRET-\(UUID().uuidString.prefix(12))"
        let token = "zenml-test-TOKEN-\(UUID().uuidString.prefix(12))"
        let env = ["HOME": sandbox.root, "AWS_ACCESS_KEY_ID": "AKIDZENMLTEST", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token, "AWS_PROFILE": ""]
        try sandbox.shBundle("make", outputs: "{data: Dataset}", script: #"""
            O=$(out data)
            head -c 100000 /dev/urandom > "$O/blob"; echo one > "$O/small"
            echo "made the data" >&2
            echo '{"status":"ok"}'
            """#)
        try sandbox.shBundle("fail", inputs: "{data: Dataset}", script: #"""
            echo "this step fails on purpose" >&2
            exit 3
            """#)
        try sandbox.write("pipeline.yaml", "name: secrets\nsteps:\n  make:\n    uses: ./bundles/make\n")
        try sandbox.write("failing.yaml", "name: failing\nsteps:\n  make:\n    uses: ./bundles/make\n  fail:\n    uses: ./bundles/fail\n    inputs: {data: make.data}\n")
        var outputs: [String] = []
        func zenml(_ arguments: [String], expect: Int32 = 0) throws {
            let result = try sandbox.run(arguments, environment: env.merging(["ZENML_MULTIPART_THRESHOLD": "50000"]) { $1 })
            XCTAssertEqual(result.exitCode, expect, "\(arguments): \(result.output)")
            outputs.append(result.output)
        }
        try zenml(["init"])
        try zenml(["config", "artifacts", "set", "s3://\(bucket)/team", "--endpoint", "http://127.0.0.1:\(port)"])
        try zenml(["run", "pipeline.yaml"])
        try zenml(["run", "pipeline.yaml", "--json"])
        try zenml(["run", "failing.yaml", "--json"], expect: 1)
        try zenml(["runs", "list", "--json"])
        try zenml(["pipelines", "show", "secrets"])
        try zenml(["metadata", "export"])
        XCTAssertTrue(outputs.last?.contains("\"pipeline\"") == true, "the export has the runs: \(outputs.last?.prefix(300) ?? "")")
        XCTAssertFalse(sandbox.files(under: ".zenml/logs").isEmpty, "step logs were written")
        // Every file of the workspace: the SQLite metadata database, logs, config.json, the cache.
        let files = try Sandbox.shell("cd '\(sandbox.root)' && find .zenml -type f | sort").split(separator: "\n").map(String.init)
        XCTAssertTrue(files.contains(".zenml/config.json") && files.contains { $0.contains("metadata") }, "\(files)")
        // The search does find what a step wrote to its log and what a failed step said.
        XCTAssertNotEqual(try Sandbox.shell("cd '\(sandbox.root)' && grep -rlaF 'made the data' .zenml || true"), "")
        let failure = try Sandbox.shell("cd '\(sandbox.root)' && grep -rlaF 'fails on purpose' .zenml || true")
        XCTAssertTrue(outputs.contains { $0.contains("fails on purpose") } || !failure.isEmpty, "the failed step's message is kept")
        for value in [secret, token] {
            for (index, output) in outputs.enumerated() { XCTAssertFalse(output.contains(value), "command \(index) printed a credential: \(output)") }
            let found = try Sandbox.shell("cd '\(sandbox.root)' && grep -rlaF '\(value)' .zenml || true")
            XCTAssertEqual(found, "", "files holding a credential")
        }
        // Nor is anything in the bucket (manifests, bundle copies, outputs).
        let keys = try Sandbox.shell("curl -s 'http://127.0.0.1:\(port)/\(bucket)?list-type=2' | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'")
            .split(separator: "\n").map(String.init)
        XCTAssertFalse(keys.isEmpty)
        for key in keys {
            let object = try Sandbox.shell("curl -s 'http://127.0.0.1:\(port)/\(bucket)/\(key)' | grep -caF -e '\(secret)' -e '\(token)' || true")
            XCTAssertEqual(object.trimmingCharacters(in: .whitespacesAndNewlines), "0", key)
        }
    }

    /// S3: a run killed while a large output goes up as a multipart upload leaves no artifact
    /// (the upload is never completed, so no object is visible); the next run publishes it.
    func testKilledMultipartUploadIsInvisibleAndTheNextRunRepublishes() throws {
        let (port, bucket) = try motoBucket("kill")
        let sandbox = try Sandbox()
        // 80 MiB in parts of 5 MiB (S3's least), one at a time: about a second of parts on moto.
        try sandbox.shBundle("big", outputs: "{data: Dataset}", script: #"""
            O=$(out data)
            head -c 83886080 /dev/urandom > "$O/large.bin"
            echo small > "$O/small.txt"
            echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: big\nsteps:\n  big:\n    uses: ./bundles/big\n")
        let env = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_PROFILE": "", "HOME": sandbox.root,
                   "ZENML_MULTIPART_THRESHOLD": "8388608", "ZENML_PART_SIZE": "5242880", "ZENML_TRANSFERS": "1"]
        XCTAssertEqual(try sandbox.run(["init"], environment: env).exitCode, 0)
        XCTAssertEqual(try sandbox.run(["config", "artifacts", "set", "s3://\(bucket)/a", "--endpoint", "http://127.0.0.1:\(port)"], environment: env).exitCode, 0)
        let base = "http://127.0.0.1:\(port)/\(bucket)"
        func uploadsInProgress() throws -> Int {
            Int(try Sandbox.shell("curl -s '\(base)?uploads' | grep -o '<UploadId>' | wc -l").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        func keys() throws -> [String] {
            try Sandbox.shell("curl -s '\(base)?list-type=2&prefix=a/' | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'").split(separator: "\n").map(String.init)
        }
        let started = Date()
        let process = try sandbox.start(["run", "pipeline.yaml"], environment: env)
        var inProgress = 0
        while Date().timeIntervalSince(started) < 50 {
            inProgress = try uploadsInProgress()
            if inProgress > 0 { break }
            usleep(20_000)
        }
        usleep(50_000)  // a part or two in (the 16 parts take about a second on moto)
        kill(process.process.processIdentifier, SIGKILL)
        _ = try process.wait(timeout: 10)
        XCTAssertEqual(inProgress, 1, "the multipart upload had started")
        XCTAssertEqual(try uploadsInProgress(), 1, "killed before it was completed")
        let afterKill = try keys()
        XCTAssertEqual(afterKill.filter { $0.hasSuffix(".manifest.json") }.count, 1, "only the bundle's copy, no output artifact: \(afterKill)")
        XCTAssertEqual(afterKill.filter { $0.hasPrefix("a/blobs/") || $0.hasSuffix("/large.bin") }, [], "no part of the large file is visible")

        let (again, summary) = try sandbox.runPipeline("pipeline.yaml", [], environment: env)
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertEqual(Sandbox.states(summary)["big"], "done", "nothing was published, so the step runs again")
        let published = try keys()
        XCTAssertEqual(published.filter { $0.hasSuffix(".manifest.json") }.count, 2, "the output is published now: \(published)")
        XCTAssertEqual(published.filter { $0.hasPrefix("a/blobs/") }.count, 1, "the large file, completed: \(published)")
        let (third, thirdSummary) = try sandbox.runPipeline("pipeline.yaml", [], environment: env)
        XCTAssertEqual(third.exitCode, 0, third.output)
        XCTAssertEqual(Sandbox.states(thirdSummary)["big"], "cached")
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
    }
}
