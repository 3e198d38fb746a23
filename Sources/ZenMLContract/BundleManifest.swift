import Foundation
import ZenMLCore

/// The contract version this host speaks. Requests carry it; steps must refuse others.
public let contractVersion = 1

/// A step bundle's manifest (`step.yaml`): what the step is, how to start it, what it takes
/// and gives, and which config it accepts. `protocol/schemas/manifest.schema.json` is its schema.
public struct BundleManifest: Sendable, Hashable {
    /// The manifest's file name inside a bundle.
    public static let fileName = "step.yaml"

    public var contract: Int
    public var name: String
    public var version: String
    public var description: String?
    /// The program to start: a path relative to the bundle, or a command found on the clean `PATH`.
    public var entrypoint: String
    /// Arguments after the entrypoint; `${BUNDLE}` is replaced by the bundle's absolute path.
    public var args: [String]
    public var inputs: [String: InputSpec]
    public var outputs: [String: OutputSpec]
    public var config: ConfigSchema
    /// Environment variables the step may receive from the host's environment; their values enter the cache key.
    public var env: [String]
    /// Seconds the step may run before its process group is killed; `nil` for no limit.
    public var timeout: Double?
    /// A shell command that builds the step (compiles a C or Swift program) into `$ZENML_BUILD_DIR`.
    /// The host runs it once per bundle digest and platform and keeps the result as an artifact;
    /// the entrypoint and args can then name `${BUILD}/program`.
    public var build: String?
    /// Sample requests for `zenml-run bundle test` (`tests:`); empty when the bundle declares none.
    public var tests: [SampleSpec] = []
    /// A Python requirements file (relative to the bundle) the step's interpreter needs: the host
    /// runs the step with a virtual environment made from it, cached per requirements digest.
    public var pythonRequirements: String?
    /// What the step needs from a cluster scheduler (Slurm); ignored when steps run locally.
    public var resources: Resources?

    /// A step's resource request, mapped to the scheduler's options (`--cpus-per-task`, `--mem`, ...).
    public struct Resources: Sendable, Hashable, Codable {
        public var cpus: Int?
        /// As the scheduler writes it: `4G`, `512M`.
        public var memory: String?
        /// A time limit as the scheduler writes it (`30`, `2:00:00`); else the step's timeout.
        public var time: String?
        public var gpus: Int?
        public var partition: String?

        public init(cpus: Int? = nil, memory: String? = nil, time: String? = nil, gpus: Int? = nil, partition: String? = nil) {
            self.cpus = cpus
            self.memory = memory
            self.time = time
            self.gpus = gpus
            self.partition = partition
        }

        /// The keys a `resources:` mapping may have.
        public static let keys = ["cpus", "memory", "time", "gpus", "partition"]

        /// What is wrong with a `resources:` mapping: the key (`nil` for the mapping itself) and why.
        public struct Issue: Error, Sendable {
            public var key: String?
            /// The problem is the key's name, not its value.
            public var isUnknownKey: Bool
            public var message: String
        }

        /// Reads a `resources:` mapping, as a bundle manifest or a pipeline step writes it.
        public static func parse(_ raw: JSONValue) -> Result<Resources, Issue> {
            guard let object = raw.objectValue else {
                return .failure(Issue(key: nil, isUnknownKey: false, message: "'resources' is a mapping: \(keys.joined(separator: ", "))"))
            }
            if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) {
                return .failure(Issue(key: unknown, isUnknownKey: true, message: "unknown resource '\(unknown)' (known: \(keys.joined(separator: ", ")))"))
            }
            var resources = Resources()
            for (key, value) in object.sorted(by: { $0.key < $1.key }) {
                switch key {
                case "cpus", "gpus":
                    guard let number = value.intValue, number >= 0 else {
                        return .failure(Issue(key: key, isUnknownKey: false, message: "'\(key)' must be a whole number"))
                    }
                    if key == "cpus" { resources.cpus = Int(number) } else { resources.gpus = Int(number) }
                default:
                    let text: String
                    if let number = value.intValue {
                        text = String(number)
                    } else if let string = value.stringValue, !string.isEmpty {
                        text = string
                    } else {
                        return .failure(Issue(key: key, isUnknownKey: false, message: "'\(key)' must be text such as 4G or 2:00:00"))
                    }
                    switch key {
                    case "memory": resources.memory = text
                    case "time": resources.time = text
                    default: resources.partition = text
                    }
                }
            }
            return .success(resources)
        }

        /// These requests with each one `overrides` sets replacing this one's (a pipeline's
        /// `resources:` for a step over its bundle's).
        public func overridden(by overrides: Resources?) -> Resources {
            guard let overrides else { return self }
            return Resources(
                cpus: overrides.cpus ?? cpus, memory: overrides.memory ?? memory, time: overrides.time ?? time,
                gpus: overrides.gpus ?? gpus, partition: overrides.partition ?? partition)
        }
    }

    public init(
        name: String, version: String, entrypoint: String, args: [String] = [],
        inputs: [String: InputSpec] = [:], outputs: [String: OutputSpec] = [:],
        config: ConfigSchema = ConfigSchema(), env: [String] = [], timeout: Double? = nil,
        description: String? = nil
    ) {
        self.contract = contractVersion
        self.name = name
        self.version = version
        self.entrypoint = entrypoint
        self.args = args
        self.inputs = inputs
        self.outputs = outputs
        self.config = config
        self.env = env
        self.timeout = timeout
        self.description = description
    }
}

/// A sample request a bundle declares for its conformance test (`tests:` in `step.yaml`).
public struct SampleSpec: Sendable, Hashable {
    public var name: String
    /// Config values (the bundle's defaults fill the rest).
    public var config: [String: JSONValue]
    /// For each input, folders inside the bundle holding sample artifacts (relative paths).
    public var inputs: [String: [String]]

    public init(name: String, config: [String: JSONValue] = [:], inputs: [String: [String]] = [:]) {
        self.name = name
        self.config = config
        self.inputs = inputs
    }
}

/// A declared input of a step.
public struct InputSpec: Sendable, Hashable, Codable {
    /// The artifact type it accepts, e.g. `Examples`.
    public var type: String
    /// Whether the pipeline may leave it unwired.
    public var optional: Bool
    /// Whether it takes a list of artifacts rather than exactly one.
    public var multiple: Bool
    public var description: String?

    public init(type: String, optional: Bool = false, multiple: Bool = false, description: String? = nil) {
        self.type = type
        self.optional = optional
        self.multiple = multiple
        self.description = description
    }
}

/// A declared output of a step: one artifact directory.
public struct OutputSpec: Sendable, Hashable, Codable {
    public var type: String
    public var description: String?

    public init(type: String, description: String? = nil) {
        self.type = type
        self.description = description
    }
}

/// A manifest that cannot be used, with the place to fix.
public struct ManifestError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public var description: String { "\(location): error: \(message)" }
}

extension BundleManifest {
    /// Names of steps, inputs, outputs and config keys: a letter, then letters, digits, `_` or `-`.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, CharacterSet.letters.contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || $0 == "_" || $0 == "-"
        } && name.count <= 128
    }

    /// Loads `step.yaml` from a bundle directory.
    public static func load(bundle directory: String) throws -> BundleManifest {
        let path = directory + "/" + fileName
        guard try FileStatus.of(path, followingLinks: true) != nil else {
            throw ManifestError(
                location: SourceLocation(file: path, line: 1, column: 1),
                message: "no \(fileName) in '\(directory)'; a step bundle is a folder with a \(fileName) manifest (see protocol/SPEC.md)")
        }
        return try parse(YAMLDocument(contentsOf: path))
    }

    /// Reads a manifest from a parsed YAML document.
    public static func parse(_ document: YAMLDocument) throws -> BundleManifest {
        func fail(_ path: [String], _ message: String) -> ManifestError {
            ManifestError(location: document.location(path), message: message)
        }
        guard let root = document.root.objectValue else {
            throw fail([], "a manifest is a mapping with at least name, version, entrypoint")
        }
        let known: Set<String> = ["contract", "name", "version", "description", "entrypoint", "args", "inputs", "outputs", "config", "env", "timeout", "build", "resources", "tests", "python"]
        for key in root.keys.sorted() where !known.contains(key) {
            throw ManifestError(location: document.keyLocation([key]), message: "unknown manifest key '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        func string(_ key: String, required: Bool) throws -> String? {
            guard let value = root[key] else {
                if required { throw fail([], "the manifest needs '\(key)'") }
                return nil
            }
            switch value {
            case .string(let text) where !text.isEmpty: return text
            case .int, .double: return CanonicalJSON.encode(value)
            default: throw fail([key], "'\(key)' must be a non-empty string")
            }
        }
        if let contract = root["contract"], contract != .int(Int64(contractVersion)) {
            throw fail(["contract"], "this bundle is written for contract version \(CanonicalJSON.encode(root["contract"] ?? .null)); this zenml-run speaks version \(contractVersion)")
        }
        // `required: true` above guarantees a value.
        let name = try string("name", required: true) ?? ""
        guard isValidName(name) else {
            throw fail(["name"], "bundle name '\(name)' must start with a letter and use only letters, digits, '_' and '-'")
        }
        if case .double = root["version"] {
            throw fail(["version"], "write the version as a string, e.g. version: \"\(CanonicalJSON.encode(root["version"] ?? .null))\" (YAML reads 1.10 as the number 1.1)")
        }
        var manifest = BundleManifest(
            name: name, version: try string("version", required: true) ?? "",
            entrypoint: try string("entrypoint", required: true) ?? "")
        manifest.description = try string("description", required: false)
        if let raw = root["args"] {
            guard let args = raw.arrayValue?.compactMap({ $0.stringValue ?? ($0.doubleValue != nil ? CanonicalJSON.encode($0) : nil) }),
                args.count == raw.arrayValue?.count
            else { throw fail(["args"], "'args' must be a list of strings") }
            manifest.args = args
        }
        func ports(_ key: String) throws -> [String: [String: JSONValue]] {
            guard let raw = root[key] else { return [:] }
            guard let object = raw.objectValue else {
                throw fail([key], "'\(key)' must be a mapping of names to {type: ...}")
            }
            var result: [String: [String: JSONValue]] = [:]
            for (portName, value) in object {
                guard isValidName(portName) else {
                    throw fail([key, portName], "'\(portName)' is not a valid \(key.dropLast()) name (a letter, then letters, digits, '_' or '-')")
                }
                if let type = value.stringValue, !type.isEmpty {
                    result[portName] = ["type": .string(type)]
                } else if let fields = value.objectValue {
                    guard fields["type"]?.stringValue?.isEmpty == false else {
                        throw fail([key, portName], "\(key.dropLast()) '\(portName)' needs a 'type', e.g. Examples or Model")
                    }
                    for flag in ["optional", "multiple"] where fields[flag] != nil && fields[flag]?.boolValue == nil {
                        throw fail([key, portName, flag], "'\(flag)' must be true or false")
                    }
                    if let description = fields["description"], description.stringValue == nil {
                        throw fail([key, portName, "description"], "'description' must be a string")
                    }
                    result[portName] = fields
                } else {
                    throw fail([key, portName], "\(key.dropLast()) '\(portName)' must be a type name or a mapping with 'type'")
                }
            }
            return result
        }
        for (portName, fields) in try ports("inputs") {
            for field in fields.keys where !["type", "optional", "multiple", "description"].contains(field) {
                throw fail(["inputs", portName, field], "unknown input field '\(field)' (known: type, optional, multiple, description)")
            }
            manifest.inputs[portName] = InputSpec(
                type: fields["type"]?.stringValue ?? "", optional: fields["optional"]?.boolValue ?? false,
                multiple: fields["multiple"]?.boolValue ?? false, description: fields["description"]?.stringValue)
        }
        for (portName, fields) in try ports("outputs") {
            for field in fields.keys where !["type", "description"].contains(field) {
                throw fail(["outputs", portName, field], "unknown output field '\(field)' (known: type, description)")
            }
            manifest.outputs[portName] = OutputSpec(type: fields["type"]?.stringValue ?? "", description: fields["description"]?.stringValue)
        }
        if let raw = root["config"] {
            do {
                manifest.config = try ConfigSchema(json: raw, path: ["config"])
            } catch {
                throw fail(error.path, error.message)
            }
        }
        if let raw = root["env"] {
            guard let names = raw.arrayValue?.compactMap(\.stringValue), names.count == raw.arrayValue?.count else {
                throw fail(["env"], "'env' must be a list of environment variable names")
            }
            let reserved = StepEnvironment.reservedNames
            for name in names where reserved.contains(name) {
                throw fail(["env"], "'\(name)' is set by the host for every step and cannot be declared")
            }
            for name in names where !StepEnvironment.isValidName(name) {
                throw fail(["env"], "'\(name)' is not an environment variable name (letters, digits and '_', not starting with a digit)")
            }
            if Set(names).count != names.count {
                throw fail(["env"], "'env' lists a variable twice")
            }
            manifest.env = names.sorted()
        }
        if let raw = root["build"] {
            guard let command = raw.stringValue, !command.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw fail(["build"], "'build' must be a shell command, e.g. build: cc -O2 -o \"$ZENML_BUILD_DIR/step\" main.c")
            }
            manifest.build = command
        }
        if let raw = root["python"] {
            guard let fields = raw.objectValue else {
                throw fail(["python"], "'python' must be a mapping, e.g. python: {requirements: requirements.txt}")
            }
            for field in fields.keys.sorted() where field != "requirements" {
                throw fail(["python", field], "unknown python field '\(field)' (known: requirements)")
            }
            guard let file = fields["requirements"]?.stringValue, !file.isEmpty, !file.hasPrefix("/"), !file.split(separator: "/").contains("..") else {
                throw fail(["python", "requirements"], "'requirements' must name a file inside the bundle, e.g. requirements.txt")
            }
            manifest.pythonRequirements = file
        }
        if let raw = root["tests"] {
            guard let list = raw.arrayValue else {
                throw fail(["tests"], "'tests' must be a list of samples, each {name, config, inputs: {INPUT: folder in the bundle}}")
            }
            for (index, item) in list.enumerated() {
                let path = ["tests", String(index)]
                guard let fields = item.objectValue else { throw fail(path, "a sample must be a mapping with name, config and inputs") }
                for field in fields.keys.sorted() where !["name", "config", "inputs"].contains(field) {
                    throw fail(path + [field], "unknown sample field '\(field)' (known: name, config, inputs)")
                }
                let name = fields["name"]?.stringValue ?? "sample \(index + 1)"
                if let config = fields["config"], config.objectValue == nil { throw fail(path + ["config"], "a sample's 'config' must be a mapping") }
                var inputs: [String: [String]] = [:]
                if let raw = fields["inputs"] {
                    guard let object = raw.objectValue else { throw fail(path + ["inputs"], "a sample's 'inputs' must map input names to folders") }
                    for (input, value) in object {
                        guard manifest.inputs[input] != nil else {
                            throw fail(path + ["inputs", input], "the bundle has no input '\(input)'")
                        }
                        let folders = value.stringValue.map { [$0] } ?? value.arrayValue?.compactMap(\.stringValue) ?? []
                        guard !folders.isEmpty, folders.allSatisfy({ !$0.hasPrefix("/") && !$0.split(separator: "/").contains("..") }) else {
                            throw fail(path + ["inputs", input], "sample input '\(input)' must name folders inside the bundle (relative, no '..')")
                        }
                        inputs[input] = folders
                    }
                }
                manifest.tests.append(SampleSpec(name: name, config: fields["config"]?.objectValue ?? [:], inputs: inputs))
            }
        }
        if let raw = root["timeout"] {
            guard let seconds = raw.doubleValue, seconds > 0 else {
                throw fail(["timeout"], "'timeout' must be a positive number of seconds")
            }
            manifest.timeout = seconds
        }
        if let raw = root["resources"] {
            switch Resources.parse(raw) {
            case .success(let resources): manifest.resources = resources
            case .failure(let issue):
                let path = ["resources"] + [issue.key].compactMap { $0 }
                throw ManifestError(location: issue.isUnknownKey ? document.keyLocation(path) : document.location(path), message: issue.message)
            }
        }
        return manifest
    }
}

/// The environment a step starts with.
public enum StepEnvironment {
    /// `[A-Za-z_][A-Za-z0-9_]*`.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && CharacterSet.letters.contains(first)) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    }

    /// Variables the host always sets; bundles cannot declare them.
    public static let reservedNames: Set<String> = [
        "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SOURCE_DATE_EPOCH", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
        "ZENML_BUNDLE_DIR", "ZENML_CONTRACT_VERSION", "ZENML_BUILD_DIR",
    ]
}
