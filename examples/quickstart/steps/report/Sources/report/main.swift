// report: the last step of the quickstart, in Swift on the ZenMLStep SDK. Reads the normalized
// examples and writes summary.txt (count, min, max, mean of `value`); reports the mean as a metric.
import Foundation
import ZenMLStep

Step.run { step in
    var count = 0
    var minimum = Double.infinity, maximum = -Double.infinity, sum = 0.0
    for example in try step.examples(from: "examples") {
        guard case .floatList(let values) = example["value"], let value = values.first else {
            throw StepSDKError("an example has no float 'value'; report reads normalize's examples")
        }
        count += 1
        minimum = min(minimum, Double(value))
        maximum = max(maximum, Double(value))
        sum += Double(value)
    }
    guard count > 0 else { throw StepSDKError("the input has no examples") }
    let mean = sum / Double(count)
    let summary = String(format: "rows: %d\nmin: %.6f\nmax: %.6f\nmean: %.6f\n", count, minimum, maximum, mean)
    try summary.write(toFile: step.outputPath("report") + "/summary.txt", atomically: false, encoding: .utf8)
    step.log("rows=\(count) mean=\(mean)")
    return StepResult(outputs: ["report": ["rows": .int(count)]], metrics: ["mean": mean])
}
