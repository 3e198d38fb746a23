import Foundation
import XCTest

/// Sharing bundles through the real binary: pack, registries, lock files, signatures.
final class BundleTests: XCTestCase {
    /// A bundle `hello` at `bundles/hello` whose step writes `greeting` into its output.
    func makeHello(_ sandbox: Sandbox, version: String, greeting: String) throws {
        try sandbox.shBundle(
            "hello", outputs: "{text: Text}", script: "printf '\(greeting)\\n' > \"$(out text)/greeting.txt\"\necho '{\"status\":\"ok\"}'\n")
        let manifest = try sandbox.read("bundles/hello/step.yaml").replacingOccurrences(of: "version: 1.0.0", with: "version: \"\(version)\"")
        try sandbox.write("bundles/hello/step.yaml", manifest)
    }

    func greeting(_ sandbox: Sandbox, _ summary: [String: Any]) throws -> String {
        // The Text artifacts' content, found in the store.
        let files = sandbox.files(under: ".zenml/artifacts").filter { $0.hasSuffix("greeting.txt") }
        return try files.map { try sandbox.read(".zenml/artifacts/" + $0) }.sorted().joined()
    }

    func testPackIsDeterministicAndInspectUnpackRoundTrip() throws {
        let sandbox = try Sandbox()
        try makeHello(sandbox, version: "1.0.0", greeting: "hi")
        _ = try Sandbox.shell("cd '\(sandbox.root)' && (umask 077 && mkdir -p a && cp -R bundles/hello a/) && (umask 022 && mkdir -p b/c && cp -R bundles/hello b/c/) && touch -d '2001-01-01' b/c/hello/run.sh")
        let first = try sandbox.run(["bundle", "pack", "a/hello", "-o", "one.tar"])
        let second = try sandbox.run(["bundle", "pack", "b/c/hello", "-o", "two.tar"])
        XCTAssertEqual(first.exitCode, 0, first.output)
        XCTAssertEqual(second.exitCode, 0, second.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: sandbox.root + "/one.tar")), try Data(contentsOf: URL(fileURLWithPath: sandbox.root + "/two.tar")))
        let digest = try XCTUnwrap(first.stdout.split(separator: " ").last).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(try Sandbox.shell("sha256sum '\(sandbox.root)/one.tar'").hasPrefix(String(digest.dropFirst(7))))

        let inspect = try sandbox.run(["bundle", "inspect", "one.tar", "--json"])
        XCTAssertEqual(inspect.exitCode, 0, inspect.output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        let bundle = try XCTUnwrap(object["bundle"] as? [String: Any])
        XCTAssertEqual(bundle["digest"] as? String, digest)
        XCTAssertEqual(bundle["name"] as? String, "hello")
        XCTAssertEqual((bundle["files"] as? [[String: Any]])?.compactMap { $0["path"] as? String }, ["run.sh", "step.yaml"])
        let folder = try sandbox.run(["bundle", "inspect", "a/hello", "--json"])
        XCTAssertTrue(folder.stdout.contains(digest), "a folder and its archive have one digest")

        XCTAssertEqual(try sandbox.run(["bundle", "unpack", "one.tar", "out/hello"]).exitCode, 0)
        XCTAssertEqual(try sandbox.read("out/hello/step.yaml"), try sandbox.read("bundles/hello/step.yaml"))
        let again = try sandbox.run(["bundle", "unpack", "one.tar", "out/hello"])
        XCTAssertEqual(again.exitCode, 2)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
    }

    func testPublishPinPullUpdateAndTampering() throws {
        let sandbox = try Sandbox()
        XCTAssertEqual(try sandbox.run(["config", "registry", "add", "team", "registry"]).exitCode, 0)
        try makeHello(sandbox, version: "1.0.0", greeting: "one")
        var result = try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertTrue(result.stdout.contains("published hello@1.0.0 to team"), result.stdout)
        result = try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team"])
        XCTAssertEqual(result.exitCode, 0, "the same content again is fine")
        try makeHello(sandbox, version: "1.0.0", greeting: "changed")
        result = try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("already published in registry 'team' with other content"), result.stderr)

        try sandbox.write("pipeline.yaml", "name: shared\nsteps:\n  greet: {uses: hello@^1.0}\n")
        var (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 0, run.output)
        XCTAssertEqual(try greeting(sandbox, summary), "one\n")
        let lock = try sandbox.read("zenml.lock")
        XCTAssertTrue(lock.contains("\"hello@^1.0\""), lock)
        XCTAssertTrue(lock.contains("\"version\" : \"1.0.0\""), lock)

        // A cached registry bundle edited in place is refused, then fine again once restored.
        let cached = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/.zenml/bundles").first { !$0.hasPrefix(".") })
        let script = ".zenml/bundles/\(cached)/run.sh"
        let original = try sandbox.read(script)
        try sandbox.write(script, original + "# edited\n", executable: true)
        (run, _) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 2, run.output)
        XCTAssertTrue(run.stderr.contains("it was modified in place"), run.stderr)
        try sandbox.write(script, original, executable: true)
        (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(Sandbox.states(summary), ["greet": "cached"], run.output)

        // The registry reference is recorded with the execution.
        let recorded = try Sandbox.shell("python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print([r for r in c.execute('select string_value from ExecutionProperty') if 'bundle_source' in (r[0] or '')])\" '\(sandbox.root)/.zenml/metadata.db'")
        XCTAssertTrue(recorded.contains("hello@1.0.0 from registry team"), recorded)

        // A new compatible version does not move the pin...
        try makeHello(sandbox, version: "1.1.0", greeting: "two")
        XCTAssertEqual(try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team"]).exitCode, 0)
        (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(Sandbox.states(summary), ["greet": "cached"], run.output)
        XCTAssertEqual(try sandbox.read("zenml.lock"), lock, "a run with a lock file changes nothing")
        // ...until --update.
        (run, summary) = try sandbox.runPipeline("pipeline.yaml", ["--update"])
        XCTAssertEqual(Sandbox.states(summary), ["greet": "done"], run.output)
        XCTAssertTrue(try sandbox.read("zenml.lock").contains("\"version\" : \"1.1.0\""))

        let list = try sandbox.run(["bundle", "list"])
        XCTAssertTrue(list.stdout.contains("team  hello@1.0.0"), list.stdout)
        XCTAssertTrue(list.stdout.contains("team  hello@1.1.0"), list.stdout)
        XCTAssertTrue(try sandbox.run(["bundle", "search", "HELL"]).stdout.contains("hello@1.1.0"))
        XCTAssertTrue(try sandbox.run(["bundle", "search", "nothing-like-it"]).stdout.contains("no bundle matches"))

        // Someone republishes 1.1.0 behind the registry's back: the pinned run refuses clearly.
        try makeHello(sandbox, version: "1.1.0", greeting: "evil")
        _ = try Sandbox.shell("rm '\(sandbox.root)/registry/bundles/hello/1.1.0.json'")
        XCTAssertEqual(try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team"]).exitCode, 0)
        (run, _) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 2, run.output)
        XCTAssertTrue(run.stderr.contains("pipeline.yaml:3"), run.stderr)
        XCTAssertTrue(run.stderr.contains("the published bundle changed"), run.stderr)
        XCTAssertTrue(run.stderr.contains("--update"), run.stderr)

        // Pull by digest and by version.
        let digest = try XCTUnwrap(lock.split(separator: "\"").first { $0.hasPrefix("sha256:") })
        result = try sandbox.run(["bundle", "pull", "hello@\(digest)"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertTrue(result.stdout.contains("hello@1.0.0"), result.stdout)
        result = try sandbox.run(["bundle", "pull", "hello@^7"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("no registry has a version matching"), result.stderr)
    }

    func testSignaturesRequiredByTheWorkspace() throws {
        let sandbox = try Sandbox()
        XCTAssertEqual(try sandbox.run(["config", "registry", "add", "team", "registry"]).exitCode, 0)
        XCTAssertEqual(try sandbox.run(["bundle", "keygen", "alice"]).exitCode, 0)
        XCTAssertEqual(try sandbox.run(["bundle", "keygen", "mallory"]).exitCode, 0)
        XCTAssertEqual(try sandbox.run(["bundle", "keygen", "alice"]).exitCode, 2, "keys are never overwritten")
        try makeHello(sandbox, version: "1.0.0", greeting: "signed")
        XCTAssertEqual(try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team", "--key", "mallory"]).exitCode, 0)
        XCTAssertEqual(try sandbox.run(["config", "trust", "add", "alice.pub"]).exitCode, 0)
        XCTAssertEqual(try sandbox.run(["config", "trust", "require"]).exitCode, 0)
        try sandbox.write("pipeline.yaml", "name: signed\nsteps:\n  greet: {uses: hello@1.0.0}\n")
        var (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 2, run.output)
        XCTAssertTrue(run.stderr.contains("signed only by untrusted keys"), run.stderr)
        XCTAssertTrue(run.stderr.contains("config trust add"), run.stderr)

        let sign = try sandbox.run(["bundle", "sign", "hello@1.0.0", "--registry", "team", "--key", "alice"])
        XCTAssertEqual(sign.exitCode, 0, sign.output)
        (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 0, run.output)
        XCTAssertEqual(Sandbox.states(summary), ["greet": "done"])

        // A registry that requires signatures refuses unsigned publishing.
        XCTAssertEqual(try sandbox.run(["config", "registry", "add", "strict", "strict", "--require-signatures", "--trust", "alice.pub"]).exitCode, 0)
        let unsigned = try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "strict"])
        XCTAssertEqual(unsigned.exitCode, 2)
        XCTAssertTrue(unsigned.stderr.contains("accepts only bundles signed by its trusted keys"), unsigned.stderr)
        XCTAssertEqual(try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "strict", "--key", "alice"]).exitCode, 0)
    }

    /// Every quickstart bundle conforms; each deliberately broken fixture fails the right check for the right reason.
    func testConformanceOfGoodAndBrokenBundles() throws {
        let sandbox = try Sandbox()
        for name in ["generate", "normalize", "report"] {
            let result = try sandbox.run(["bundle", "test", Sandbox.repository + "/examples/quickstart/steps/" + name])
            XCTAssertEqual(result.exitCode, 0, result.output)
            XCTAssertTrue(result.stdout.contains("conforms to contract 1, deterministic"), result.stdout)
        }
        let expected: [String: (check: String, reason: String)] = [
            "bad-manifest": ("manifest", "unknown manifest key 'entrypiont'"),
            "bad-config-schema": ("manifest", "'type' must be one of"),
            "bad-response": ("run generated", "stdout is not JSON"),
            "missing-output": ("run generated", "left its declared output 'text' empty"),
            "extra-output": ("run generated", "wrote 'stray' beside its outputs"),
            "writes-bundle": ("bundle unchanged", "wrote into its bundle folder"),
            "ignores-contract": ("unknown contract", "accepted a request for contract version 999"),
            "missing-sample": ("inputs absent", "sample inputs missing: samples/nowhere"),
            "required-config": ("config generated", "required config key 'rate' is missing"),
        ]
        let fixtures = Sandbox.repository + "/protocol/tests/fixtures/bundles"
        // Copies: a broken bundle may write into its own folder.
        _ = try Sandbox.shell("cp -R '\(fixtures)' '\(sandbox.root)/fixtures'")
        for (name, failure) in expected.sorted(by: { $0.key < $1.key }) {
            let result = try sandbox.run(["bundle", "test", "fixtures/" + name, "--json"])
            XCTAssertEqual(result.exitCode, 1, "\(name): \(result.output)")
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], name)
            let checks = (object["report"] as? [String: Any])?["checks"] as? [[String: Any]] ?? []
            let failed = checks.filter { $0["passed"] as? Bool == false }
            XCTAssertEqual(failed.compactMap { $0["name"] as? String }, [failure.check], "\(name): \(result.stdout)")
            XCTAssertTrue((failed.first?["detail"] as? String ?? "").contains(failure.reason), "\(name): \(result.stdout)")
        }
        let loose = try sandbox.run(["bundle", "test", "fixtures/nondeterministic"])
        XCTAssertEqual(loose.exitCode, 0, loose.output)
        XCTAssertTrue(loose.stdout.contains("conforms to contract 1, NOT deterministic"), loose.stdout)
    }

    /// `python: {requirements:}`: a virtual environment made once per requirements digest (pip,
    /// offline from a wheel inside the bundle), used by the step and recorded with the execution.
    func testPythonRequirementsGetACachedVirtualEnvironment() throws {
        let sandbox = try Sandbox()
        try FileManager.default.createDirectory(atPath: sandbox.root + "/b/wheels", withIntermediateDirectories: true)
        _ = try Sandbox.shell("""
            cd '\(sandbox.root)/b' && python3 -c "
            import zipfile
            n, v = 'zenmltinypkg', '1.2.3'
            d = n + '-' + v + '.dist-info'
            with zipfile.ZipFile('wheels/' + n + '-' + v + '-py3-none-any.whl', 'w') as z:
                z.writestr(n + '.py', 'VALUE = 42\\n')
                z.writestr(d + '/METADATA', 'Metadata-Version: 2.1\\nName: ' + n + '\\nVersion: ' + v + '\\n')
                z.writestr(d + '/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
                z.writestr(d + '/RECORD', '')
            "
            """)
        try sandbox.write("b/requirements.txt", "--no-index\n--find-links wheels\nzenmltinypkg==1.2.3\n")
        try sandbox.write("b/step.yaml", """
            name: tiny
            version: "1.0.0"
            entrypoint: python3
            args: ["${BUNDLE}/main.py"]
            python: {requirements: requirements.txt}
            outputs: {text: Text}
            """)
        try sandbox.write("b/main.py", """
            import json, os, sys
            import zenmltinypkg
            request = json.load(sys.stdin)
            if request.get("contract") != 1:
                sys.exit("this step speaks contract 1 only")
            with open(os.path.join(request["outputs"]["text"]["path"], "value.txt"), "w") as handle:
                handle.write("%d %s\\n" % (zenmltinypkg.VALUE, os.path.basename(sys.prefix) != "usr"))
            print(json.dumps({"status": "ok"}))
            """)
        try sandbox.write("pipeline.yaml", "name: rt\nsteps:\n  tiny: {uses: ./b}\n")
        var (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 0, run.output)
        let values = sandbox.files(under: ".zenml/artifacts").filter { $0.hasSuffix("value.txt") }
        XCTAssertEqual(try values.map { try sandbox.read(".zenml/artifacts/" + $0) }, ["42 True\n"])
        let venvs = try FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/.zenml/venvs").filter { !$0.contains(".") }
        XCTAssertEqual(venvs.count, 1)
        let recorded = try Sandbox.shell("python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print([r[0] for r in c.execute('select string_value from ExecutionProperty') if 'runtime' in (r[0] or '')])\" '\(sandbox.root)/.zenml/metadata.db'")
        XCTAssertTrue(recorded.contains(#""zenmltinypkg":"1.2.3""#), recorded)
        XCTAssertTrue(recorded.contains(#""python":"3."#), recorded)

        (run, summary) = try sandbox.runPipeline("pipeline.yaml", ["--no-cache"])
        XCTAssertEqual(Sandbox.states(summary), ["tiny": "done"], run.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/.zenml/venvs").filter { !$0.contains(".") }, venvs, "reused")

        let test = try sandbox.run(["bundle", "test", "b"])
        XCTAssertEqual(test.exitCode, 0, test.output)
        XCTAssertTrue(test.stdout.contains("pass  python: environment ready"), test.stdout)

        try sandbox.write("b/requirements.txt", "--no-index\n--find-links wheels\nzenmltinypkg==9.9.9\n")
        (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 1, run.output)
        XCTAssertTrue(run.output.contains("making the bundle's Python environment failed"), run.output)
    }

    /// The issue's rule: every bundle in the repository's steps/ passes `bundle test` (in CI).
    func testEveryBundleInStepsConforms() throws {
        let steps = Sandbox.repository + "/steps"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: steps)) ?? [])
            .filter { FileManager.default.fileExists(atPath: steps + "/" + $0 + "/step.yaml") }.sorted()
        if names.isEmpty { throw XCTSkip("no bundles in steps/ yet") }
        let sandbox = try Sandbox()
        for name in names {
            let result = try sandbox.run(["bundle", "test", steps + "/" + name], timeout: 600)
            XCTAssertEqual(result.exitCode, 0, "steps/\(name) does not pass 'zenml-run bundle test':\n\(result.output)")
        }
    }

    // MARK: bucket registries and the lock file's local pins

    /// A fresh bucket: the `config registry add` arguments and the environment the binary needs.
    func bucketRegistry(_ scheme: String) throws -> (arguments: [String], environment: [String: String]) {
        let bucket = "zenml-reg-\(UUID().uuidString.prefix(8).lowercased())"
        if scheme == "gs" {
            let port = try Sandbox.service("gcs-emulator.sh")
            let created = try Sandbox.shell("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{\"name\":\"\(bucket)\"}' 'http://127.0.0.1:\(port)/storage/v1/b?project=test'")
            XCTAssertEqual(created, "200")
            return (["gs://\(bucket)/registry", "--endpoint", "http://127.0.0.1:\(port)"], ["STORAGE_EMULATOR_HOST": ""])
        }
        let port = try Sandbox.service("s3-moto.sh")
        let created = try Sandbox.shell("""
            curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 aws:amz:us-east-1:s3 \\
              -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \\
              'http://testing:testing@127.0.0.1:\(port)/\(bucket)'
            """)
        XCTAssertEqual(created, "200")
        return (["s3://\(bucket)/registry", "--endpoint", "http://127.0.0.1:\(port)"],
                ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_PROFILE": ""])
    }

    func testGCSBucketRegistry() throws { try bucketRegistryEndToEnd("gs") }
    func testS3BucketRegistry() throws { try bucketRegistryEndToEnd("s3") }

    /// Publish, refuse an overwrite, race two publishers (two processes), pull, and run a pipeline
    /// that says `uses: hello@^1.0` from a registry in a bucket on an emulator.
    func bucketRegistryEndToEnd(_ scheme: String) throws {
        let sandbox = try Sandbox()
        let (arguments, environment) = try bucketRegistry(scheme)
        var result = try sandbox.run(["config", "registry", "add", "team"] + arguments, environment: environment)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertTrue(result.stdout.contains("registry team: \(scheme)://"), result.stdout)
        XCTAssertTrue(try sandbox.run(["config", "registry", "list"]).stdout.contains("endpoint http://127.0.0.1:"))

        try makeHello(sandbox, version: "1.0.0", greeting: "one")
        result = try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team"], environment: environment)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertTrue(result.stdout.contains("published hello@1.0.0 to team"), result.stdout)
        try makeHello(sandbox, version: "1.0.0", greeting: "changed")
        result = try sandbox.run(["bundle", "publish", "bundles/hello", "--registry", "team"], environment: environment)
        XCTAssertEqual(result.exitCode, 2, result.output)
        XCTAssertTrue(result.stderr.contains("already published in registry 'team' with other content"), result.stderr)

        // Two members publish hello@2.0.0 with different content at the same moment.
        for color in ["red", "blue"] {
            try makeHello(sandbox, version: "2.0.0", greeting: color)
            try Sandbox.shell("rm -rf '\(sandbox.root)/\(color)' && cp -R '\(sandbox.root)/bundles/hello' '\(sandbox.root)/\(color)'")
        }
        let racers = try ["red", "blue"].map { try sandbox.start(["bundle", "publish", $0, "--registry", "team"], environment: environment) }
        let outcomes = try racers.map { try $0.wait(timeout: 120) }
        XCTAssertEqual(outcomes.filter { $0.exitCode == 0 }.count, 1, outcomes.map(\.output).joined(separator: "\n"))
        let loser = try XCTUnwrap(outcomes.first { $0.exitCode != 0 })
        XCTAssertEqual(loser.exitCode, 2, loser.output)
        XCTAssertTrue(loser.stderr.contains("at the same moment") || loser.stderr.contains("already published in registry 'team' with other content"), loser.stderr)
        let winner = outcomes[0].exitCode == 0 ? "red" : "blue"
        result = try sandbox.run(["bundle", "pull", "hello@2.0.0"], environment: environment)
        XCTAssertEqual(result.exitCode, 0, result.output)
        let folder = try XCTUnwrap(result.stdout.components(separatedBy: ": ").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertTrue(try String(contentsOfFile: folder + "/run.sh", encoding: .utf8).contains("printf '\(winner)"), "the pull has the winner's bytes")
        let packed = try sandbox.run(["bundle", "pack", winner, "-o", "winner.tar"])
        XCTAssertEqual(packed.exitCode, 0, packed.output)
        let winnerDigest = try XCTUnwrap(packed.stdout.split(whereSeparator: { " \n".contains($0) }).first { $0.hasPrefix("sha256:") })
        XCTAssertTrue(result.stdout.contains(String(winnerDigest)), "pulled by the winner's digest: \(result.stdout)")
        let listing = try sandbox.run(["bundle", "list", "--registry", "team"], environment: environment)
        XCTAssertTrue(listing.stdout.contains("team  hello@1.0.0"), listing.stdout)
        XCTAssertTrue(listing.stdout.contains("team  hello@2.0.0"), listing.stdout)
        XCTAssertTrue(try sandbox.run(["bundle", "search", "hell"], environment: environment).stdout.contains("hello@2.0.0"))

        // A pipeline uses the bucket registry; the lock file pins it.
        try sandbox.write("pipeline.yaml", "name: shared\nsteps:\n  greet: {uses: hello@^1.0}\n")
        var (run, summary) = try sandbox.runPipeline(environment: environment)
        XCTAssertEqual(run.exitCode, 0, run.output)
        XCTAssertEqual(Sandbox.states(summary), ["greet": "done"], run.output)
        XCTAssertEqual(try greeting(sandbox, summary), "one\n")
        let lock = try sandbox.read("zenml.lock")
        XCTAssertTrue(lock.contains("\"registry\" : \"team\""), lock)
        XCTAssertTrue(lock.contains("\"version\" : \"1.0.0\""), lock)
        (run, summary) = try sandbox.runPipeline(environment: environment)
        XCTAssertEqual(Sandbox.states(summary), ["greet": "cached"], run.output)
    }

    func testLocalBundlesArePinnedInTheLockFile() throws {
        let sandbox = try Sandbox()
        try makeHello(sandbox, version: "1.0.0", greeting: "one")
        try sandbox.write("pipeline.yaml", "name: local\nsteps:\n  greet: {uses: bundles/hello}\n")
        var (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 0, run.output)
        XCTAssertNil(try? sandbox.read("zenml.lock"), "no lock file is forced on a pipeline of local bundles")
        // --update writes one; it pins the local folder by digest.
        (run, summary) = try sandbox.runPipeline("pipeline.yaml", ["--update"])
        XCTAssertEqual(Sandbox.states(summary), ["greet": "cached"], run.output)
        let lock = try sandbox.read("zenml.lock")
        XCTAssertTrue(lock.contains("\"local\""), lock)
        XCTAssertTrue(lock.contains("\"path\" : \"bundles/hello\""), lock)
        let packed = try sandbox.run(["bundle", "pack", "bundles/hello", "-o", "hello.tar"])
        let digest = try XCTUnwrap(packed.stdout.split(whereSeparator: { " \n()".contains($0) }).first { $0.hasPrefix("sha256:") })
        XCTAssertTrue(lock.contains(String(digest)), "the pin is the bundle digest: \(lock) / \(packed.stdout)")
        XCTAssertFalse(run.stderr.contains("warning"), run.stderr)

        // Edited since: used as it is, re-pinned, with a warning.
        try makeHello(sandbox, version: "1.0.0", greeting: "two")
        (run, summary) = try sandbox.runPipeline()
        XCTAssertEqual(run.exitCode, 0, run.output)
        XCTAssertEqual(Sandbox.states(summary), ["greet": "done"], run.output)
        XCTAssertTrue(run.stderr.contains("warning: the local bundle bundles/hello changed since zenml.lock pinned it"), run.stderr)
        let repinned = try sandbox.read("zenml.lock")
        XCTAssertNotEqual(repinned, lock)
        XCTAssertFalse(repinned.contains(String(digest)))
        (run, _) = try sandbox.runPipeline("pipeline.yaml", ["--locked"])
        XCTAssertEqual(run.exitCode, 0, "unchanged since the re-pin: --locked is happy: \(run.output)")

        // --locked refuses a changed local bundle, names it and the fix, and leaves the lock alone.
        try makeHello(sandbox, version: "1.0.0", greeting: "three")
        (run, _) = try sandbox.runPipeline("pipeline.yaml", ["--locked"])
        XCTAssertEqual(run.exitCode, 2, run.output)
        XCTAssertTrue(run.stderr.contains("pipeline.yaml:3"), run.stderr)
        XCTAssertTrue(run.stderr.contains("the local bundle bundles/hello changed since zenml.lock pinned it"), run.stderr)
        XCTAssertTrue(run.stderr.contains("run without --locked"), run.stderr)
        XCTAssertEqual(try sandbox.read("zenml.lock"), repinned)

        // Runs record the pin with each execution.
        let recorded = try Sandbox.shell("python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print([r for r in c.execute('select string_value from ExecutionProperty') if 'bundle_source' in (r[0] or '')])\" '\(sandbox.root)/.zenml/metadata.db'")
        XCTAssertTrue(recorded.contains("local folder bundles/hello"), recorded)
    }
}
