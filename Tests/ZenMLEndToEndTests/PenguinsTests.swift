import Foundation
import XCTest

/// The penguins example end to end: seven bundles in Python, C and Swift on a real data set, its views,
/// and a copy with the other trainer that reuses every step upstream of the trainer.
final class PenguinsTests: XCTestCase {
    func testPenguinsRunsItsViewsShowAndACopyWithTheOtherTrainerReusesTheUpstreamSteps() throws {
        let sandbox = try Sandbox()
        try sandbox.copyExamplesAndSteps()
        var (result, summary) = try sandbox.runPipeline("examples/penguins/pipeline.yaml")
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Set(Sandbox.states(summary).values), ["done"], "\(Sandbox.states(summary))")

        let views = try sandbox.run(["pipelines", "show", "penguins", "--statistics", "--evaluation"])
        XCTAssertEqual(views.exitCode, 0, views.output)
        XCTAssertTrue(views.stdout.contains("train: ") && views.stdout.contains("species"), views.stdout)
        let accuracy = views.stdout.split(separator: "\n").first { $0.contains("accuracy") } ?? ""
        XCTAssertTrue(accuracy.contains("label 'species'"), views.stdout)
        XCTAssertEqual(try sandbox.run(["pipelines", "show", "penguins", "--html", "report.html"]).exitCode, 0)
        XCTAssertTrue(try sandbox.read("report.html").contains("confusion matrix"))

        result = try sandbox.run(["pipelines", "copy", "penguins", "penguins-nb", "--set", "train.uses=steps/train-nb", "-o", "examples/penguins/nb.yaml"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        (result, summary) = try sandbox.runPipeline("examples/penguins/nb.yaml")
        XCTAssertEqual(result.exitCode, 0, result.output)
        let states = Sandbox.states(summary)
        for step in ["data", "split", "statistics", "schema", "validate"] { XCTAssertEqual(states[step], "cached", "\(step): \(states)") }
        XCTAssertEqual(states["train"], "done")
        XCTAssertEqual(states["evaluate"], "done")
        let evaluation = try sandbox.run(["pipelines", "show", "penguins-nb", "--evaluation", "--json"])
        XCTAssertEqual(evaluation.exitCode, 0, evaluation.output)
        let first = ((try JSONSerialization.jsonObject(with: Data(evaluation.stdout.utf8)) as? [String: Any])?["views"] as? [String: Any])?["evaluation"] as? [[String: Any]]
        let accuracyNB = (first?.first?["content"] as? [String: Any])?["accuracy"] as? Double ?? 0
        XCTAssertGreaterThan(accuracyNB, 0.8, "naive Bayes on penguins: \(evaluation.stdout)")
    }
}
