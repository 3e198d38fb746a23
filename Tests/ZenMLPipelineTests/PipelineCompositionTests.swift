import XCTest
import ZenMLContract
import ZenMLCore
@testable import ZenMLPipeline

final class PipelineCompositionTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "composition-\(UUID().uuidString)"
        try write("bundles/source/step.yaml", "name: source\nversion: 1\nentrypoint: sh\noutputs: {out: Data}\nconfig: {properties: {rows: {type: integer, default: 1}, seed: {type: integer, default: 0}}}\n")
        try write("bundles/other/step.yaml", "name: other\nversion: 1\nentrypoint: sh\ninputs: {data: Data}\noutputs: {out: Data}\n")
        try write("base/pipeline.yaml", """
            name: base
            description: the original
            steps:
              load:
                uses: ../bundles/source
                config: {rows: 10, seed: 3}
              use:
                uses: ../bundles/other
                inputs: {data: load.out}
                resources: {cpus: 4, memory: 2G}
              extra:
                uses: ../bundles/source
            """)
    }

    override func tearDownWithError() throws { try FileTree.remove(root) }

    func write(_ path: String, _ text: String) throws {
        try FileTree.makeDirectory((root + "/" + path as NSString).deletingLastPathComponent)
        try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + path))
    }

    /// A file parsed ahead (while a command opens its stores) is used as read; one parsed from
    /// another path is not, and a file that could not be parsed ahead is read again.
    func testAFileParsedAheadIsUsedForItsOwnPathOnly() throws {
        let path = root + "/base/pipeline.yaml"
        let parsed = try YAMLDocument(contentsOf: path)
        try write("base/pipeline.yaml", "name: changed-after-parsing\nsteps:\n  load: {uses: ../bundles/source}\n")
        XCTAssertEqual(try PipelineSpec.load(path, parsed: parsed).name, "base", "the parsed document, not the file as it is now")
        let other = try YAMLDocument(text: "name: elsewhere\nsteps:\n  load: {uses: ../bundles/source}\n", file: root + "/other.yaml")
        XCTAssertEqual(try PipelineSpec.load(path, parsed: other).name, "changed-after-parsing")
        let missing = try? YAMLDocument(contentsOf: root + "/missing.yaml")
        XCTAssertNil(missing)
        XCTAssertThrowsError(try PipelineSpec.load(root + "/missing.yaml", parsed: missing)) { error in
            XCTAssertTrue("\(error)".contains("no pipeline file"), "\(error)")
        }
    }

    func testACopyPatchesConfigKeyByKeyRemovesStepsAndRebasesBundlePaths() throws {
        try write("copies/deeper/copy.yaml", """
            name: copy
            base: ../../base/pipeline.yaml
            steps:
              load:
                config: {rows: 20, seed: null}
              use:
                resources: {memory: 16G, cpus: null}
              extra: null
            """)
        let spec = try PipelineSpec.load(root + "/copies/deeper/copy.yaml")
        XCTAssertEqual(spec.name, "copy")
        XCTAssertEqual(spec.steps.map(\.name).sorted(), ["load", "use"])
        let load = try XCTUnwrap(spec.steps.first { $0.name == "load" })
        XCTAssertEqual(load.config, ["rows": .int(20)], "rows replaced, seed removed")
        XCTAssertEqual(load.uses, "../../bundles/source")
        XCTAssertNil(spec.document.root["description"], "the copy does not inherit the base's description")
        // The rebased paths resolve to the same bundles.
        let graph = try PipelineGraph.resolve(spec)
        XCTAssertEqual(graph[step: "use"]?.dependencies, ["load"])
        XCTAssertEqual(graph[step: "use"]?.resources, BundleManifest.Resources(memory: "16G"), "resources are patched key by key")
    }

    func testACopyThatChangesNothingButItsNameHasTheBasesSteps() throws {
        try write("copy.yaml", "name: same\nbase: base/pipeline.yaml\n")
        let base = try PipelineSpec.load(root + "/base/pipeline.yaml")
        let copy = try PipelineSpec.load(root + "/copy.yaml")
        XCTAssertEqual(copy.steps.map(\.name), base.steps.map(\.name))
        XCTAssertEqual(copy.steps.map(\.config), base.steps.map(\.config))
        XCTAssertEqual(Set(copy.steps.map(\.uses)), ["./bundles/source", "./bundles/other"])
    }

    func testErrorsInInheritedValuesPointAtTheBaseFile() throws {
        try write("base/pipeline.yaml", "name: base\nsteps:\n  load:\n    uses: ../bundles/source\n    config: {rows: many}\n")
        try write("copy.yaml", "name: copy\nbase: base/pipeline.yaml\nsteps:\n  load:\n    config: {seed: 1}\n")
        XCTAssertThrowsError(try PipelineGraph.resolve(PipelineSpec.load(root + "/copy.yaml"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("base/pipeline.yaml:5"), text)
            XCTAssertTrue(text.contains("rows"), text)
        }
    }

    func testBaseCyclesAndMissingNamesAreClearErrors() throws {
        try write("a.yaml", "name: a\nbase: b.yaml\n")
        try write("b.yaml", "name: b\nbase: a.yaml\n")
        XCTAssertThrowsError(try PipelineSpec.load(root + "/a.yaml")) { error in
            XCTAssertTrue("\(error)".contains("cycle: a.yaml -> b.yaml -> a.yaml"), "\(error)")
        }
        try write("nameless.yaml", "base: base/pipeline.yaml\n")
        XCTAssertThrowsError(try PipelineSpec.load(root + "/nameless.yaml")) { error in
            XCTAssertTrue("\(error)".contains("needs a 'name' of its own"), "\(error)")
        }
        try write("registered.yaml", "name: r\nbase: penguins\n")
        XCTAssertThrowsError(try PipelineSpec.load(root + "/registered.yaml")) { error in
            XCTAssertTrue("\(error)".contains("needs a workspace"), "\(error)")
        }
        XCTAssertThrowsError(try PipelineSpec.load(root + "/registered.yaml", resolveBase: { _ in nil })) { error in
            XCTAssertTrue("\(error)".contains("no pipeline 'penguins' is registered"), "\(error)")
            XCTAssertTrue("\(error)".contains("registered.yaml:2"), "\(error)")
        }
    }

    func testARegisteredBaseIsComposedFromItsRecordedSpec() throws {
        let recorded: JSONValue = ["name": "penguins", "steps": ["load": ["uses": "./bundles/source", "config": ["rows": 5]]]]
        try write("elsewhere/registered.yaml", "name: r\nbase: penguins@abc\nsteps:\n  load:\n    config: {seed: 9}\n")
        let directory = root
        let spec = try PipelineSpec.load(root + "/elsewhere/registered.yaml", resolveBase: { reference in
            reference == "penguins@abc" ? BasePipeline(root: recorded, directory: directory) : nil
        })
        XCTAssertEqual(spec.steps.first?.uses, "../bundles/source")
        XCTAssertEqual(spec.steps.first?.config, ["rows": .int(5), "seed": .int(9)])
    }

    /// A base pinned to the stores' copies (`sha256:…`, as `pipelines export` writes it) keeps its
    /// pins: they are not paths to rebase.
    func testPinnedBundlesAndDataOfABaseAreNotRebased() throws {
        let bundle = "sha256:" + String(repeating: "ab", count: 32)
        let data = "sha256:" + String(repeating: "cd", count: 32)
        let recorded: JSONValue = ["name": "penguins", "steps": [
            "load": ["uses": .string(bundle), "config": ["path": .string(data)]],
            "use": ["uses": "./bundles/other", "inputs": ["data": "load.out"]],
        ]]
        try write("elsewhere/copy.yaml", "name: c\nbase: penguins\nsteps:\n  use:\n    config: {x: 1}\n")
        let directory = root + "/project"
        let spec = try PipelineSpec.load(root + "/elsewhere/copy.yaml", resolveBase: { _ in BasePipeline(root: recorded, directory: directory) })
        let steps = Dictionary(uniqueKeysWithValues: spec.steps.map { ($0.name, $0) })
        XCTAssertEqual(steps["load"]?.uses, bundle)
        XCTAssertEqual(steps["load"]?.config["path"], .string(data))
        XCTAssertEqual(steps["use"]?.uses, "../project/bundles/other", "paths are still rebased")
    }

    func testRelativePaths() {
        XCTAssertEqual(FileTree.relative("/a/b/c", from: "/a/x"), "../b/c")
        XCTAssertEqual(FileTree.relative("/a/b", from: "/a/b"), ".")
        XCTAssertEqual(FileTree.relative("/a/b/c", from: "/a"), "b/c")
        XCTAssertEqual(PipelineComposition.relativeUses("/a/b/c", from: "/a"), "./b/c")
    }
}
