import Foundation
import ZenMLContract
import ZenMLCore

/// A pipeline file as written: a name and its steps, in file order. Parsing checks shape only;
/// ``PipelineGraph/resolve(_:)`` checks wiring, types and configs against the bundles.
public struct PipelineSpec: Sendable {
    public var name: String
    /// The absolute path of the pipeline file.
    public var file: String
    public var steps: [StepSpec]
    /// The parsed file, for locations in later errors.
    public var document: YAMLDocument

    /// The directory bundle paths are relative to.
    public var directory: String { Self.directory(ofFile: file) }

    /// The ``directory`` of the pipeline that ``load(_:resolveBase:)`` reads from `path`, known
    /// before it is read.
    public static func directory(ofFile path: String) -> String {
        (FileTree.absolute(path, relativeTo: FileTree.currentDirectory) as NSString).deletingLastPathComponent
    }

    /// Reads and checks the shape of a pipeline file, composing it over its `base:` if it has one
    /// (see ``PipelineComposition``). `resolveBase` finds bases that are not files, such as
    /// pipelines registered in a workspace. `parsed` is the file already parsed (for example while
    /// a command opened its stores); without it, or if it is another file's, the file is read here.
    public static func load(_ path: String, parsed: YAMLDocument? = nil, resolveBase: BasePipelineResolver? = nil) throws -> PipelineSpec {
        try load(path, parsed: parsed, resolveBase: resolveBase, visiting: [])
    }

    private static func load(_ path: String, parsed: YAMLDocument? = nil, resolveBase: BasePipelineResolver?, visiting: [String]) throws -> PipelineSpec {
        let absolute = FileTree.absolute(path, relativeTo: FileTree.currentDirectory)
        guard try FileStatus.of(absolute, followingLinks: true) != nil else {
            throw PipelineError(PipelineIssue(location: SourceLocation(file: path, line: 1, column: 1), message: "no pipeline file at '\(path)'"))
        }
        var document: YAMLDocument
        if let parsed, parsed.file == absolute {
            document = parsed
        } else {
            do {
                document = try YAMLDocument(contentsOf: absolute)
            } catch let error as YAMLDocumentError {
                throw PipelineError(PipelineIssue(location: error.location, message: error.message))
            }
        }
        if let reference = document.root.objectValue?["base"] {
            document = try composed(document, reference: reference, resolveBase: resolveBase, visiting: visiting + [absolute])
        }
        return try parse(document, file: absolute)
    }

    private static func composed(
        _ document: YAMLDocument, reference: JSONValue, resolveBase: BasePipelineResolver?, visiting: [String]
    ) throws -> YAMLDocument {
        func failure(_ message: String) -> PipelineError {
            PipelineError(PipelineIssue(location: document.location(["base"]), message: message))
        }
        guard let text = reference.stringValue, !text.isEmpty else {
            throw failure("'base' names the pipeline this one copies: a registered pipeline (NAME or NAME@VERSION) or a pipeline file's path")
        }
        guard document.root.objectValue?["name"]?.stringValue != nil else {
            throw PipelineError(PipelineIssue(
                location: document.location([]), message: "a copy of '\(text)' needs a 'name' of its own, e.g. name: \(text)-copy"))
        }
        let directory = (document.file as NSString).deletingLastPathComponent
        let base: BasePipeline
        if PipelineComposition.isFileReference(text) {
            let path = FileTree.absolute(text, relativeTo: directory)
            if visiting.contains(path) {
                let chain = (visiting + [path]).map { ($0 as NSString).lastPathComponent }.joined(separator: " -> ")
                throw failure("pipeline files name each other as 'base' in a cycle: \(chain)")
            }
            let spec = try load(path, resolveBase: resolveBase, visiting: visiting)
            base = BasePipeline(root: spec.document.root, directory: spec.directory, document: spec.document)
        } else {
            guard let resolveBase else {
                throw failure("'base: \(text)' names a registered pipeline, which needs a workspace; run this inside one (zenml-run init)")
            }
            guard let found = try resolveBase(text) else {
                throw failure("no pipeline '\(text)' is registered in this workspace (see 'zenml-run pipelines list'); or give 'base' a pipeline file's path")
            }
            base = found
        }
        let root = PipelineComposition.compose(base: base, copy: document.root, copyDirectory: directory)
        return YAMLDocument(merged: root, file: document.file, layers: [document] + [base.document].compactMap { $0 })
    }

    /// Checks the shape of a parsed pipeline document.
    public static func parse(_ document: YAMLDocument, file: String) throws -> PipelineSpec {
        var issues: [PipelineIssue] = []
        func issue(_ path: [String], _ message: String, atKey: Bool = false) {
            issues.append(PipelineIssue(location: atKey ? document.keyLocation(path) : document.location(path), message: message))
        }
        guard let root = document.root.objectValue else {
            throw PipelineError(PipelineIssue(location: document.location([]), message: "a pipeline file is a mapping with 'name' and 'steps'"))
        }
        for key in root.keys.sorted() where !["name", "steps", "description", "base"].contains(key) {
            issue([key], "unknown pipeline key '\(key)' (known: name, description, base, steps)", atKey: true)
        }
        let name = root["name"]?.stringValue ?? ""
        if name.isEmpty {
            issue(["name"], "the pipeline needs a 'name', e.g. name: quickstart")
        } else if !BundleManifest.isValidName(name) {
            issue(["name"], "pipeline name '\(name)' must start with a letter and use only letters, digits, '_' and '-'")
        }
        var steps: [StepSpec] = []
        if let rawSteps = root["steps"]?.objectValue {
            // In the order written (flow style puts several on a line); the places of all keys are
            // looked up at once, not each on its own.
            let places = document.keyLocations(in: ["steps"])
            let origin = SourceLocation(file: document.file, line: 1, column: 1)
            let ordered = rawSteps.keys.map { (name: $0, at: places[$0] ?? origin) }
                .sorted { ($0.at.line, $0.at.column) < ($1.at.line, $1.at.column) }.map(\.name)
            for stepName in ordered {
                // The key comes from the dictionary.
                let raw = rawSteps[stepName] ?? .null
                if let step = StepSpec.parse(name: stepName, raw: raw, document: document, issues: &issues) {
                    steps.append(step)
                }
            }
            if rawSteps.isEmpty { issue(["steps"], "the pipeline has no steps") }
        } else {
            issue(["steps"], "the pipeline needs 'steps:', a mapping of step names to {uses: ./path/to/bundle}")
        }
        if !issues.isEmpty { throw PipelineError(issues: issues) }
        return PipelineSpec(name: name, file: file, steps: steps, document: document)
    }
}

/// One step as written in a pipeline file.
public struct StepSpec: Sendable, Hashable {
    public var name: String
    /// The bundle reference, as written (a path relative to the pipeline file).
    public var uses: String
    public var config: [String: JSONValue]
    /// For each input name, the outputs wired to it, in order.
    public var inputs: [String: [OutputReference]]
    /// `false` forces the step to run even when a cached result exists.
    public var cache: Bool
    /// Overrides the bundle's timeout, in seconds.
    public var timeout: Double?
    /// How many times a failed execution is tried again (a lost cluster job, a flaky step).
    public var retries: Int = 0
    /// Cluster resources for this step, replacing the bundle's request key by key.
    public var resources: BundleManifest.Resources?

    static func parse(name: String, raw: JSONValue, document: YAMLDocument, issues: inout [PipelineIssue]) -> StepSpec? {
        let path = ["steps", name]
        func issue(_ subpath: [String], _ message: String, atKey: Bool = false) {
            let full = path + subpath
            issues.append(PipelineIssue(location: atKey ? document.keyLocation(full) : document.location(full), message: message))
        }
        guard BundleManifest.isValidName(name) else {
            issue([], "step name '\(name)' must start with a letter and use only letters, digits, '_' and '-'", atKey: true)
            return nil
        }
        guard let object = raw.objectValue else {
            issue([], "step '\(name)' must be a mapping with at least 'uses: ./path/to/bundle'")
            return nil
        }
        for key in object.keys.sorted() where !["uses", "config", "inputs", "cache", "timeout", "retries", "resources"].contains(key) {
            issue([key], "unknown key '\(key)' in step '\(name)' (known: uses, config, inputs, cache, timeout, retries, resources)", atKey: true)
        }
        guard let uses = object["uses"]?.stringValue, !uses.isEmpty else {
            issue([], "step '\(name)' needs 'uses:', the path of its bundle folder relative to the pipeline file")
            return nil
        }
        var config: [String: JSONValue] = [:]
        if let rawConfig = object["config"] {
            if let values = rawConfig.objectValue {
                config = values
            } else if rawConfig != .null {
                issue(["config"], "'config' of step '\(name)' must be a mapping of keys to values")
            }
        }
        var inputs: [String: [OutputReference]] = [:]
        if let rawInputs = object["inputs"] {
            if let wiring = rawInputs.objectValue {
                for (inputName, value) in wiring {
                    let texts: [(String, [String])]
                    if let text = value.stringValue {
                        texts = [(text, ["inputs", inputName])]
                    } else if let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) {
                        texts = list.enumerated().map { ($1.stringValue ?? "", ["inputs", inputName, String($0)]) }
                    } else {
                        issue(["inputs", inputName], "input '\(inputName)' must be wired as 'step.output' or a list of them")
                        continue
                    }
                    var references: [OutputReference] = []
                    for (text, subpath) in texts {
                        if let reference = OutputReference(text) {
                            references.append(reference)
                        } else {
                            issue(subpath, "'\(text)' is not an output reference; write it as 'step_name.output_name'")
                        }
                    }
                    inputs[inputName] = references
                }
            } else if rawInputs != .null {
                issue(["inputs"], "'inputs' of step '\(name)' must map input names to 'step.output'")
            }
        }
        var cache = true
        if let rawCache = object["cache"] {
            if let flag = rawCache.boolValue { cache = flag } else { issue(["cache"], "'cache' must be true or false") }
        }
        var timeout: Double?
        if let rawTimeout = object["timeout"] {
            if let seconds = rawTimeout.doubleValue, seconds > 0 { timeout = seconds } else {
                issue(["timeout"], "'timeout' must be a positive number of seconds")
            }
        }
        var retries = 0
        if let rawRetries = object["retries"] {
            if let count = rawRetries.intValue, (0...10).contains(count) { retries = Int(count) } else {
                issue(["retries"], "'retries' must be a whole number from 0 to 10")
            }
        }
        var resources: BundleManifest.Resources?
        if let rawResources = object["resources"] {
            switch BundleManifest.Resources.parse(rawResources) {
            case .success(let requested): resources = requested
            case .failure(let problem):
                issue(["resources"] + [problem.key].compactMap { $0 }, problem.message + " (step '\(name)')", atKey: problem.isUnknownKey)
            }
        }
        return StepSpec(
            name: name, uses: uses, config: config, inputs: inputs, cache: cache, timeout: timeout, retries: retries, resources: resources)
    }
}

/// `step.output`: an output of another step.
public struct OutputReference: Hashable, Sendable, Codable, CustomStringConvertible {
    public var step: String
    public var output: String

    public init(step: String, output: String) {
        self.step = step
        self.output = output
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.init(step: String(parts[0]), output: String(parts[1]))
    }

    public var description: String { "\(step).\(output)" }
}

/// One problem in a pipeline, at the place to change.
public struct PipelineIssue: Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(location: SourceLocation, message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): error: \(message)" }
}

/// A pipeline that cannot run, with every problem found (not just the first).
public struct PipelineError: Error, Sendable, CustomStringConvertible {
    public var issues: [PipelineIssue]

    public init(issues: [PipelineIssue]) {
        self.issues = issues.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
    }

    public init(_ issue: PipelineIssue) { self.issues = [issue] }

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
