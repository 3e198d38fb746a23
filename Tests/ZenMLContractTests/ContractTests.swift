import XCTest
import ZenMLCore
@testable import ZenMLContract

final class ResponseTests: XCTestCase {
    func parse(_ text: String, outputs: Set<String> = ["model"]) -> Result<StepResponse, ResponseError> {
        do { return .success(try StepResponse.parse(stdout: Data(text.utf8), declaredOutputs: outputs)) } catch { return .failure(error) }
    }

    func testValidResponse() throws {
        let response = try parse(#"{"status":"ok","outputs":{"model":{"properties":{"records":10,"kind":"lr","ok":true}}},"metrics":{"accuracy":0.9},"message":"fine"}"# + "\n").get()
        XCTAssertEqual(response.status, .ok)
        XCTAssertEqual(response.outputs["model"]?["records"], .int(10))
        XCTAssertEqual(response.metrics["accuracy"], 0.9)
        XCTAssertEqual(response.message, "fine")
    }

    func testRejections() {
        let cases: [(String, String)] = [
            ("", "printed nothing"),
            ("loss=0.1\n{\"status\":\"ok\"}", "is not JSON"),
            ("[1,2]", "exactly one JSON object"),
            (#"{"status":"ok"}{"status":"ok"}"#, "exactly one JSON object"),
            (#"{"outputs":{}}"#, "'status' is required"),
            (#"{"status":"done"}"#, "'done' is not a status"),
            (#"{"status":"ok","extra":1}"#, "unknown key"),
            (#"{"status":"ok","outputs":{"other":{}}}"#, "'other' is not a declared output"),
            (#"{"status":"ok","outputs":{"model":{"properties":{"x":[1]}}}}"#, "must be a string, number or boolean"),
            (#"{"status":"ok","metrics":{"loss":"low"}}"#, "must be a number"),
            (#"{"status":"ok","message":3}"#, "must be a string"),
        ]
        for (text, expected) in cases {
            switch parse(text) {
            case .success: XCTFail("accepted: \(text)")
            case .failure(let error): XCTAssertTrue(error.description.contains(expected), "\(text): \(error)")
            }
        }
    }
}

final class ConfigSchemaTests: XCTestCase {
    func schema() throws -> ConfigSchema {
        try ConfigSchema(json: [
            "properties": [
                "rate": ["type": "number", "default": 0.1, "minimum": 0, "exclusiveMaximum": 1],
                "layers": ["type": "array", "items": ["type": "integer", "minimum": 1], "default": [64]],
                "mode": ["type": "string", "enum": ["fast", "exact"]],
                "data": ["type": "string", "format": "path"],
            ],
            "required": ["mode"],
        ])
    }

    func testDefaultsAreApplied() throws {
        let resolved = try schema().resolve(["mode": "fast"]).get()
        XCTAssertEqual(resolved["rate"], 0.1)
        XCTAssertEqual(resolved["layers"], [64])
        XCTAssertNil(resolved["data"])
        XCTAssertEqual(try schema().pathKeys, ["data"])
    }

    func testEveryProblemIsReported() throws {
        guard case .failure(let failure) = try schema().resolve(["rate": 1, "layers": [0, "x"], "colour": "red"]) else {
            return XCTFail("accepted an invalid config")
        }
        let messages = failure.issues.map(\.message).joined(separator: "\n")
        XCTAssertTrue(messages.contains("'rate' is 1; it must be less than 1"), messages)
        XCTAssertTrue(messages.contains("'layers.0' is 0; it must be at least 1"), messages)
        XCTAssertTrue(messages.contains("'layers.1' must be an integer, not string"), messages)
        XCTAssertTrue(messages.contains("unknown config key 'colour'"), messages)
        XCTAssertTrue(messages.contains("required config key 'mode' is missing"), messages)
        XCTAssertEqual(failure.issues.first { $0.message.contains("layers.1") }?.path, ["layers", "1"])
    }

    func testIntegerAcceptsIntegralNumbersOnly() throws {
        let schema = try ConfigSchema(json: ["properties": ["n": ["type": "integer"]]])
        XCTAssertNoThrow(try schema.resolve(["n": 2.0]).get())
        XCTAssertThrowsError(try schema.resolve(["n": 2.5]).get())
    }

    func testBadSchemasAreRejected() {
        XCTAssertThrowsError(try ConfigSchema(json: ["properties": ["x": ["type": "float"]]]))
        XCTAssertThrowsError(try ConfigSchema(json: ["properties": ["x": ["pattern": "a+"]]]))
        XCTAssertThrowsError(try ConfigSchema(json: ["properties": ["x": ["type": "integer", "default": "a"]]]))
        XCTAssertThrowsError(try ConfigSchema(json: ["properties": [:], "required": ["y"]]))
    }
}

final class ManifestTests: XCTestCase {
    func testFullManifest() throws {
        let manifest = try BundleManifest.parse(YAMLDocument(text: """
            name: train
            version: 1.2.0
            entrypoint: main.py
            args: ["--bundle", "${BUNDLE}"]
            inputs:
              examples: Examples
              extra: {type: Examples, optional: true, multiple: true}
            outputs:
              model: {type: Model, description: the weights}
            config:
              properties:
                epochs: {type: integer, default: 3}
            env: [WANDB_MODE]
            timeout: 600
            tests:
              - name: tiny
                config: {epochs: 1}
                inputs: {examples: samples/examples, extra: [samples/a, samples/b]}
              - inputs: {examples: samples/examples}
            """, file: "step.yaml"))
        XCTAssertEqual(manifest.tests, [
            SampleSpec(name: "tiny", config: ["epochs": 1], inputs: ["examples": ["samples/examples"], "extra": ["samples/a", "samples/b"]]),
            SampleSpec(name: "sample 2", inputs: ["examples": ["samples/examples"]]),
        ])
        XCTAssertEqual(manifest.inputs["extra"], InputSpec(type: "Examples", optional: true, multiple: true))
        XCTAssertEqual(manifest.outputs["model"]?.type, "Model")
        XCTAssertEqual(manifest.env, ["WANDB_MODE"])
        XCTAssertEqual(manifest.timeout, 600)
        XCTAssertEqual(manifest.config.properties["epochs"]?.defaultValue, 3)
    }

    func testErrorsPointAtTheLine() {
        let cases: [(String, Int, String)] = [
            ("name: x\nversion: 1\nentrypoint: a\ncontract: 2\n", 4, "contract version 2"),
            ("name: x\nversion: 1\nentrypoint: a\nouputs: {}\n", 4, "unknown manifest key 'ouputs'"),
            ("name: x\nversion: 1\nentrypoint: a\ninputs:\n  data: {optional: true}\n", 5, "needs a 'type'"),
            ("name: x\nversion: 1\nentrypoint: a\nenv: [PATH]\n", 4, "set by the host"),
            ("name: x\nversion: 1\nentrypoint: a\nconfig:\n  properties:\n    k: {type: float}\n", 6, "'type' must be one of"),
            ("name: 9x\nversion: 1\nentrypoint: a\n", 1, "must start with a letter"),
            ("name: x\nversion: 1\nentrypoint: a\ncontract: \"1\"\n", 4, "contract version \"1\""),
            ("name: x\nversion: 1.10\nentrypoint: a\n", 2, "write the version as a string"),
            ("name: x\nversion: 1\nentrypoint: a\ninputs:\n  data: {type: T, optional: yes}\n", 5, "'optional' must be true or false"),
            ("name: x\nversion: 1\nentrypoint: a\nenv: [A=B]\n", 4, "not an environment variable name"),
            ("name: x\nversion: 1\nentrypoint: a\ntests:\n  - inputs: {data: samples}\n", 5, "the bundle has no input 'data'"),
            ("name: x\nversion: 1\nentrypoint: a\ninputs: {d: T}\ntests:\n  - inputs: {d: ../outside}\n", 6, "folders inside the bundle"),
            ("name: x\nversion: 1\nentrypoint: a\nconfig:\n  properties:\n    k: {type: string, format: uri}\n", 6, "the only supported 'format' is 'path'"),
            ("name: x\nversion: 1\nentrypoint: a\nconfig:\n  properties:\n    k: {type: array, items: {type: string, format: path}}\n", 6, "top-level config keys only"),
        ]
        for (text, line, message) in cases {
            do {
                _ = try BundleManifest.parse(YAMLDocument(text: text, file: "step.yaml"))
                XCTFail("accepted:\n\(text)")
            } catch let error as ManifestError {
                XCTAssertEqual(error.location.line, line, "\(error)")
                XCTAssertTrue(error.message.contains(message), "\(error)")
            } catch {
                XCTFail("\(error)")
            }
        }
    }

    func testYAMLBooleansAreYAML12() throws {
        let document = try YAMLDocument(text: "a: no\nb: true\nc: 1.5\nd: 7\ne: '7'\n", file: "x.yaml")
        XCTAssertEqual(document.root, ["a": "no", "b": true, "c": 1.5, "d": 7, "e": "7"])
    }

    func testScalarsThatAreNeitherNumbersBooleansNorNullAreStrings() throws {
        let document = try YAMLDocument(
            text: "t: 2026-11-23\nts: 2026-11-23 10:00:00\neq: =\nmerge: <<\nn: ~\nnull: null\nhex: 0x1f\ninf: .inf\npath: ./steps/x\n",
            file: "x.yaml")
        XCTAssertEqual(document.root["t"], "2026-11-23")
        XCTAssertEqual(document.root["ts"], "2026-11-23 10:00:00")
        XCTAssertEqual(document.root["eq"], "=")
        XCTAssertEqual(document.root["merge"], "<<")
        XCTAssertEqual(document.root["n"], .null)
        XCTAssertEqual(document.root["null"], .null)
        XCTAssertEqual(document.root["hex"], 31)
        XCTAssertEqual(document.root["inf"]?.doubleValue, .infinity)
        XCTAssertEqual(document.root["path"], "./steps/x")
        // Every first character that can start a typed scalar still resolves; others are strings.
        let typed = try YAMLDocument(
            text: "neg: -3\npos: +2\nhalf: .5\nnan: .NaN\nupper: NULL\nno: False\nword: model\nquoted: '12'\ntagged: !!str 12\ndash: -x\n",
            file: "x.yaml")
        XCTAssertEqual(typed.root["neg"], -3)
        XCTAssertEqual(typed.root["pos"], 2)
        XCTAssertEqual(typed.root["half"], 0.5)
        XCTAssertEqual(typed.root["nan"]?.doubleValue?.isNaN, true)
        XCTAssertEqual(typed.root["upper"], .null)
        XCTAssertEqual(typed.root["no"], false)
        XCTAssertEqual(typed.root["word"], "model")
        XCTAssertEqual(typed.root["quoted"], "12")
        XCTAssertEqual(typed.root["tagged"], "12", "an explicit tag wins")
        XCTAssertEqual(typed.root["dash"], "-x")
    }

    /// Plain decimal integers are read without the resolver; the forms YAML 1.1 reads its own
    /// way still go through it.
    func testIntegersReadAsTheResolverReadsThem() throws {
        let document = try YAMLDocument(
            text: "zero: 0\nsigned: -0\nplain: 120\noctal: 017\nunderscored: 1_000\nhuge: 99999999999999999999\nversion: 1.2.0\n",
            file: "x.yaml")
        XCTAssertEqual(document.root["zero"], 0)
        XCTAssertEqual(document.root["signed"], "-0", "as Yams reads it")
        XCTAssertEqual(document.root["plain"], 120)
        XCTAssertEqual(document.root["octal"], 15)
        XCTAssertEqual(document.root["underscored"], 1000)
        XCTAssertEqual(document.root["huge"], "99999999999999999999")
        XCTAssertEqual(document.root["version"], "1.2.0")
        let others = try YAMLDocument(
            text: "empty:\nyes: yes\nloud: TRUE\nname: Null\nn: n\nneginf: -.inf\nexp: 1e3\ndotted: .hidden\n", file: "x.yaml")
        XCTAssertEqual(others.root["empty"], .null)
        XCTAssertEqual(others.root["yes"], "yes")
        XCTAssertEqual(others.root["loud"], true)
        XCTAssertEqual(others.root["name"], .null)
        XCTAssertEqual(others.root["n"], "n")
        XCTAssertEqual(others.root["neginf"]?.doubleValue, -.infinity)
        XCTAssertEqual(others.root["exp"], 1000.0)
        XCTAssertEqual(others.root["dotted"], ".hidden")
        let texts = try YAMLDocument(text: "semver: 0.1.0\nsize: 10MB\ndash: -x\nhex: 0xff\nsexagesimal: 1:30\nfloat: 1.5e+3\nneg: -2.5\n", file: "x.yaml")
        XCTAssertEqual(texts.root["semver"], "0.1.0")
        XCTAssertEqual(texts.root["size"], "10MB")
        XCTAssertEqual(texts.root["dash"], "-x")
        XCTAssertEqual(texts.root["hex"], 255)
        XCTAssertEqual(texts.root["sexagesimal"], 90)
        XCTAssertEqual(texts.root["float"], 1500.0)
        XCTAssertEqual(texts.root["neg"], -2.5)
    }

    /// Locations are looked up in the parsed file when asked for: values and keys, in mappings and
    /// sequences, and the nearest enclosing value for a path the file does not have.
    func testLocationsOfValuesAndKeys() throws {
        let document = try YAMLDocument(text: "name: p\nsteps:\n  a:\n    uses: ./x\n    args:\n      - one\n      - two\n", file: "p.yaml")
        XCTAssertEqual(document.location(["name"]).description, "p.yaml:1:7")
        XCTAssertEqual(document.location(["steps", "a", "uses"]).description, "p.yaml:4:11")
        XCTAssertEqual(document.keyLocation(["steps", "a", "uses"]).description, "p.yaml:4:5")
        XCTAssertEqual(document.location(["steps", "a", "args", "1"]).description, "p.yaml:7:9")
        XCTAssertEqual(document.location(["steps", "a", "config", "k"]).description, "p.yaml:4:5", "the nearest enclosing value")
        XCTAssertEqual(document.location(["steps", "a", "args", "9"]).description, "p.yaml:6:7")
        XCTAssertEqual(document.location([]).description, "p.yaml:1:1")
        // An assembled document shows each value where the first layer that has it wrote it.
        let base = try YAMLDocument(text: "steps:\n  a:\n    uses: ./base\n    config: {k: 1}\n", file: "base.yaml")
        let merged = YAMLDocument(merged: document.root, file: "p.yaml", layers: [document, base])
        XCTAssertEqual(merged.location(["steps", "a", "uses"]).description, "p.yaml:4:11")
        XCTAssertEqual(merged.location(["steps", "a", "config", "k"]).description, "base.yaml:4:17")
        XCTAssertEqual(merged.keyLocation(["steps", "a", "config"]).description, "base.yaml:4:5")
    }

    func testDuplicateKeysAreRejected() {
        XCTAssertThrowsError(try YAMLDocument(text: "a: 1\na: 2\n", file: "x.yaml")) { error in
            XCTAssertTrue("\(error)".contains("x.yaml:") && "\(error)".contains("duplicated key(s): 'a'"), "\(error)")
        }
    }
}
