import Foundation
import XCTest

/// The shipped polyglot example (Python, C, sh) behaves as its README says.
final class QuickstartTests: XCTestCase {
    func testQuickstartCachesAndRerunsOnlyWhatChanged() throws {
        let sandbox = try Sandbox()
        try Sandbox.shell("cp -RL '\(Sandbox.repository)/examples/quickstart' '\(sandbox.root)/quickstart'")
        let pipeline = "quickstart/pipeline.yaml"

        var (result, summary) = try sandbox.runPipeline(pipeline)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["generate": "done", "normalize": "done", "report": "done"])

        (result, summary) = try sandbox.runPipeline(pipeline)
        XCTAssertEqual(Sandbox.states(summary), ["generate": "cached", "normalize": "cached", "report": "cached"])

        let text = try sandbox.read(pipeline)
        XCTAssertTrue(text.contains("scale: 2.0"))
        try sandbox.write(pipeline, text.replacingOccurrences(of: "scale: 2.0", with: "scale: 3.0"))
        (result, summary) = try sandbox.runPipeline(pipeline)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["generate": "cached", "normalize": "done", "report": "done"])

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
}
