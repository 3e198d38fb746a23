import Foundation
import ZenMLContract
import ZenMLCore

/// A step whose bundle was found and whose wiring, types and config were checked.
public struct ResolvedStep: Sendable {
    public var name: String
    /// The absolute path of the bundle folder.
    public var bundlePath: String
    public var manifest: BundleManifest
    /// The config with the bundle's defaults applied.
    public var config: [String: JSONValue]
    /// For each declared input, the wired outputs in order (empty for an unwired optional input).
    public var inputs: [String: [OutputReference]]
    /// The steps this one reads from, sorted.
    public var dependencies: [String]
    public var cache: Bool
    /// The timeout that applies: the pipeline's override, else the bundle's.
    public var timeout: Double?
    /// How many times a failed execution is tried again.
    public var retries: Int = 0
    /// What the step asks a cluster scheduler for: the pipeline's `resources:` over the bundle's.
    public var resources: BundleManifest.Resources?
    /// Where a registry bundle came from (`NAME@VERSION from registry R`); `nil` for a local folder.
    public var source: String?
}

/// A `uses:` that names a registry bundle, resolved (and pulled) to a local folder.
public struct BundleLocation: Sendable, Hashable {
    public var path: String
    /// For records and messages: what was resolved to what, from where.
    public var source: String

    public init(path: String, source: String) {
        self.path = path
        self.source = source
    }
}

/// A validated pipeline: steps in a stable topological order (ties broken by step name).
public struct PipelineGraph: Sendable {
    public var spec: PipelineSpec
    /// Steps in the order they may run one after another.
    public var steps: [ResolvedStep]
    private var indexByName: [String: Int]

    /// The digest of the pipeline file's content as JSON: a pipeline version.
    public var specDigest: Digest { Digest.of(canonical: spec.document.root) }

    public subscript(step name: String) -> ResolvedStep? {
        indexByName[name].map { steps[$0] }
    }

    /// The steps that read from `name`, directly.
    public func dependents(of name: String) -> [String] {
        steps.filter { $0.dependencies.contains(name) }.map(\.name)
    }

    /// `names` and everything upstream of them.
    public func upstreamClosure(of names: [String]) -> Set<String> {
        var result = Set<String>()
        var stack = names
        while let name = stack.popLast() {
            guard result.insert(name).inserted, let step = self[step: name] else { continue }
            stack.append(contentsOf: step.dependencies)
        }
        return result
    }

    /// Loads every step's bundle and checks the whole pipeline. Every problem is reported at once,
    /// each with the file, line and a message that says what to change.
    /// - Parameter locations: folders for `uses:` values that are not paths (registry references), by `uses:` text.
    public static func resolve(_ spec: PipelineSpec, locations: [String: BundleLocation] = [:]) throws -> PipelineGraph {
        var issues: [PipelineIssue] = []
        let document = spec.document
        func issue(_ path: [String], _ message: String, atKey: Bool = false) {
            issues.append(PipelineIssue(location: atKey ? document.keyLocation(path) : document.location(path), message: message))
        }
        var manifests: [String: (path: String, manifest: BundleManifest)] = [:]
        // Many steps often share one bundle (a chain of the same step with different configs): read each once.
        var loaded: [String: BundleManifest] = [:]
        let directory = spec.directory
        for step in spec.steps {
            let bundlePath = locations[step.uses]?.path ?? FileTree.absolute(step.uses, relativeTo: directory)
            if let manifest = loaded[bundlePath] {
                manifests[step.name] = (bundlePath, manifest)
                continue
            }
            do {
                guard let status = try FileStatus.of(bundlePath, followingLinks: true), status.kind == .directory else {
                    issue(["steps", step.name, "uses"], "step '\(step.name)' uses '\(step.uses)', but there is no bundle folder at \(bundlePath)")
                    continue
                }
                let manifest = try BundleManifest.load(bundle: bundlePath)
                loaded[bundlePath] = manifest
                manifests[step.name] = (bundlePath, manifest)
            } catch let error as ManifestError {
                issues.append(PipelineIssue(location: error.location, message: "\(error.message) (bundle of step '\(step.name)')"))
            } catch let error as YAMLDocumentError {
                issues.append(PipelineIssue(location: error.location, message: error.message))
            } catch {
                issue(["steps", step.name, "uses"], "cannot read the bundle of step '\(step.name)': \(error)")
            }
        }
        let stepNames = Set(spec.steps.map(\.name))
        var resolved: [ResolvedStep] = []
        for step in spec.steps {
            guard let (bundlePath, manifest) = manifests[step.name] else { continue }
            var dependencies = Set<String>()
            for (inputName, references) in step.inputs.sorted(by: { $0.key < $1.key }) {
                let path = ["steps", step.name, "inputs", inputName]
                guard let declared = manifest.inputs[inputName] else {
                    let known = manifest.inputs.keys.sorted()
                    issue(path, "bundle '\(manifest.name)' has no input '\(inputName)'" + (known.isEmpty ? " (it takes no inputs)" : " (its inputs: \(known.joined(separator: ", ")))"), atKey: true)
                    continue
                }
                if references.count > 1 && !declared.multiple {
                    issue(path, "input '\(inputName)' of bundle '\(manifest.name)' takes one artifact; wire a single 'step.output' (or declare it 'multiple: true')")
                }
                for (index, reference) in references.enumerated() {
                    // Only a message needs it (a lookup in the file per input was quadratic).
                    var referencePath: [String] {
                        references.count > 1 || document.location(path + ["0"]) != document.location(path) ? path + [String(index)] : path
                    }
                    guard stepNames.contains(reference.step) else {
                        let hint = closestName(reference.step, in: stepNames).map { "; did you mean '\($0)'?" } ?? ""
                        issue(referencePath, "input '\(inputName)' reads from '\(reference)', but there is no step '\(reference.step)'\(hint)")
                        continue
                    }
                    if reference.step == step.name {
                        issue(referencePath, "step '\(step.name)' cannot read its own output '\(reference)'")
                        continue
                    }
                    dependencies.insert(reference.step)
                    guard let upstream = manifests[reference.step]?.manifest else { continue }
                    guard let output = upstream.outputs[reference.output] else {
                        let known = upstream.outputs.keys.sorted().joined(separator: ", ")
                        issue(referencePath, "step '\(reference.step)' has no output '\(reference.output)' (its outputs: \(known.isEmpty ? "none" : known))")
                        continue
                    }
                    if output.type != declared.type {
                        issue(referencePath, "type mismatch: input '\(inputName)' of step '\(step.name)' takes \(declared.type), but '\(reference)' is \(output.type)")
                    }
                }
            }
            for (inputName, declared) in manifest.inputs.sorted(by: { $0.key < $1.key })
            where !declared.optional && (step.inputs[inputName] ?? []).isEmpty {
                issue(["steps", step.name], "step '\(step.name)' needs its input '\(inputName)' (\(declared.type)); wire it under 'inputs:' as '\(inputName): some_step.some_output'", atKey: true)
            }
            var config: [String: JSONValue] = [:]
            switch manifest.config.resolve(step.config) {
            case .success(let values): config = values
            case .failure(let failure):
                for problem in failure.issues {
                    let path = ["steps", step.name, "config"] + problem.path
                    let atKey = step.config[problem.path.first ?? ""] != nil && problem.message.hasPrefix("unknown")
                    issue(step.config.isEmpty ? ["steps", step.name] : path, "\(problem.message) (step '\(step.name)', bundle '\(manifest.name)')", atKey: atKey || step.config.isEmpty)
                }
            }
            var inputs: [String: [OutputReference]] = [:]
            for name in manifest.inputs.keys { inputs[name] = step.inputs[name] ?? [] }
            resolved.append(
                ResolvedStep(
                    name: step.name, bundlePath: bundlePath, manifest: manifest, config: config, inputs: inputs,
                    dependencies: dependencies.sorted(), cache: step.cache, timeout: step.timeout ?? manifest.timeout, retries: step.retries,
                    resources: step.resources.map { (manifest.resources ?? .init()).overridden(by: $0) } ?? manifest.resources,
                    source: locations[step.uses]?.source))
        }
        if issues.isEmpty, let cycle = findCycle(resolved) {
            issue(["steps", cycle[0]], "the steps form a cycle: \(cycle.joined(separator: " -> ")); a step cannot depend on its own results", atKey: true)
        }
        if !issues.isEmpty { throw PipelineError(issues: issues) }
        let ordered = topologicalOrder(resolved)
        var index: [String: Int] = [:]
        for (position, step) in ordered.enumerated() { index[step.name] = position }
        return PipelineGraph(spec: spec, steps: ordered, indexByName: index)
    }

    /// Kahn's algorithm; among steps that are ready at the same time, the smaller name goes first.
    /// Each step is visited once and each dependency once: a 500-wide fan took 9 ms when every
    /// release scanned all remaining steps and sorted the ready list again.
    static func topologicalOrder(_ steps: [ResolvedStep]) -> [ResolvedStep] {
        var unmet: [String: Int] = [:]
        var dependents: [String: [String]] = [:]
        for step in steps {
            let dependencies = Set(step.dependencies)
            unmet[step.name] = dependencies.count
            for dependency in dependencies { dependents[dependency, default: []].append(step.name) }
        }
        let byName = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0) })
        // Sorted largest first, so that the smallest ready name is the last element.
        var ready = unmet.filter { $0.value == 0 }.map(\.key).sorted(by: >)
        var order: [ResolvedStep] = []
        order.reserveCapacity(steps.count)
        while let name = ready.popLast() {
            if let step = byName[name] { order.append(step) }
            for other in dependents[name] ?? [] {
                guard let count = unmet[other] else { continue }
                unmet[other] = count - 1
                guard count == 1 else { continue }
                var low = 0, high = ready.count
                while low < high {
                    let middle = (low + high) / 2
                    if ready[middle] > other { low = middle + 1 } else { high = middle }
                }
                ready.insert(other, at: low)
            }
        }
        return order
    }

    /// A cycle as `a -> b -> a`, following dependencies, or `nil`.
    static func findCycle(_ steps: [ResolvedStep]) -> [String]? {
        let dependencies = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0.dependencies) })
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var stack: [String] = []
        func visit(_ name: String) -> [String]? {
            if state[name] == 2 { return nil }
            if state[name] == 1 {
                guard let start = stack.firstIndex(of: name) else { return nil }
                return Array(stack[start...]) + [name]
            }
            state[name] = 1
            stack.append(name)
            for next in dependencies[name] ?? [] {
                if let cycle = visit(next) { return cycle }
            }
            stack.removeLast()
            state[name] = 2
            return nil
        }
        for name in steps.map(\.name).sorted() {
            if let cycle = visit(name) {
                // Read in data-flow order: producer -> consumer.
                return cycle.reversed()
            }
        }
        return nil
    }

    static func closestName(_ name: String, in names: Set<String>) -> String? {
        names.map { ($0, editDistance($0, name)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
