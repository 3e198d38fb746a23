import Foundation
import XCTest

/// The shipped polyglot example (Python, C, Swift) behaves as its README says.
final class QuickstartTests: XCTestCase {
    func testQuickstartCachesAndRerunsOnlyWhatChanged() throws {
        let sandbox = try Sandbox()
        try Sandbox.shell("cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/quickstart'")
        let pipeline = "quickstart/pipeline.yaml"

        var (result, summary) = try sandbox.runPipeline(pipeline)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["generate": "done", "normalize": "done", "report": "done"])
        // The compiled steps (C, Swift) name the build they ran; the Python step has none.
        let builds = try Self.builds(sandbox, run: summary["run_id"] as? String ?? "")
        XCTAssertEqual(builds.keys.sorted(), ["normalize", "report"], "generate ran too, and names no build")
        for step in ["normalize", "report"] {
            let build = try XCTUnwrap(builds[step], "\(step) names its build")
            XCTAssertEqual(build.type, "BundleBuild")
            XCTAssertEqual(build.id, build.builtBy, "\(step) ran the output of this run's build:\(step)")
        }

        (result, summary) = try sandbox.runPipeline(pipeline)
        XCTAssertEqual(Sandbox.states(summary), ["generate": "cached", "normalize": "cached", "report": "cached"])

        let text = try sandbox.read(pipeline)
        XCTAssertTrue(text.contains("scale: 2.0"))
        try sandbox.write(pipeline, text.replacingOccurrences(of: "scale: 2.0", with: "scale: 3.0"))
        (result, summary) = try sandbox.runPipeline(pipeline)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["generate": "cached", "normalize": "done", "report": "done"])
        // Not built again: the re-run steps name the first run's builds.
        let rerunBuilds = try Self.builds(sandbox, run: summary["run_id"] as? String ?? "")
        for step in ["normalize", "report"] {
            XCTAssertEqual(rerunBuilds[step]?.id, builds[step]?.id, step)
            XCTAssertNotNil(rerunBuilds[step]?.id, step)
            XCTAssertNil(rerunBuilds[step]?.builtBy, "no build:\(step) in the re-run")
        }

        // The report really was recomputed from the rescaled table.
        let show = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? "", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        let executions = (object?["run"] as? [String: Any])?["executions"] as? [[String: Any]] ?? []
        let report = executions.first { $0["step"] as? String == "report" }
        let mean = (report?["metrics"] as? [String: Double])?["mean"] ?? 0
        XCTAssertGreaterThan(mean, 1.0, "values normalized to [0, 1] and scaled by 3 have a mean above 1")
        // The run records the versions of the runtimes its executed steps used.
        let runtimes = ((object?["run"] as? [String: Any])?["run"] as? [String: Any]).flatMap { ($0["environment"] as? [String: Any])?["runtimes"] as? [String: String] }
        XCTAssertTrue(runtimes?["cc"]?.isEmpty == false, "\(String(describing: runtimes))")
        XCTAssertTrue(runtimes?["swift"]?.contains("Swift") == true, "\(String(describing: runtimes))")
        XCTAssertNil(runtimes?["python3"], "generate was cached in this run: \(String(describing: runtimes))")
    }
}

extension QuickstartTests {
    /// For each step execution of a run that names a build: the build (artifact id and type) and
    /// the id of the artifact this run's `build:<step>` execution produced, if there is one.
    static func builds(_ sandbox: Sandbox, run: String) throws -> [String: (id: Int?, type: String?, builtBy: Int?)] {
        let show = try sandbox.run(["runs", "show", run, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        let executions = (object?["run"] as? [String: Any])?["executions"] as? [[String: Any]] ?? []
        var producedBuilds: [String: Int] = [:]
        for execution in executions {
            guard let step = execution["step"] as? String, step.hasPrefix("build:") else { continue }
            producedBuilds[String(step.dropFirst(6))] = ((execution["outputs"] as? [String: Any])?["build"] as? [String: Any])?["id"] as? Int
        }
        var builds: [String: (id: Int?, type: String?, builtBy: Int?)] = [:]
        for execution in executions {
            guard let step = execution["step"] as? String, !step.hasPrefix("build:"), let build = execution["build"] as? [String: Any] else { continue }
            builds[step] = (build["id"] as? Int, build["type"] as? String, producedBuilds[step])
        }
        return builds
    }
}

/// What a step receives matches the published JSON Schema and the contract's promises.
final class ContractTests: XCTestCase {
    func testRequestEnvironmentAndInputsFollowTheContract() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("make", outputs: "{data: Data}", script: #"""
            O=$(out data); echo 42 > "$O/value.txt"
            echo '{"status":"ok","outputs":{"data":{"properties":{"records":1}}}}'
            """#)
        try sandbox.shBundle("probe", inputs: "{data: Data}", outputs: "{dump: Dump}",
            config: "{properties: {rate: {type: number, default: 0.5}, name: {type: string}}}",
            extra: "env: [PROBE_TOKEN]\n",
            script: #"""
                O=$(out dump); I=$(inp data)
                printf '%s' "$REQ" > "$O/request.json"
                env | sort > "$O/env.txt"
                pwd > "$O/cwd.txt"
                echo '{"status":"ok"}'
                """#)
        try sandbox.write("pipeline.yaml", """
            name: contract
            steps:
              make: {uses: ./bundles/make}
              probe:
                uses: ./bundles/probe
                config: {name: probe}
                inputs: {data: make.data}
            """)
        let (result, summary) = try sandbox.runPipeline("pipeline.yaml", [], environment: ["PROBE_TOKEN": "secret-value", "NOT_DECLARED": "x"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        let steps = summary["steps"] as? [[String: Any]] ?? []
        let dump = (steps.first { $0["name"] as? String == "probe" }?["outputs"] as? [String: String])?["dump"] ?? ""
        let hex = String(dump.dropFirst(7))
        let directory = "\(sandbox.root)/.zenml/artifacts/sha256/\(hex.prefix(2))/\(hex)"

        let requestText = try String(contentsOfFile: directory + "/request.json", encoding: .utf8)
        let request = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(requestText.utf8)) as? [String: Any])
        XCTAssertEqual(request["contract"] as? Int, 1)
        let config = request["config"] as? [String: Any]
        XCTAssertEqual(config?["rate"] as? Double, 0.5, "defaults are applied")
        XCTAssertEqual(config?["name"] as? String, "probe")
        let input = ((request["inputs"] as? [String: Any])?["data"] as? [[String: Any]])?.first
        XCTAssertEqual((input?["properties"] as? [String: Int])?["records"], 1)
        XCTAssertTrue((input?["path"] as? String ?? "").hasPrefix(sandbox.root + "/.zenml/artifacts/sha256/"), "inputs are read in place, not copied")
        let seed = try XCTUnwrap(request["seed"] as? Int)
        XCTAssertLessThan(seed, 1 << 53)

        let schema = Sandbox.repository + "/protocol/schemas/request.schema.json"
        let check = try Sandbox.shell("python3 -c 'import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print(\"valid\")' '\(directory)/request.json' '\(schema)' 2>&1")
        XCTAssertEqual(check.trimmingCharacters(in: .whitespacesAndNewlines), "valid", check)

        let env = try String(contentsOfFile: directory + "/env.txt", encoding: .utf8)
        XCTAssertTrue(env.contains("PROBE_TOKEN=secret-value"), env)
        XCTAssertFalse(env.contains("NOT_DECLARED"), "only declared variables pass: \(env)")
        XCTAssertTrue(env.contains("LC_ALL=C.UTF-8") && env.contains("TZ=UTC") && env.contains("SOURCE_DATE_EPOCH=315532800"), env)
        let cwd = try String(contentsOfFile: directory + "/cwd.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(cwd, request["scratch"] as? String)

        // The secret's value is not stored in the metadata store, only its digest.
        let database = try Sandbox.shell("sqlite3 '\(sandbox.root)/.zenml/metadata.db' .dump")
        XCTAssertFalse(database.contains("secret-value"))
    }
}

/// `zenml-run tfrecord` reads TensorFlow's own files and artifacts.
final class TFRecordCommandTests: XCTestCase {
    static var vectors: String { Sandbox.repository + "/../shared/testdata/tfrecord" }

    func testCountHeadCatAndCorruption() throws {
        let sandbox = try Sandbox()
        let directory = TFRecordCommandTests.vectors
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/vectors.json"), "shared/testdata/tfrecord must sit beside the repository")
        for name in ["examples.tfrecord", "examples.gz.tfrecord", "examples.zlib.tfrecord"] {
            let count = try sandbox.run(["tfrecord", "count", directory + "/" + name])
            XCTAssertEqual(count.exitCode, 0, count.output)
            XCTAssertEqual(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "20", name)
        }
        let head = try sandbox.run(["tfrecord", "head", directory + "/examples.gz.tfrecord", "-n", "2"])
        let lines = head.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(String(lines[0]), #"{"id":{"int64":[0]},"label":{"bytes":["cat"]},"tags":{"bytes":[]},"x":{"float":[0.5,0,0]}}"#)
        let raw = try sandbox.run(["tfrecord", "cat", directory + "/raw.tfrecord", "--raw"])
        XCTAssertEqual(raw.exitCode, 0, raw.output)
        XCTAssertTrue(raw.stdout.contains("bytes_base64"))
        let corrupt = try sandbox.run(["tfrecord", "count", directory + "/corrupt.tfrecord"])
        XCTAssertNotEqual(corrupt.exitCode, 0)
        XCTAssertTrue(corrupt.stderr.contains("record 7"), corrupt.stderr)
    }

    /// Writes shard `index` of `count` holding examples `{"id": [index * 100 + i]}` for i < 4, with
    /// the Python SDK (plain, GZIP, ZLIB in turn), into `folder`.
    static func writeShards(_ folder: String, indexes: [Int], count: Int) throws {
        let script = """
            import sys
            sys.path.insert(0, sys.argv[1])
            import zenml_step as z
            folder, count = sys.argv[2], int(sys.argv[3])
            for index in map(int, sys.argv[4:]):
                compression = [None, "GZIP", "ZLIB"][index % 3]
                with z.TFRecordWriter(folder + "/" + z.shard_file_name(index, count, compression=compression), compression=compression) as out:
                    for i in range(4):
                        out.write(z.Example.from_dict({"id": [index * 100 + i]}).serialize())
            print("ok")
            """
        let output = try Sandbox.shell(
            "mkdir -p '\(folder)' && python3 -c '\(script)' '\(Sandbox.repository)/protocol/python' '\(folder)' \(count) "
                + indexes.map(String.init).joined(separator: " ") + " 2>&1")
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "ok", output)
    }

    /// The `id` of each JSON line `tfrecord head|cat` printed.
    static func ids(_ stdout: String) -> [Int] {
        stdout.split(separator: "\n").map { line in
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            return ((object?["id"] as? [String: Any])?["int64"] as? [Int])?.first ?? -1
        }
    }

    /// `{"count": {"records": N, "files": [{"path": ..., "records": n}, ...]}}` from `count --json`.
    static func counts(_ stdout: String) -> (total: Int, files: [(name: String, records: Int)]) {
        let object = (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
        let count = object?["count"] as? [String: Any]
        let files = (count?["files"] as? [[String: Any]] ?? []).map { file in
            (name: ((file["path"] as? String ?? "") as NSString).lastPathComponent, records: file["records"] as? Int ?? -1)
        }
        return (count?["records"] as? Int ?? -1, files)
    }

    func testArtifactsOfSeveralShardsAreReadInShardOrderAndAMissingShardIsAnError() throws {
        let sandbox = try Sandbox()
        // Written out of order, so name order and shard order are what put them in order.
        try Self.writeShards(sandbox.root + "/complete", indexes: [2, 0, 1], count: 3)
        try Self.writeShards(sandbox.root + "/incomplete", indexes: [0, 2], count: 3)
        try sandbox.shBundle("shards", outputs: "{examples: Examples}", config: "{properties: {set: {type: string}}}",
            extra: "env: [SHARDS_ROOT]\n", script: #"""
            cp "$SHARDS_ROOT/$(jget set)"/* "$(out examples)/"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", """
            name: sharded
            steps:
              complete: {uses: ./bundles/shards, config: {set: complete}}
              incomplete: {uses: ./bundles/shards, config: {set: incomplete}}
            """)
        let (result, summary) = try sandbox.runPipeline(environment: ["SHARDS_ROOT": sandbox.root])
        XCTAssertEqual(result.exitCode, 0, result.output)
        let steps = summary["steps"] as? [[String: Any]] ?? []
        func digest(_ step: String) -> String {
            (steps.first { $0["name"] as? String == step }?["outputs"] as? [String: String])?["examples"] ?? ""
        }
        let complete = digest("complete"), incomplete = digest("incomplete")
        XCTAssertTrue(complete.hasPrefix("sha256:") && incomplete.hasPrefix("sha256:"), "\(summary)")
        let show = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? "", "--json"])
        let executions = ((try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["run"] as? [String: Any])?["executions"] as? [[String: Any]] ?? []
        let completeID = try XCTUnwrap(
            ((executions.first { $0["step"] as? String == "complete" }?["outputs"] as? [String: Any])?["examples"] as? [String: Any])?["id"] as? Int)

        let expected = [0, 1, 2, 3, 100, 101, 102, 103, 200, 201, 202, 203]
        let shardNames = ["data-00000-of-00003.tfrecord", "data-00001-of-00003.tfrecord.gz", "data-00002-of-00003.tfrecord.zlib"]
        // The artifact by digest prefix (with and without "sha256:"), by id, and its folder in the store.
        let hex = String(complete.dropFirst("sha256:".count))
        for source in [String(hex.prefix(12)), String(complete.prefix(19)), String(completeID), ".zenml/artifacts/sha256/\(hex.prefix(2))/\(hex)"] {
            let count = try sandbox.run(["tfrecord", "count", source, "--json"])
            XCTAssertEqual(count.exitCode, 0, "\(source): \(count.output)")
            let counts = Self.counts(count.stdout)
            XCTAssertEqual(counts.total, 12, source)
            XCTAssertEqual(counts.files.map(\.name), shardNames, source)
            XCTAssertEqual(counts.files.map(\.records), [4, 4, 4], source)
            XCTAssertEqual(try sandbox.run(["tfrecord", "count", source]).stdout, "12\n", source)

            let cat = try sandbox.run(["tfrecord", "cat", source])
            XCTAssertEqual(cat.exitCode, 0, cat.output)
            XCTAssertEqual(Self.ids(cat.stdout), expected, source)
            XCTAssertEqual(cat.stdout.split(separator: "\n").first, #"{"id":{"int64":[0]}}"#)
            // head stops across a shard boundary, in the middle of the second shard.
            let head = try sandbox.run(["tfrecord", "head", source, "-n", "6"])
            XCTAssertEqual(Self.ids(head.stdout), Array(expected.prefix(6)), source)
        }

        // An artifact with a shard missing is an error naming the shard, not a count of 8.
        for source in [String(incomplete.dropFirst("sha256:".count).prefix(12)), sandbox.root + "/incomplete"] {
            for command in [["count"], ["count", "--json"], ["cat"], ["head", "-n", "1"]] {
                let failed = try sandbox.run(["tfrecord"] + command + [source])
                XCTAssertNotEqual(failed.exitCode, 0, "\(command) \(source): \(failed.output)")
                XCTAssertTrue(failed.stderr.contains("1 of 3 shards are missing (index 1)"), failed.stderr)
                XCTAssertTrue(failed.stderr.contains("data-00001-of-00003.tfrecord"), failed.stderr)
                XCTAssertFalse(failed.stdout.contains("8"), "nothing is counted or printed: \(failed.stdout)")
            }
        }
    }

    func testAFolderWithoutShardNamesReadsItsTFRecordFilesByName() throws {
        let sandbox = try Sandbox()
        let directory = TFRecordCommandTests.vectors
        let folder = sandbox.root + "/plain"
        try Sandbox.shell("""
            mkdir -p '\(folder)/sub.tfrecord' && cp '\(directory)/examples.gz.tfrecord' '\(folder)/b.tfrecord.gz' \
              && cp '\(directory)/examples.tfrecord' '\(folder)/a.tfrecord' && cp '\(directory)/examples.zlib.tfrecord' '\(folder)/c.tfrecord.zlib' \
              && cp '\(directory)/examples.tfrecord' '\(folder)/d.tfrecord.tmp' && cp '\(directory)/examples.tfrecord' '\(folder)/.e.tfrecord' \
              && cp '\(directory)/raw.tfrecord' '\(folder)/notes.txt'
            """)
        let count = try sandbox.run(["tfrecord", "count", folder, "--json"])
        XCTAssertEqual(count.exitCode, 0, count.output)
        let counts = Self.counts(count.stdout)
        XCTAssertEqual(counts.files.map(\.name), ["a.tfrecord", "b.tfrecord.gz", "c.tfrecord.zlib"], "temporary, hidden, other files and folders are not read")
        XCTAssertEqual(counts.total, 60)

        // With one shard name present the folder is sharded: the other files no longer count.
        try Sandbox.shell("cp '\(directory)/raw.tfrecord' '\(folder)/data-00000-of-00001.tfrecord'")
        let sharded = Self.counts(try sandbox.run(["tfrecord", "count", folder, "--json"]).stdout)
        XCTAssertEqual(sharded.files.map(\.name), ["data-00000-of-00001.tfrecord"])
        XCTAssertEqual(sharded.total, 5)

        let empty = sandbox.root + "/empty"
        try Sandbox.shell("mkdir -p '\(empty)' && touch '\(empty)/x.tfrecord.tmp'")
        let none = try sandbox.run(["tfrecord", "count", empty])
        XCTAssertNotEqual(none.exitCode, 0)
        XCTAssertTrue(none.stderr.contains("holds no TFRecord files"), none.stderr)
    }

    func testRawPrintsEachRecordsBytesAcrossShards() throws {
        let sandbox = try Sandbox()
        let directory = TFRecordCommandTests.vectors
        let vectors = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/vectors.json"))) as? [String: Any])?["files"]
                as? [String: Any])
        func recordBytes(_ name: String) -> [Data] {
            let records = (vectors[name] as? [String: Any])?["records"] as? [[String: Any]] ?? []
            return records.compactMap { ($0["data_b64"] ?? $0["serialized_b64"]) as? String }.compactMap { Data(base64Encoded: $0) }
        }
        let raw = recordBytes("raw.tfrecord"), examples = recordBytes("examples.tfrecord")
        XCTAssertEqual(raw.count, 5)
        XCTAssertEqual(examples.count, 20)
        let folder = sandbox.root + "/raw"
        try Sandbox.shell("""
            mkdir -p '\(folder)' && cp '\(directory)/raw.tfrecord' '\(folder)/data-00000-of-00002.tfrecord' \
              && cp '\(directory)/examples.gz.tfrecord' '\(folder)/data-00001-of-00002.tfrecord.gz'
            """)
        func decoded(_ stdout: String) -> [Data?] {
            stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { line in
                let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
                XCTAssertEqual(object?.count, 1, String(line))
                return (object?["bytes_base64"] as? String).flatMap { Data(base64Encoded: $0) }
            }
        }
        let cat = try sandbox.run(["tfrecord", "cat", folder, "--raw"])
        XCTAssertEqual(cat.exitCode, 0, cat.output)
        XCTAssertEqual(decoded(cat.stdout), (raw + examples).map { Optional($0) }, "every record's exact bytes, the 0-byte one included, in shard order")
        let head = try sandbox.run(["tfrecord", "head", folder, "--raw", "-n", "7"])
        XCTAssertEqual(decoded(head.stdout), (raw + examples.prefix(2)).map { Optional($0) })
        // Without --raw, a record that is not an Example is an error (raw.tfrecord's second record).
        let decodedCat = try sandbox.run(["tfrecord", "cat", folder])
        XCTAssertNotEqual(decodedCat.exitCode, 0, decodedCat.output)
    }
}
