import ArgumentParser
import Foundation
import ZenMLCore
import ZenMLEngine
import ZenMLMetadata

/// `--statistics`, `--schema`, `--anomalies`, `--evaluation` and `--html` for the show commands.
struct ViewOptions: ParsableArguments {
    @Flag(name: .long, help: "Show the statistics of the data (per split and feature).")
    var statistics = false
    @Flag(name: .long, help: "Show the inferred schema of the data.")
    var schema = false
    @Flag(name: .long, help: "Show the anomalies and drift found by a validation step.")
    var anomalies = false
    @Flag(name: .long, help: "Show the model evaluation: accuracy, per-class metrics, confusion matrix.")
    var evaluation = false
    @Option(name: .long, help: ArgumentHelp("Write the chosen views (all, if none is chosen) as a self-contained HTML report.", valueName: "file"))
    var html: String?

    /// The views asked for; empty when the command should show its usual record instead.
    var kinds: Set<Repository.Kind> {
        var kinds = Set<Repository.Kind>()
        if statistics { kinds.insert(.statistics) }
        if schema { kinds.insert(.schema) }
        if anomalies { kinds.insert(.anomalies) }
        if evaluation { kinds.insert(.evaluation) }
        if kinds.isEmpty && html != nil { return Set(Repository.Kind.allCases) }
        return kinds
    }

    /// Prints (or writes) the views; `false` if none was asked for.
    func show(json: Bool, load: (Set<Repository.Kind>) throws -> Repository.Views) throws -> Bool {
        let kinds = kinds
        guard !kinds.isEmpty else { return false }
        let views = try load(kinds)
        let missing = Repository.Kind.allCases.filter { kinds.contains($0) && views.isEmpty(of: $0) }
        if let html {
            let path = absolutePath(html)
            try FileTree.writeAtomically(Data(HTMLReport.render(views).utf8), to: path)
            if !json { print("wrote \(html): open it in a browser") }
        }
        if json {
            try printJSON("views", views)
        } else if html == nil {
            print(ViewText.render(views, kinds: kinds), terminator: "")
        }
        if !missing.isEmpty {
            let names = missing.map(\.rawValue).joined(separator: ", ")
            printError("note: no \(names) found in \(views.runID.map { "run \($0)" } ?? "this artifact"): a step writes them as \(missing.map(\.fileName).joined(separator: ", ")) (see steps/README.md)")
            if missing.count == kinds.count { throw CommandFailure(code: 2) }
        }
        return true
    }
}

/// Plain-text views for a terminal.
enum ViewText {
    static func render(_ views: Repository.Views, kinds: Set<Repository.Kind>) -> String {
        var text = ""
        func heading(_ title: String, _ step: String, _ artifact: ArtifactRecordSummary) {
            text += "\(title) from step \(step) (artifact \(artifact.id), \(artifact.digest))\n"
        }
        for located in views.statistics {
            heading("statistics", located.step, .init(located.artifact))
            for dataset in located.content.datasets {
                text += "\n  \(dataset.name): \(dataset.numExamples) examples\n"
                let numeric = dataset.features.filter { $0.numeric != nil }
                if !numeric.isEmpty {
                    var rows = [["  FEATURE", "TYPE", "COUNT", "MISSING", "MIN", "MEAN", "MEDIAN", "MAX", "STD", "HISTOGRAM"]]
                    for feature in numeric {
                        let n = feature.numeric
                        rows.append([
                            "  " + feature.name, feature.type, String(feature.count), missing(feature), number(n?.min), number(n?.mean),
                            number(n?.median), number(n?.max), number(n?.stdDev), sparkline(n?.histogram ?? []),
                        ])
                    }
                    text += table(rows) + "\n"
                }
                let strings = dataset.features.filter { $0.numeric == nil }
                if !strings.isEmpty {
                    var rows = [["  FEATURE", "TYPE", "COUNT", "MISSING", "UNIQUE", "TOP VALUES"]]
                    for feature in strings {
                        let top = (feature.string?.topValues ?? []).prefix(4).map { "\($0.value) (\(number($0.count)))" }.joined(separator: ", ")
                        rows.append(["  " + feature.name, feature.type, String(feature.count), missing(feature), feature.string?.unique.map(String.init) ?? "-", top])
                    }
                    text += table(rows) + "\n"
                }
            }
            text += "\n"
        }
        for located in views.schema {
            heading("schema", located.step, .init(located.artifact))
            var rows = [["  FEATURE", "TYPE", "PRESENCE", "VALUES", "DOMAIN"]]
            for feature in located.content.features {
                let presence = feature.presence?.minFraction.map { $0 >= 1 ? "required" : "optional (\(number($0 * 100))%)" } ?? "optional"
                let count = feature.valueCount.map { "\($0.min.map(String.init) ?? "?")..\($0.max.map(String.init) ?? "?")" } ?? "-"
                rows.append(["  " + feature.name, feature.type, presence, count, domain(feature.domain)])
            }
            text += table(rows) + "\n\n"
        }
        for located in views.anomalies {
            heading("anomalies", located.step, .init(located.artifact))
            if located.content.anomalies.isEmpty {
                text += "  none: the data matches the schema\n"
            } else {
                var rows = [["  FEATURE", "KIND", "SEVERITY", "DESCRIPTION"]]
                for anomaly in located.content.anomalies { rows.append(["  " + anomaly.feature, anomaly.kind, anomaly.severity, anomaly.description]) }
                text += table(rows) + "\n"
            }
            if let drift = located.content.drift, !drift.isEmpty {
                var rows = [["  DRIFT", "DISTANCE", "THRESHOLD", ""]]
                for entry in drift {
                    let over = entry.threshold.map { entry.distance > $0 } ?? false
                    rows.append(["  " + entry.feature, number(entry.distance), number(entry.threshold), over ? "over the threshold" : ""])
                }
                text += table(rows) + "\n"
            }
            text += "\n"
        }
        for located in views.evaluation {
            let evaluation = located.content
            heading("evaluation", located.step, .init(located.artifact))
            var line = "  accuracy \(number(evaluation.accuracy))"
            if let examples = evaluation.examples { line += " on \(examples) examples" }
            if let label = evaluation.label { line += ", label '\(label)'" }
            text += line + "\n"
            if let baseline = evaluation.baseline?.accuracy { text += "  baseline accuracy \(number(baseline))\n" }
            if let blessed = evaluation.blessed {
                text += "  " + (blessed ? "BLESSED" : "NOT BLESSED") + (evaluation.threshold.map { " (threshold \(number($0)))" } ?? "") + "\n"
            }
            if let perClass = evaluation.perClass, !perClass.isEmpty {
                var rows = [["  CLASS", "PRECISION", "RECALL", "SUPPORT"]]
                for entry in perClass { rows.append(["  " + entry.className, number(entry.precision), number(entry.recall), entry.support.map(String.init) ?? "-"]) }
                text += "\n" + table(rows) + "\n"
            }
            if let matrix = evaluation.confusionMatrix {
                var rows = [["  ACTUAL \\ PREDICTED"] + matrix.labels]
                for (label, row) in zip(matrix.labels, matrix.rows) { rows.append(["  " + label] + row.map(String.init)) }
                text += "\n" + table(rows) + "\n"
            }
            text += "\n"
        }
        return text
    }

    private static func missing(_ feature: StatisticsView.Feature) -> String {
        let total = feature.count + feature.missing
        guard feature.missing > 0, total > 0 else { return String(feature.missing) }
        return "\(feature.missing) (\(number(Double(feature.missing) * 100 / Double(total)))%)"
    }

    private static func domain(_ domain: SchemaView.Domain?) -> String {
        guard let domain else { return "-" }
        if let values = domain.values { return values.prefix(6).joined(separator: ", ") + (values.count > 6 ? ", … (\(values.count))" : "") }
        return "[\(number(domain.min)), \(number(domain.max))]"
    }

    /// A histogram as eight-level block characters.
    static func sparkline(_ buckets: [StatisticsView.Bucket]) -> String {
        let levels = Array("▁▂▃▄▅▆▇█")
        guard let top = buckets.map(\.count).max(), top > 0 else { return "" }
        return String(buckets.map { levels[min(levels.count - 1, Int(($0.count / top) * Double(levels.count - 1)))] })
    }
}

/// A short number: integers as integers, others with up to four significant digits.
func number(_ value: Double?) -> String {
    guard let value, value.isFinite else { return "-" }
    if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
    return String(format: "%.4g", value)
}

/// The parts of an artifact record a view's heading shows.
struct ArtifactRecordSummary {
    var id: Int64
    var digest: String
    init(_ artifact: ArtifactRecord) {
        id = artifact.id
        digest = artifact.digest.short
    }
}
