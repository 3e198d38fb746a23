import Foundation
import ZenMLArtifacts
import ZenMLCache
import ZenMLContract
import ZenMLCore
import ZenMLMetadata
import ZenMLPipeline

/// What the next run would do with a step.
public struct StepStatusReport: Sendable, Codable {
    public var step: String
    /// `cached` (would be reused) or `run` (would run).
    public var decision: String
    /// Why it would run: the ingredients that changed since its latest execution.
    public var reasons: [String]
    public var cacheKey: String?
    /// For a cached step, the run it would reuse.
    public var cachedFromRun: String?
}

extension PipelineRunner {
    /// Says, without running anything, which steps the next run would reuse and why the others would run.
    public func status(_ graph: PipelineGraph, options: RunOptions) async -> [StepStatusReport] {
        // As a run does: a step whose key is its previous execution's is looked up without a
        // query, and why a step would run is told against that execution.
        let previousRun = PreviousRun(metadata: metadata, pipeline: graph.spec.name)
        var outputs: [String: [String: ArtifactRecord]] = [:]
        var willRun: Set<String> = []
        var reports: [StepStatusReport] = []
        for step in graph.steps {
            let upstreamRunning = step.dependencies.filter { willRun.contains($0) }
            if !upstreamRunning.isEmpty {
                willRun.insert(step.name)
                reports.append(StepStatusReport(step: step.name, decision: "run", reasons: upstreamRunning.map { "upstream step \($0) will run" }, cacheKey: nil, cachedFromRun: nil))
                continue
            }
            var inputs: [String: [ArtifactRecord]] = [:]
            for (name, references) in step.inputs {
                inputs[name] = references.compactMap { outputs[$0.step]?[$0.output] }
            }
            let fingerprint: StepFingerprint
            do {
                fingerprint = try StepFingerprint.compute(
                    step: step, pipelineDirectory: graph.spec.directory, inputs: inputs, fingerprinter: fingerprinter,
                    hostEnvironment: options.hostEnvironment)
            } catch {
                willRun.insert(step.name)
                reports.append(StepStatusReport(step: step.name, decision: "run", reasons: ["cannot compute its cache key: \(error)"], cacheKey: nil, cachedFromRun: nil))
                continue
            }
            var hit: ReusableExecution?
            if options.useCache && step.cache {
                hit = (try? await cachedExecution(
                    for: fingerprint.key, step: step.name, previousRun: previousRun, outputs: Set(step.manifest.outputs.keys))) ?? nil
            }
            if let hit {
                outputs[step.name] = hit.outputs
                reports.append(StepStatusReport(step: step.name, decision: "cached", reasons: [], cacheKey: fingerprint.key.description, cachedFromRun: hit.runID))
                continue
            }
            willRun.insert(step.name)
            let reasons = missReasons(
                step: step, spec: graph.spec, ingredients: fingerprint.ingredients, useCache: options.useCache, previousRun: previousRun)
            reports.append(StepStatusReport(step: step.name, decision: "run", reasons: reasons, cacheKey: fingerprint.key.description, cachedFromRun: nil))
        }
        try? fingerprinter.save()
        return reports
    }
}
