import XCTest
import ZenMLContract
import ZenMLCore
@testable import ZenMLPipeline

final class PipelineGraphTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "graph-\(UUID().uuidString)"
        try write("bundles/source/step.yaml", "name: source\nversion: 1\nentrypoint: sh\noutputs: {out: Data}\n")
        try write("bundles/merge/step.yaml", "name: merge\nversion: 1\nentrypoint: sh\ninputs: {parts: {type: Data, multiple: true}}\noutputs: {out: Data}\n")
    }

    override func tearDownWithError() throws { try FileTree.remove(root) }

    func write(_ path: String, _ text: String) throws {
        try FileTree.makeDirectory((root + "/" + path as NSString).deletingLastPathComponent)
        try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + path))
    }

    func graph(_ text: String) throws -> PipelineGraph {
        try write("pipeline.yaml", text)
        return try PipelineGraph.resolve(PipelineSpec.load(root + "/pipeline.yaml"))
    }

    func testOrderIsTopologicalWithTiesBrokenByName() throws {
        let graph = try graph("""
            name: p
            steps:
              zeta: {uses: ./bundles/source}
              alpha: {uses: ./bundles/source}
              join:
                uses: ./bundles/merge
                inputs: {parts: [zeta.out, alpha.out]}
              mid: {uses: ./bundles/source}
              beta:
                uses: ./bundles/merge
                inputs: {parts: [alpha.out]}
            """)
        XCTAssertEqual(graph.steps.map(\.name), ["alpha", "beta", "mid", "zeta", "join"], "a released step goes before later names that were ready")
        XCTAssertEqual(graph[step: "join"]?.dependencies, ["alpha", "zeta"])
        XCTAssertEqual(graph[step: "join"]?.inputs["parts"], [OutputReference(step: "zeta", output: "out"), OutputReference(step: "alpha", output: "out")], "wiring order is kept")
        XCTAssertEqual(graph.upstreamClosure(of: ["join"]), ["join", "alpha", "zeta"])
        XCTAssertEqual(graph.dependents(of: "zeta"), ["join"])
        XCTAssertEqual(graph.dependents(of: "alpha"), ["beta", "join"])
    }

    func testAPipelinesResourcesReplaceTheBundlesKeyByKey() throws {
        try write("bundles/sized/step.yaml", "name: sized\nversion: 1\nentrypoint: sh\noutputs: {out: Data}\nresources: {cpus: 2, memory: 1G}\n")
        let graph = try graph("""
            name: p
            steps:
              plain: {uses: ./bundles/sized}
              tuned: {uses: ./bundles/sized, resources: {memory: 8G, gpus: 1, partition: gpu}}
              bare: {uses: ./bundles/source, resources: {time: "2:00:00"}}
              none: {uses: ./bundles/source}
            """)
        XCTAssertEqual(graph[step: "plain"]?.resources, BundleManifest.Resources(cpus: 2, memory: "1G"))
        XCTAssertEqual(graph[step: "tuned"]?.resources, BundleManifest.Resources(cpus: 2, memory: "8G", gpus: 1, partition: "gpu"))
        XCTAssertEqual(graph[step: "bare"]?.resources, BundleManifest.Resources(time: "2:00:00"))
        XCTAssertNil(graph[step: "none"]?.resources)
        XCTAssertEqual(graph.steps.map(\.name).sorted(), ["bare", "none", "plain", "tuned"])

        XCTAssertThrowsError(try self.graph("name: p\nsteps:\n  a: {uses: ./bundles/source, resources: {cpus: many}}\n")) { error in
            XCTAssertTrue("\(error)".contains("pipeline.yaml:3"), "\(error)")
            XCTAssertTrue("\(error)".contains("'cpus' must be a whole number"), "\(error)")
        }
    }

    func testSpecDigestChangesWithTheSpecOnly() throws {
        let first = try graph("name: p\nsteps:\n  a: {uses: ./bundles/source}\n").specDigest
        let reformatted = try graph("# comment\nname: p\nsteps:\n  a:\n    uses: ./bundles/source\n").specDigest
        XCTAssertEqual(first, reformatted, "formatting and comments are not part of a version")
        XCTAssertNotEqual(try graph("name: p\nsteps:\n  b: {uses: ./bundles/source}\n").specDigest, first)
    }

    func testCycleDetection() {
        func step(_ name: String, _ deps: [String]) -> ResolvedStep {
            ResolvedStep(name: name, bundlePath: "/", manifest: BundleManifest(name: name, version: "1", entrypoint: "x"), config: [:], inputs: [:], dependencies: deps, cache: true, timeout: nil)
        }
        XCTAssertEqual(PipelineGraph.findCycle([step("a", ["c"]), step("b", ["a"]), step("c", ["b"])]), ["a", "b", "c", "a"])
        XCTAssertNil(PipelineGraph.findCycle([step("a", []), step("b", ["a"])]))
        XCTAssertEqual(PipelineGraph.findCycle([step("a", ["a"])])?.count, 2)
    }

    func testShapeErrorsAreAllReported() {
        XCTAssertThrowsError(try graph("name: p\nsteps:\n  a: {uses: ./bundles/source, confg: {}}\n  b: {inputs: {}}\n  c: {uses: ./bundles/source, inputs: {x: nodot}}\n")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("pipeline.yaml:3:") && text.contains("unknown key 'confg'"), text)
            XCTAssertTrue(text.contains("pipeline.yaml:4:") && text.contains("needs 'uses:'"), text)
            XCTAssertTrue(text.contains("pipeline.yaml:5:") && text.contains("'nodot' is not an output reference"), text)
        }
    }

    func testMultipleInputsAcceptListsAndSingleInputsDoNot() throws {
        try write("bundles/single/step.yaml", "name: single\nversion: 1\nentrypoint: sh\ninputs: {part: Data}\noutputs: {out: Data}\n")
        XCTAssertNoThrow(try graph("name: p\nsteps:\n  a: {uses: ./bundles/source}\n  b: {uses: ./bundles/merge, inputs: {parts: a.out}}\n"))
        XCTAssertThrowsError(try graph("name: p\nsteps:\n  a: {uses: ./bundles/source}\n  b: {uses: ./bundles/single, inputs: {part: [a.out, a.out]}}\n")) { error in
            XCTAssertTrue("\(error)".contains("takes one artifact"), "\(error)")
        }
    }

    func testEditDistanceSuggestions() {
        XCTAssertEqual(PipelineGraph.closestName("trian", in: ["train", "eval"]), "train")
        XCTAssertNil(PipelineGraph.closestName("zzzzz", in: ["train"]))
    }
}
