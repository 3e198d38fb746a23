// statistics: per split and feature statistics of an Examples artifact, in one streaming pass,
// in Swift on the ZenMLStep SDK. Writes statistics.json (zenml.statistics/1) and the same numbers
// as a tensorflow_metadata DatasetFeatureStatisticsList in text format (statistics.pbtxt).
import Foundation
import ZenMLStep

/// The step's config (the host applies the manifest's defaults; these are the same).
struct Configuration {
    var topK = 20
    var histogramBuckets = 10
    var exactLimit = 20000
    var sampleSize = 20000
    var stringLimit = 100_000
    var seed: Int64 = 0

    init(_ step: StepContext) throws {
        func integer(_ key: String, _ fallback: Int64, minimum: Int64? = nil) throws -> Int64 {
            guard let raw = step.config(key), raw != .null else { return fallback }
            guard let value = raw.intValue, value >= (minimum ?? .min) else {
                throw StepSDKError("config key '\(key)' must be an integer" + (minimum.map { " of at least \($0)" } ?? "") + "; fix the pipeline's config")
            }
            return value
        }
        topK = Int(try integer("top_k", 20, minimum: 1))
        histogramBuckets = Int(try integer("histogram_buckets", 10, minimum: 1))
        exactLimit = Int(try integer("exact_limit", 20000, minimum: 1))
        sampleSize = Int(try integer("sample_size", 20000, minimum: 1))
        stringLimit = Int(try integer("string_limit", 100_000, minimum: 1))
        seed = try integer("seed", 0)
    }
}

/// One split's records and accumulators by feature name.
struct SplitResult {
    var name: String
    var records = 0
    var features: [String: FeatureAccumulator] = [:]
}

func typeError(_ key: String, _ first: FeatureType, _ other: FeatureType, split: String, record: Int) -> StepSDKError {
    StepSDKError("feature '\(key)' is \(first.rawValue) in some records and \(other.rawValue) in others (split \(split), record \(record)); "
        + "an Examples artifact must give each feature one type")
}

/// `types`: feature -> type across splits, as a feature has one type in the whole artifact.
func splitStatistics(_ split: ExampleSplit, config: Configuration, types: inout [String: FeatureType]) throws -> SplitResult {
    var result = SplitResult(name: split.name)
    try split.examples.forEach { example in
        result.records += 1
        // Sorted, so that of several mistyped features the error names the same one every time.
        for key in example.features.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard let feature = example.features[key] else { continue }
            if let accumulator = result.features[key] {
                guard accumulator.add(feature) else {
                    throw typeError(key, accumulator.type, FeatureType(feature) ?? accumulator.type, split: split.name, record: result.records - 1)
                }
                continue
            }
            guard let kind = FeatureType(feature) else { continue }  // a Feature with no list set carries no value
            if let known = types[key], known != kind {
                throw typeError(key, known, kind, split: split.name, record: result.records - 1)
            }
            types[key] = kind
            let accumulator = FeatureAccumulator(name: key, type: kind, config: config)
            result.features[key] = accumulator
            _ = accumulator.add(feature)
        }
    }
    return result
}

/// The same statistics as a tensorflow_metadata DatasetFeatureStatisticsList (text format).
func textProto(_ document: JSONValue) -> String {
    var out = TextProto()
    for dataset in document["datasets"].items {
        out.message("datasets") { out in
            out.field("name", dataset["name"])
            out.field("num_examples", dataset["num_examples"])
            for feature in dataset["features"].items {
                let lengths = feature["num_values"]
                guard case .string(let type) = feature["type"] else { continue }
                out.message("features") { out in
                    out.message("path") { $0.field("step", feature["name"]) }
                    out.enumeration("type", type)
                    out.message(type == FeatureType.string.rawValue ? "string_stats" : "num_stats") { out in
                        out.message("common_stats") { out in
                            out.field("num_non_missing", feature["count"])
                            out.field("num_missing", feature["missing"])
                            out.field("min_num_values", lengths["min"])
                            out.field("max_num_values", lengths["max"])
                            if case .int(let count) = feature["count"], count > 0, case .int(let total) = lengths["total"] {
                                out.field("avg_num_values", .double(Double(total) / Double(count)))
                            }
                            out.field("tot_num_values", lengths["total"])
                        }
                        if type == FeatureType.string.rawValue {
                            let stats = feature["string"]
                            out.field("unique", stats["unique"])
                            for top in stats["top_values"].items {
                                out.message("top_values") { out in
                                    out.field("value", top["value"])
                                    out.field("frequency", top["count"])
                                }
                            }
                            out.field("avg_length", stats["avg_length"])
                        } else {
                            let stats = feature["numeric"]
                            for key in ["mean", "std_dev", "num_zeros", "min", "median", "max"] { out.field(key, stats[key]) }
                            let buckets = stats["histogram"].items
                            if !buckets.isEmpty {
                                out.message("histograms") { out in
                                    for bucket in buckets {
                                        out.message("buckets") { out in
                                            out.field("low_value", bucket["low"])
                                            out.field("high_value", bucket["high"])
                                            out.field("sample_count", bucket["count"])
                                        }
                                    }
                                    out.enumeration("type", "STANDARD")
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return out.text.isEmpty ? "\n" : out.text
}

Step.run { step in
    let config = try Configuration(step)
    var types: [String: FeatureType] = [:]
    var results: [SplitResult] = []
    for split in try step.exampleSplits(from: "examples") {
        let result = try splitStatistics(split, config: config, types: &types)
        step.log("split \(result.name): \(result.records) records, \(result.features.count) features")
        results.append(result)
    }

    let names = types.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    var approximations = Set<String>()
    var datasets: [JSONValue] = []
    for result in results {
        var entries: [JSONValue] = []
        for name in names {
            guard let accumulator = result.features[name] else {
                entries.append(FeatureAccumulator.empty(name: name, type: types[name] ?? .string, records: result.records))
                continue
            }
            let (entry, exact) = accumulator.document(records: result.records, config: config)
            if !exact { approximations.insert(name) }
            if accumulator.nonFinite > 0 {
                step.log("split \(result.name): feature '\(name)' has \(accumulator.nonFinite) NaN or infinite values, counted as values but left out of its numbers")
            }
            entries.append(entry)
        }
        datasets.append(.object([("name", .string(result.name)), ("num_examples", .int(Int64(result.records))), ("features", .array(entries))]))
    }
    if !approximations.isEmpty {
        step.log("approximate (sampled) medians/histograms or capped string counts for: "
            + approximations.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.joined(separator: ", "))
    }

    let document = JSONValue.object([("format", .string("zenml.statistics/1")), ("datasets", .array(datasets))])
    let output = try step.outputPath("statistics")
    try Data(document.document().utf8).write(to: URL(fileURLWithPath: output + "/statistics.json"))
    try Data(textProto(document).utf8).write(to: URL(fileURLWithPath: output + "/statistics.pbtxt"))

    var properties: [String: PropertyValue] = [
        "splits": .string(results.map(\.name).joined(separator: ",")), "features": .int(types.count),
        "approximate_features": .int(approximations.count),
    ]
    var metrics: [String: Double] = [:]
    for result in results {
        properties["\(result.name)_examples"] = .int(result.records)
        metrics["\(result.name)_examples"] = Double(result.records)
    }
    let over = results.map { "\($0.name) (\($0.records))" }.joined(separator: ", ")
    return StepResult(outputs: ["statistics": properties], metrics: metrics, message: "\(types.count) features over \(over)")
}
