import Foundation
import ZenMLEngine

/// A self-contained HTML page of views: inline CSS and SVG, no scripts, nothing fetched.
enum HTMLReport {
    static func render(_ views: Repository.Views) -> String {
        var body = ""
        let title = "zenml-run report" + (views.pipeline.map { ": \($0)" } ?? "") + (views.runID.map { ", run \($0)" } ?? "")
        body += "<h1>\(escape(title))</h1>\n"
        for located in views.evaluation { body += evaluation(located) }
        for located in views.anomalies { body += anomalies(located) }
        for located in views.statistics { body += statistics(located) }
        for located in views.schema { body += schema(located) }
        if body.filter({ $0 == "\n" }).count <= 1 { body += "<p>No views in this run.</p>\n" }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
            table{border-collapse:collapse;margin:.5em 0 1.5em}
            th,td{border-bottom:1px solid #ddd;padding:.25em .75em;text-align:right;vertical-align:middle}
            th:first-child,td:first-child{text-align:left}
            .source{color:#777;font-size:12px}
            .bad{color:#b00020;font-weight:600}.good{color:#0a7d32;font-weight:600}
            </style></head><body>
            \(body)</body></html>

            """
    }

    private static func source<T>(_ located: Repository.Located<T>) -> String {
        "<p class=\"source\">step \(escape(located.step)), output \(escape(located.output)), run \(escape(located.runID)), artifact \(located.artifact.id) (\(escape(located.artifact.digest.short)))</p>\n"
    }

    private static func statistics(_ located: Repository.Located<StatisticsView>) -> String {
        var html = "<h2>Statistics</h2>\n" + source(located)
        for dataset in located.content.datasets {
            html += "<h3>\(escape(dataset.name)): \(dataset.numExamples) examples</h3>\n<table><tr><th>feature</th><th>type</th><th>count</th><th>missing</th><th>min</th><th>mean</th><th>median</th><th>max</th><th>std</th><th>distribution</th></tr>\n"
            for feature in dataset.features {
                let cells: [String]
                if let numeric = feature.numeric {
                    cells = [number(numeric.min), number(numeric.mean), number(numeric.median), number(numeric.max), number(numeric.stdDev)].map(escape)
                        + [histogram(numeric.histogram ?? [])]
                } else {
                    let top = feature.string?.topValues ?? []
                    cells = ["", "", "", "", "", bars(top.prefix(8).map { ($0.value, $0.count) })]
                }
                html += "<tr><td>\(escape(feature.name))</td><td>\(escape(feature.type))</td><td>\(feature.count)</td><td>\(feature.missing)</td>"
                    + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
            }
            html += "</table>\n"
        }
        return html
    }

    private static func schema(_ located: Repository.Located<SchemaView>) -> String {
        var html = "<h2>Schema</h2>\n" + source(located) + "<table><tr><th>feature</th><th>type</th><th>presence</th><th>domain</th></tr>\n"
        for feature in located.content.features {
            let presence = feature.presence?.minFraction.map { $0 >= 1 ? "required" : "optional" } ?? "optional"
            var domain = "-"
            if let values = feature.domain?.values { domain = values.joined(separator: ", ") }
            else if let range = feature.domain { domain = "[\(number(range.min)), \(number(range.max))]" }
            html += "<tr><td>\(escape(feature.name))</td><td>\(escape(feature.type))</td><td>\(presence)</td><td>\(escape(domain))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    private static func anomalies(_ located: Repository.Located<AnomaliesView>) -> String {
        var html = "<h2>Anomalies</h2>\n" + source(located)
        if located.content.anomalies.isEmpty {
            html += "<p class=\"good\">None: the data matches the schema.</p>\n"
        } else {
            html += "<table><tr><th>feature</th><th>kind</th><th>severity</th><th>description</th></tr>\n"
            for anomaly in located.content.anomalies {
                html += "<tr><td>\(escape(anomaly.feature))</td><td>\(escape(anomaly.kind))</td><td class=\"\(anomaly.severity == "error" ? "bad" : "")\">\(escape(anomaly.severity))</td><td>\(escape(anomaly.description))</td></tr>\n"
            }
            html += "</table>\n"
        }
        if let drift = located.content.drift, !drift.isEmpty {
            html += "<table><tr><th>drift</th><th>L-infinity distance</th><th>threshold</th></tr>\n"
            for entry in drift {
                let over = entry.threshold.map { entry.distance > $0 } ?? false
                html += "<tr><td>\(escape(entry.feature))</td><td class=\"\(over ? "bad" : "")\">\(number(entry.distance))</td><td>\(number(entry.threshold))</td></tr>\n"
            }
            html += "</table>\n"
        }
        return html
    }

    private static func evaluation(_ located: Repository.Located<EvaluationView>) -> String {
        let evaluation = located.content
        var html = "<h2>Evaluation</h2>\n" + source(located)
        html += "<p>Accuracy <b>\(number(evaluation.accuracy))</b>\(evaluation.examples.map { " on \($0) examples" } ?? "")"
        if let baseline = evaluation.baseline?.accuracy { html += ", baseline \(number(baseline))" }
        if let blessed = evaluation.blessed { html += blessed ? " — <span class=\"good\">blessed</span>" : " — <span class=\"bad\">not blessed</span>" }
        html += "</p>\n"
        if let perClass = evaluation.perClass, !perClass.isEmpty {
            html += "<table><tr><th>class</th><th>precision</th><th>recall</th><th>support</th></tr>\n"
            for entry in perClass {
                html += "<tr><td>\(escape(entry.className))</td><td>\(number(entry.precision))</td><td>\(number(entry.recall))</td><td>\(entry.support.map(String.init) ?? "-")</td></tr>\n"
            }
            html += "</table>\n"
        }
        if let matrix = evaluation.confusionMatrix { html += confusionMatrix(matrix) }
        return html
    }

    /// A heat map: rows are actual classes, columns predicted ones.
    static func confusionMatrix(_ matrix: EvaluationView.ConfusionMatrix) -> String {
        let cell = 48, labelWidth = 120, n = matrix.labels.count
        let top = max(1, matrix.rows.flatMap { $0 }.max() ?? 1)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelWidth + n * cell)\" height=\"\(30 + n * cell)\" role=\"img\" aria-label=\"confusion matrix\">\n"
        for (column, label) in matrix.labels.enumerated() {
            svg += "<text x=\"\(labelWidth + column * cell + cell / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"11\">\(escape(label))</text>\n"
        }
        for (rowIndex, row) in matrix.rows.enumerated() where rowIndex < n {
            let y = 30 + rowIndex * cell
            svg += "<text x=\"\(labelWidth - 6)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"end\" font-size=\"11\">\(escape(matrix.labels[rowIndex]))</text>\n"
            for (column, count) in row.enumerated() where column < n {
                let shade = Double(count) / Double(top)
                let fill = rowIndex == column ? "rgba(10,125,50,\(String(format: "%.2f", 0.1 + 0.9 * shade)))" : "rgba(176,0,32,\(String(format: "%.2f", 0.05 + 0.9 * shade)))"
                svg += "<rect x=\"\(labelWidth + column * cell)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"\(fill)\"/>"
                svg += "<text x=\"\(labelWidth + column * cell + cell / 2)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"middle\" font-size=\"12\">\(count)</text>\n"
            }
        }
        return "<p>Confusion matrix (rows: actual, columns: predicted)</p>\n" + svg + "</svg>\n"
    }

    /// A small bar chart of a numeric histogram.
    static func histogram(_ buckets: [StatisticsView.Bucket]) -> String {
        bars(buckets.map { ("\(number($0.low))–\(number($0.high))", $0.count) }, labels: false)
    }

    private static func bars(_ entries: [(String, Double)], labels: Bool = true) -> String {
        guard let top = entries.map(\.1).max(), top > 0 else { return "" }
        let width = 160, height = labels ? 14 * entries.count : 36
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\">"
        if labels {
            for (index, (label, count)) in entries.enumerated() {
                let length = Int(Double(width - 70) * count / top)
                svg += "<rect x=\"70\" y=\"\(index * 14 + 2)\" width=\"\(max(1, length))\" height=\"10\" fill=\"#4a78b5\"><title>\(escape(label)): \(number(count))</title></rect>"
                svg += "<text x=\"66\" y=\"\(index * 14 + 11)\" text-anchor=\"end\" font-size=\"10\">\(escape(String(label.prefix(12))))</text>"
            }
        } else {
            let barWidth = max(1, width / max(1, entries.count))
            for (index, (label, count)) in entries.enumerated() {
                let barHeight = max(1, Int(Double(height) * count / top))
                svg += "<rect x=\"\(index * barWidth)\" y=\"\(height - barHeight)\" width=\"\(max(1, barWidth - 1))\" height=\"\(barHeight)\" fill=\"#4a78b5\"><title>\(escape(label)): \(number(count))</title></rect>"
            }
        }
        return svg + "</svg>"
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }
}
