import Foundation
import ZenMLCache
import ZenMLCore
import ZenMLMetadata

/// What differs between two runs, from the records alone: code (git), each step's bundle files,
/// config keys, data versions and inputs, the environment and the metrics; and which steps the
/// two runs shared.
public struct RunComparison: Codable, Sendable {
    public struct Value<T: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
        public var a: T?
        public var b: T?
        public var same: Bool { a == b }
    }

    /// One step in both runs (or in one of them).
    public struct Step: Codable, Sendable {
        public var name: String
        public var state: Value<String>
        public var bundle: Value<String>
        public var cacheKey: Value<String>
        /// The same cache key: B re-used A's result or computed the same action.
        public var shared: Bool
        /// Why B's step is not A's, in words (bundle files, config keys, inputs, variables, data files).
        public var differences: [String]
        /// The data a step read from outside the stores (`format: path` config keys): content digests.
        public var data: [String: Value<String>]
        public var outputs: [String: Value<String>]
        public var metrics: [String: Value<Double>]
    }

    public var runA: RunRecord
    public var runB: RunRecord
    public var gitCommit: Value<String>
    public var gitDirty: Value<Bool>
    /// Environment facts that differ (dotted paths of the recorded environment).
    public var environment: [String: Value<String>]
    public var steps: [Step]

    /// Compares two runs of any pipelines (a copy with its base, say).
    public static func compare(_ a: RunRecord, _ b: RunRecord, metadata: any MetadataStore) throws -> RunComparison {
        let executionsA = Dictionary(try metadata.executions(runID: a.id).map { ($0.step, $0) }, uniquingKeysWith: { _, last in last })
        let executionsB = Dictionary(try metadata.executions(runID: b.id).map { ($0.step, $0) }, uniquingKeysWith: { _, last in last })
        var steps: [Step] = []
        for name in Set(executionsA.keys).union(executionsB.keys).sorted() {
            let x = executionsA[name], y = executionsB[name]
            var differences: [String] = []
            if let x, let y, x.cacheKey != y.cacheKey {
                differences = KeyIngredients.changes(from: x.keyIngredients, to: y.keyIngredients)
            }
            func configDigests(_ execution: ExecutionRecord?) -> [String: String] {
                guard let execution else { return [:] }
                let paths = execution.keyIngredients["external_paths"]?.objectValue ?? [:]
                var digests: [String: String] = [:]
                for key in paths.keys {
                    let digest = execution.keyIngredients["key"]?["config"]?[key]?.stringValue ?? "?"
                    digests[key] = "\(digest) (\(paths[key]?.stringValue ?? ""))"
                }
                return digests
            }
            let dataA = configDigests(x), dataB = configDigests(y)
            let outputsA = x?.outputs.mapValues(\.digest.description) ?? [:], outputsB = y?.outputs.mapValues(\.digest.description) ?? [:]
            let metricsA = x?.metrics ?? [:], metricsB = y?.metrics ?? [:]
            steps.append(Step(
                name: name,
                state: Value(a: x?.state.name, b: y?.state.name),
                bundle: Value(a: x.map(bundleName), b: y.map(bundleName)),
                cacheKey: Value(a: x?.cacheKey?.description, b: y?.cacheKey?.description),
                shared: x != nil && x?.cacheKey != nil && x?.cacheKey == y?.cacheKey,
                differences: differences,
                data: pairs(dataA, dataB),
                outputs: pairs(outputsA, outputsB),
                metrics: pairs(metricsA, metricsB)))
        }
        var environment: [String: Value<String>] = [:]
        let flatA = flatten(a.environment), flatB = flatten(b.environment)
        for key in Set(flatA.keys).union(flatB.keys) where flatA[key] != flatB[key] {
            environment[key] = Value(a: flatA[key], b: flatB[key])
        }
        return RunComparison(
            runA: a, runB: b, gitCommit: Value(a: a.gitCommit, b: b.gitCommit), gitDirty: Value(a: a.gitDirty, b: b.gitDirty),
            environment: environment, steps: steps)
    }

    private static func bundleName(_ execution: ExecutionRecord) -> String {
        "\(execution.bundle)@\(execution.bundleVersion) \(execution.bundleDigest?.short ?? "")"
    }

    private static func pairs<T>(_ a: [String: T], _ b: [String: T]) -> [String: Value<T>] {
        var result: [String: Value<T>] = [:]
        for key in Set(a.keys).union(b.keys) { result[key] = Value(a: a[key], b: b[key]) }
        return result
    }

    private static func flatten(_ value: JSONValue, prefix: String = "") -> [String: String] {
        if let object = value.objectValue {
            var result: [String: String] = [:]
            for (key, child) in object { result.merge(flatten(child, prefix: prefix.isEmpty ? key : prefix + "." + key)) { first, _ in first } }
            return result
        }
        return value == .null ? [:] : [prefix: value.stringValue ?? CanonicalJSON.encode(value)]
    }

    /// Every difference as a line of text, most telling first; empty when the runs did the same work.
    public var differenceLines: [String] {
        var lines: [String] = []
        if !gitCommit.same {
            lines.append("code: git \(gitCommit.a.map { String($0.prefix(12)) } ?? "(none)") -> \(gitCommit.b.map { String($0.prefix(12)) } ?? "(none)")")
        }
        if gitDirty.b == true || gitDirty.a == true, !gitDirty.same || gitDirty.a == true {
            lines.append("code: uncommitted changes in \([gitDirty.a == true ? "A" : nil, gitDirty.b == true ? "B" : nil].compactMap { $0 }.joined(separator: " and "))")
        }
        for step in steps {
            // A bundle's build runs once per bundle version and machine: its absence is not a difference.
            let isBuild = step.name.hasPrefix("build:")
            if step.state.a == nil { if !isBuild { lines.append("step \(step.name): only in B") }; continue }
            if step.state.b == nil { if !isBuild { lines.append("step \(step.name): only in A") }; continue }
            for difference in step.differences { lines.append("step \(step.name): \(difference)") }
            for (key, value) in step.data.sorted(by: { $0.key < $1.key }) where !value.same {
                lines.append("data \(step.name).\(key): \(value.a ?? "-") -> \(value.b ?? "-")")
            }
            for (name, value) in step.outputs.sorted(by: { $0.key < $1.key }) where !value.same && step.shared {
                lines.append("step \(step.name): same action but output \(name) differs (\(value.a ?? "-") -> \(value.b ?? "-")): not reproducible")
            }
            for (name, value) in step.metrics.sorted(by: { $0.key < $1.key }) where !value.same {
                lines.append("metric \(step.name).\(name): \(value.a.map(number) ?? "-") -> \(value.b.map(number) ?? "-")")
            }
        }
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            lines.append("environment \(key): \(value.a ?? "-") -> \(value.b ?? "-")")
        }
        return lines
    }

    private func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.6g", value)
    }
}
