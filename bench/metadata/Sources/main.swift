import Foundation
import ZenMLCore
import ZenMLMetadata

/// metadata-bench: opens a store through zenml-run's MetadataStore API and times the reads the
/// engine and the CLI do most.
///
///   metadata-bench init    STORE          create an empty store (ML Metadata schema 10 + our types)
///   metadata-bench measure STORE KEYS     time cache-key lookups, run listings and lineage walks
///
/// STORE is `sqlite:PATH` or `mysql:DATABASE` (server from ZENML_MARIADB_HOST/PORT/USER and the
/// password from ZENML_MARIADB_PASSWORD). KEYS is a file of existing cache keys, one a line.
/// Options for measure: --executions E --pipelines P --samples N.

struct Failure: Error, CustomStringConvertible { var description: String }

func openStore(_ spec: String) throws -> any MetadataStore {
    if spec.hasPrefix("sqlite:") { return try SQLiteMetadataStore(path: String(spec.dropFirst(7))) }
    if spec.hasPrefix("mysql:") {
        let environment = ProcessInfo.processInfo.environment
        let configuration = MySQLConfiguration(
            host: environment["ZENML_MARIADB_HOST"] ?? "127.0.0.1", port: Int(environment["ZENML_MARIADB_PORT"] ?? "") ?? 3306,
            user: environment["ZENML_MARIADB_USER"] ?? "zenml", password: environment["ZENML_MARIADB_PASSWORD"],
            database: String(spec.dropFirst(6)))
        return try MySQLMetadataStore(configuration: configuration)
    }
    throw Failure(description: "a store is sqlite:PATH or mysql:DATABASE, not \(spec)")
}

/// Milliseconds per call: median, 95th percentile, mean.
struct Timing {
    var samples: [Double] = []
    mutating func time<T>(_ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000)
        return result
    }
    var summary: String {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return "-" }
        let median = sorted[sorted.count / 2]
        let p95 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))]
        let mean = sorted.reduce(0, +) / Double(sorted.count)
        return String(format: "median %.3f ms, p95 %.3f ms, mean %.3f ms (n=%d)", median, p95, mean, sorted.count)
    }
}

func option(_ name: String, in arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func measure(_ store: any MetadataStore, keys: [String], executions: Int, pipelines: Int, samples: Int) throws {
    var generator = SystemRandomNumberGenerator()
    // Warm-up: a few of each, as a long-running process would be.
    for key in keys.prefix(20) { _ = try store.executions(withCacheKey: Digest(key) ?? Digest.of(key), limit: 1) }

    var hit = Timing()
    for _ in 0..<samples {
        guard let key = keys.randomElement(using: &generator), let digest = Digest(key) else { continue }
        let found = try hit.time { try store.executions(withCacheKey: digest, limit: 1) }
        guard found.count == 1 else { throw Failure(description: "cache key \(key) not found") }
    }
    var miss = Timing()
    for index in 0..<samples {
        let found = try miss.time { try store.executions(withCacheKey: Digest.of("absent-\(index)"), limit: 1) }
        guard found.isEmpty else { throw Failure(description: "an absent key was found") }
    }
    var runs = Timing()
    for _ in 0..<max(10, samples / 5) {
        let pipeline = "bench-p\(Int.random(in: 0..<pipelines, using: &generator))"
        let listed = try runs.time { try store.runs(pipeline: pipeline, limit: 20) }
        guard listed.count == 20, listed.allSatisfy({ $0.pipeline == pipeline }) else { throw Failure(description: "\(pipeline) listed \(listed.count) runs") }
    }
    var lineage = Timing()
    for walk in 0..<max(5, samples / 20) {
        // The first output of one of the last executions: its chain of predecessors is long.
        let execution = executions - walk
        let start = Int64(3 * (execution - 1) + 1)
        let depth = try lineage.time { () throws -> Int in
            var artifact = start
            var depth = 0
            while depth < 50, let producer = try store.producer(ofArtifact: artifact), let input = producer.inputs["in"]?.first {
                artifact = input.id
                depth += 1
            }
            return depth
        }
        guard depth == 50 else { throw Failure(description: "lineage of artifact \(start) was \(depth) steps deep, not 50") }
    }
    var digest = Timing()
    for _ in 0..<max(10, samples / 5) {
        let id = Int64.random(in: 1...Int64(3 * executions), using: &generator)
        guard let artifact = try store.artifacts(matching: String(id)).first else { throw Failure(description: "artifact \(id) missing") }
        let found = try digest.time { try store.artifacts(matching: String(artifact.digest.hex.prefix(16))) }
        guard found.map(\.id) == [id] else { throw Failure(description: "digest lookup of \(id) found \(found.map(\.id))") }
    }
    print("cache-key lookup (hit, full record): \(hit.summary)")
    print("cache-key lookup (miss):             \(miss.summary)")
    print("last 20 runs of a pipeline:          \(runs.summary)")
    print("lineage walk, 50 steps:              \(lineage.summary)")
    print("artifact by digest prefix:           \(digest.summary)")
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    guard arguments.count >= 2 else { throw Failure(description: "usage: metadata-bench init|measure STORE [KEYS] [--executions E --pipelines P --samples N]") }
    let opened = Date()
    let store = try openStore(arguments[1])
    print(String(format: "opened %@ in %.1f ms", arguments[1], Date().timeIntervalSince(opened) * 1000))
    if arguments[0] == "measure" {
        guard arguments.count >= 3 else { throw Failure(description: "measure needs a file of cache keys") }
        let keys = try String(contentsOfFile: arguments[2], encoding: .utf8).split(separator: "\n").map(String.init)
        guard !keys.isEmpty else { throw Failure(description: "the key file \(arguments[2]) is empty") }
        try measure(
            store, keys: keys, executions: Int(option("--executions", in: arguments) ?? "") ?? 1_000_000,
            pipelines: try Int(option("--pipelines", in: arguments) ?? "") ?? store.pipelines().filter { $0.name.hasPrefix("bench-p") }.count, samples: Int(option("--samples", in: arguments) ?? "") ?? 1000)
    }
} catch {
    FileHandle.standardError.write(Data("metadata-bench: error: \(error)\n".utf8))
    exit(1)
}
