import Foundation
import XCTest

/// `--statistics`, `--schema`, `--anomalies`, `--evaluation` and `--html` on pipelines, runs and
/// artifacts: the views read whatever files steps wrote in the documented formats.
final class ViewTests: XCTestCase {
    static let statistics = #"""
        {"format":"zenml.statistics/1","datasets":[{"name":"train","num_examples":3,"features":[
         {"name":"mass","type":"FLOAT","count":2,"missing":1,"numeric":{"min":3000,"max":5000,"mean":4000,"std_dev":1000,"median":4000,"num_zeros":0,
          "histogram":[{"low":3000,"high":4000,"count":1},{"low":4000,"high":5000,"count":1}]}},
         {"name":"island","type":"STRING","count":3,"missing":0,"string":{"unique":2,"avg_length":6,"top_values":[{"value":"Biscoe","count":2},{"value":"Dream","count":1}]}}]}]}
        """#
    static let schema = #"""
        {"format":"zenml.schema/1","features":[{"name":"island","type":"STRING","presence":{"min_fraction":1,"min_count":1},"domain":{"values":["Biscoe","Dream"]}},
         {"name":"mass","type":"FLOAT","presence":{"min_fraction":0.5},"domain":{"min":3000,"max":5000}}]}
        """#
    static let anomalies = #"""
        {"format":"zenml.anomalies/1","anomalies":[{"feature":"island","kind":"out_of_domain","severity":"error","description":"unexpected value Torgersen"}],
         "drift":[{"feature":"island","distance":0.25,"threshold":0.1}]}
        """#
    static let evaluation = #"""
        {"format":"zenml.evaluation/1","label":"species","examples":10,"accuracy":0.9,"classes":["A","B"],
         "per_class":[{"class":"A","precision":1.0,"recall":0.8,"support":5},{"class":"B","precision":0.8333,"recall":1.0,"support":5}],
         "confusion_matrix":{"labels":["A","B"],"rows":[[4,1],[0,5]]},"baseline":{"accuracy":0.85},"threshold":0.01,"blessed":true}
        """#

    func makePipeline(_ sandbox: Sandbox, evaluationFormat: String = "zenml.evaluation/1") throws {
        try sandbox.write("fixtures/statistics.json", Self.statistics)
        try sandbox.write("fixtures/schema.json", Self.schema)
        try sandbox.write("fixtures/anomalies.json", Self.anomalies)
        try sandbox.write("fixtures/evaluation.json", Self.evaluation.replacingOccurrences(of: "zenml.evaluation/1", with: evaluationFormat))
        try sandbox.shBundle(
            "describe", outputs: "{statistics: ExampleStatistics, schema: Schema, anomalies: ExampleAnomalies}",
            config: "{properties: {fixtures: {type: string, format: path, default: fixtures}}}",
            script: #"""
                F=$(jget fixtures)
                cp "$F/statistics.json" "$(out statistics)/"; cp "$F/schema.json" "$(out schema)/"; cp "$F/anomalies.json" "$(out anomalies)/"
                echo '{"status":"ok"}'
                """#)
        try sandbox.shBundle(
            "evaluate", outputs: "{evaluation: ModelEvaluation}",
            config: "{properties: {fixtures: {type: string, format: path, default: fixtures}}}",
            script: #"""
                cp "$(jget fixtures)/evaluation.json" "$(out evaluation)/"; echo '{"status":"ok"}'
                """#)
        try sandbox.write("pipeline.yaml", """
            name: viewed
            steps:
              describe: {uses: ./bundles/describe}
              evaluate: {uses: ./bundles/evaluate}
            """)
    }

    func testViewsOfAPipelineRunAndArtifactAsTextJSONAndHTML() throws {
        let sandbox = try Sandbox()
        try makePipeline(sandbox)
        let (result, summary) = try sandbox.runPipeline()
        XCTAssertEqual(result.exitCode, 0, result.output)

        var show = try sandbox.run(["pipelines", "show", "viewed", "--statistics"])
        XCTAssertEqual(show.exitCode, 0, show.output)
        let lines = show.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.contains("train: 3 examples") }, show.output)
        let mass = try XCTUnwrap(lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("mass") }, show.output)
        for cell in ["FLOAT", "1 (33.33%)", "3000", "4000", "5000", "1000", "██"] { XCTAssertTrue(mass.contains(cell), "\(cell) in: \(mass)") }
        XCTAssertTrue(lines.contains { $0.contains("island") && $0.contains("Biscoe (2), Dream (1)") }, show.output)

        show = try sandbox.run(["runs", "show", summary["run_id"] as? String ?? "", "--schema", "--anomalies", "--evaluation"])
        XCTAssertEqual(show.exitCode, 0, show.output)
        for expected in ["required", "Biscoe, Dream", "[3000, 5000]", "out_of_domain", "unexpected value Torgersen", "over the threshold",
                         "accuracy 0.9 on 10 examples", "BLESSED (threshold 0.01)", "baseline accuracy 0.85", "ACTUAL \\ PREDICTED"] {
            XCTAssertTrue(show.stdout.contains(expected), "\(expected) in:\n\(show.stdout)")
        }

        show = try sandbox.run(["pipelines", "show", "viewed", "--evaluation", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        let evaluations = (object?["views"] as? [String: Any])?["evaluation"] as? [[String: Any]]
        let content = evaluations?.first?["content"] as? [String: Any]
        XCTAssertEqual(content?["accuracy"] as? Double, 0.9, show.output)
        XCTAssertEqual(((content?["confusion_matrix"] as? [String: Any])?["rows"] as? [[Int]]), [[4, 1], [0, 5]], show.output)

        // One artifact's views, by its id.
        let artifactID = ((evaluations?.first?["artifact"] as? [String: Any])?["id"] as? Int).map(String.init) ?? ""
        show = try sandbox.run(["artifacts", "show", artifactID, "--evaluation"])
        XCTAssertTrue(show.stdout.contains("evaluation from step evaluate"), show.output)

        show = try sandbox.run(["pipelines", "show", "viewed", "--html", "report.html"])
        XCTAssertEqual(show.exitCode, 0, show.output)
        let html = try sandbox.read("report.html")
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 3, "a histogram (mass), top values (island), the confusion matrix")
        XCTAssertTrue(html.contains("aria-label=\"confusion matrix\""))
        XCTAssertFalse(html.contains("http://") && html.contains("<script"), "self-contained")
        XCTAssertFalse(html.contains("src="), "nothing fetched")
    }

    func testMissingAndMalformedViewsAreClearErrors() throws {
        let sandbox = try Sandbox()
        try makePipeline(sandbox, evaluationFormat: "zenml.evaluation/99")
        XCTAssertEqual(try sandbox.runPipeline().0.exitCode, 0)
        var show = try sandbox.run(["pipelines", "show", "viewed", "--evaluation"])
        XCTAssertEqual(show.exitCode, 2, show.output)
        XCTAssertTrue(show.stderr.contains("has format 'zenml.evaluation/99', but this zenml-run reads 'zenml.evaluation/1'"), show.output)

        show = try sandbox.run(["pipelines", "show", "nosuch", "--statistics"])
        XCTAssertEqual(show.exitCode, 2, show.output)
        XCTAssertTrue(show.stderr.contains("pipeline 'nosuch' has no complete run yet"), show.output)

        try sandbox.write("pipeline.yaml", "name: plain\nsteps:\n  describe: {uses: ./bundles/describe}\n")
        XCTAssertEqual(try sandbox.runPipeline().0.exitCode, 0)
        show = try sandbox.run(["pipelines", "show", "plain", "--evaluation"])
        XCTAssertEqual(show.exitCode, 2, show.output)
        XCTAssertTrue(show.stderr.contains("no evaluation found in run"), show.output)
    }
}
