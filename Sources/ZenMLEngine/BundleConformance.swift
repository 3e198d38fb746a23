import Foundation
import ZenMLBundles
import ZenMLContract
import ZenMLCore
import ZenMLExecutor

/// `zenml-run bundle test`: runs a bundle under the contract, the way the engine does (same
/// executor, same clean environment, same output checks), against the samples it declares in
/// `tests:` (or generated ones) and reports, check by check, whether it obeys the contract.
public struct BundleConformance: Sendable {
    /// One check's verdict.
    public struct Check: Codable, Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    /// Everything `bundle test` found.
    public struct Report: Codable, Sendable {
        public var bundle: String
        public var version: String
        public var digest: String
        public var checks: [Check]
        /// `true` when every sample gave the same output digests twice; `nil` when no sample ran twice.
        public var deterministic: Bool?
        public var passed: Bool { checks.allSatisfy(\.passed) }
    }

    public let bundlePath: String
    public let hostEnvironment: [String: String]
    /// Where Python environments are kept (a workspace's); `nil` makes them in a temporary folder.
    public let runtimes: PythonRuntimes?

    public init(bundlePath: String, hostEnvironment: [String: String] = ProcessInfo.processInfo.environment, runtimes: PythonRuntimes? = nil) {
        self.bundlePath = FileTree.normalize(bundlePath)
        self.hostEnvironment = hostEnvironment
        self.runtimes = runtimes
    }

    /// The contract version sent to check that the step refuses requests it does not speak.
    static let unknownContract = 999

    public func run() async throws -> Report {
        var checks: [Check] = []
        func check(_ name: String, _ passed: Bool, _ detail: String) { checks.append(Check(name: name, passed: passed, detail: detail)) }
        let manifest: BundleManifest
        do {
            manifest = try BundleManifest.load(bundle: bundlePath)
            check("manifest", true, "step.yaml and its config schema are valid")
        } catch {
            check("manifest", false, "\(error)")
            return Report(bundle: (bundlePath as NSString).lastPathComponent, version: "", digest: "", checks: checks, deterministic: nil)
        }
        let digestBefore = try BundleArchive.digest(of: BundleArchive.entries(of: bundlePath))
        var report = Report(bundle: manifest.name, version: manifest.version, digest: digestBefore.description, checks: [], deterministic: nil)
        let work = NSTemporaryDirectory() + "zenml-bundle-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileTree.makeDirectory(work)
        defer { try? FileTree.remove(work) }

        var buildPath: String?
        if let command = manifest.build {
            let output = work + "/build"
            switch await build(command: command, manifest: manifest, into: output, work: work) {
            case .success: buildPath = output; check("build", true, "the build command wrote \(output)")
            case .failure(let message):
                check("build", false, message)
                report.checks = checks
                return report
            }
        }

        var host = hostEnvironment
        if manifest.pythonRequirements != nil {
            let runtimes = self.runtimes ?? PythonRuntimes(root: work + "/venvs")
            do {
                let runtime = try await runtimes.environment(bundlePath: bundlePath, manifest: manifest, hostEnvironment: host, logFile: work + "/python.log")
                host = PythonRuntimes.environment(host, with: runtime)
                let python = runtime.description["python"]?.stringValue ?? "?"
                let packages = runtime.description["packages"]?.objectValue?.count ?? 0
                check("python", true, "environment ready: Python \(python), \(packages) packages (\(runtime.path))")
            } catch {
                check("python", false, "\(error)")
                report.checks = checks
                return report
            }
        }

        var samples = manifest.tests
        var generated = false
        if samples.isEmpty {
            generated = true
            var sample = SampleSpec(name: "generated")
            for (name, input) in manifest.inputs where !input.optional {
                let folder = work + "/generated-inputs/" + name
                try FileTree.makeDirectory(folder)
                sample.inputs[name] = [folder]
            }
            samples = [sample]
        }

        var deterministic: Bool?
        for sample in samples {
            let label = "sample '\(sample.name)'"
            let config: [String: JSONValue]
            switch manifest.config.resolve(sample.config) {
            case .success(let resolved):
                // `format: path` values in samples are read from the bundle's folder.
                var withPaths = resolved
                for key in manifest.config.pathKeys {
                    if let value = resolved[key]?.stringValue { withPaths[key] = .string(FileTree.absolute(value, relativeTo: bundlePath)) }
                }
                config = withPaths
                check("config \(sample.name)", true, "\(label): config valid against the schema")
            case .failure(let issues):
                let hint = generated ? "; declare samples with 'tests:' in step.yaml (see protocol/SPEC.md, 14.5)" : ""
                check("config \(sample.name)", false, "\(label): \(issues.description)\(hint)")
                continue
            }
            var inputs: [String: [StepRequest.InputArtifact]] = [:]
            var missing: [String] = []
            for (name, folders) in sample.inputs {
                inputs[name] = folders.map { folder in
                    let path = folder.hasPrefix("/") ? folder : bundlePath + "/" + folder
                    if (try? FileStatus.of(path, followingLinks: true))?.kind != .directory { missing.append(folder) }
                    let digest = (try? TreeDigest.compute(root: path).digest.description) ?? ""
                    return StepRequest.InputArtifact(path: path, type: manifest.inputs[name]?.type ?? "", digest: digest, properties: [:])
                }
            }
            for (name, spec) in manifest.inputs where inputs[name] == nil && !spec.optional {
                missing.append("input '\(name)' (not given)")
            }
            guard missing.isEmpty else {
                check("inputs \(sample.name)", false, "\(label): sample inputs missing: \(missing.sorted().joined(separator: ", ")); sample inputs are folders inside the bundle")
                continue
            }
            var first: [String: String] = [:]
            for attempt in 1...2 {
                let outcome = await runOnce(manifest: manifest, config: config, inputs: inputs, work: work + "/run", buildPath: buildPath, host: host, contract: contractVersion, seed: 42)
                switch outcome {
                case .failure(let message):
                    let hint = generated && !manifest.inputs.isEmpty ? " (with generated empty inputs: declare sample inputs with 'tests:' in step.yaml)" : ""
                    check("run \(sample.name)", false, "\(label): \(message)\(hint)")
                case .success(let digests):
                    if attempt == 1 {
                        first = digests
                        check("run \(sample.name)", true, "\(label): response valid, every declared output written, nothing else")
                    } else {
                        let same = digests == first
                        deterministic = (deterministic ?? true) && same
                        let differing = first.keys.filter { first[$0] != digests[$0] }.sorted()
                        check("deterministic \(sample.name)", true, same
                            ? "\(label): two runs of the same request gave the same output digests"
                            : "\(label): NOT deterministic: output(s) \(differing.joined(separator: ", ")) differ between two runs of the same request (allowed, but the cache cannot be verified by re-running)")
                    }
                }
                if case .failure = outcome { break }
            }
        }
        // A step must refuse a request for a contract it does not speak, doing no work.
        if let sample = samples.first, case .success(var resolved) = manifest.config.resolve(sample.config) {
            for key in manifest.config.pathKeys {
                if let value = resolved[key]?.stringValue { resolved[key] = .string(FileTree.absolute(value, relativeTo: bundlePath)) }
            }
            var inputs: [String: [StepRequest.InputArtifact]] = [:]
            for (name, folders) in sample.inputs {
                inputs[name] = folders.map { StepRequest.InputArtifact(path: $0.hasPrefix("/") ? $0 : bundlePath + "/" + $0, type: manifest.inputs[name]?.type ?? "", digest: "", properties: [:]) }
            }
            let outcome = await runOnce(manifest: manifest, config: resolved, inputs: inputs, work: work + "/contract", buildPath: buildPath, host: host, contract: Self.unknownContract, seed: 42)
            switch outcome {
            case .success:
                check("unknown contract", false, "the step accepted a request for contract version \(Self.unknownContract); it must check 'contract', print a message naming both versions on stderr and exit non-zero (2) without doing any work")
            case .failure(let message) where message.hasPrefix("refused:"):
                check("unknown contract", true, "a request for contract version \(Self.unknownContract) is refused (\(message.dropFirst(9)))")
            case .failure(let message):
                check("unknown contract", false, "with a request for contract version \(Self.unknownContract): \(message)")
            }
        }
        let digestAfter = try BundleArchive.digest(of: BundleArchive.entries(of: bundlePath))
        check("bundle unchanged", digestAfter == digestBefore, digestAfter == digestBefore
            ? "the bundle folder was not written to"
            : "the step wrote into its bundle folder (digest \(digestBefore.short) became \(digestAfter.short)); write only into the outputs and scratch directories")
        report.checks = checks
        report.deterministic = deterministic
        return report
    }

    /// Runs the step once in a fresh `work` folder. Success carries each output's tree digest.
    /// For a request with another contract version, a non-zero exit that wrote no output is
    /// reported as `refused: …`.
    private func runOnce(
        manifest: BundleManifest, config: [String: JSONValue], inputs: [String: [StepRequest.InputArtifact]], work: String,
        buildPath: String?, host: [String: String], contract: Int, seed: UInt64
    ) async -> Outcome<[String: String]> {
        do {
            try? FileTree.remove(work)
            let outputs = StepLaunch.outputsDirectory(in: work)
            let scratch = StepLaunch.scratchDirectory(in: work)
            try FileTree.makeDirectory(scratch + "/tmp")
            var directories: [String: StepRequest.OutputDirectory] = [:]
            for (name, spec) in manifest.outputs {
                try FileTree.makeDirectory(outputs + "/" + name)
                directories[name] = .init(path: outputs + "/" + name, type: spec.type)
            }
            let digest = Digest.of("bundle-test")
            var request = StepRequest(
                pipeline: .init(name: "bundle-test", version: digest.description), run: .init(id: "bundle-test"),
                step: .init(name: manifest.name, bundle: manifest.name, bundleVersion: manifest.version, bundleDigest: digest.description, cacheKey: digest.description),
                config: config, inputs: inputs, outputs: directories, scratch: scratch, seed: seed)
            request.contract = contract
            let launch = StepLaunch(
                bundlePath: bundlePath, manifest: manifest, request: request, workDirectory: work, logFile: work + ".log",
                timeout: manifest.timeout ?? 600, hostEnvironment: host, buildPath: buildPath)
            let result = await StepRunner.run(launch)
            let tail = result.errorTail.isEmpty ? "" : "; last lines of its stderr:\n" + result.errorTail.split(separator: "\n").suffix(8).map { "  | " + $0 }.joined(separator: "\n")
            if contract != contractVersion {
                if case .success = result.outcome { return .success([:]) }
                let wrote = manifest.outputs.keys.contains { !((try? FileTree.childNames(of: outputs + "/" + $0)) ?? []).isEmpty }
                if wrote { return .failure("the step exited with an error but wrote outputs first; it must refuse before doing any work") }
                if case .failure(.exited(let code, _)) = result.outcome { return .failure("refused: exit code \(code)") }
                return .failure("\(result.outcome)")
            }
            switch result.outcome {
            case .failure(let failure):
                return .failure(failure.description + tail)
            case .success:
                // Only outputs/ and scratch/ may be in the work folder afterwards.
                let extra = try FileTree.childNames(of: work).filter { !["outputs", "scratch"].contains($0) }
                if !extra.isEmpty { return .failure("the step wrote \(extra.sorted().joined(separator: ", ")) beside its outputs") }
                var digests: [String: String] = [:]
                for name in manifest.outputs.keys { digests[name] = try TreeDigest.compute(root: outputs + "/" + name).digest.description }
                return .success(digests)
            }
        } catch {
            return .failure("cannot prepare the run: \(error)")
        }
    }

    private func build(command: String, manifest: BundleManifest, into output: String, work: String) async -> Outcome<Void> {
        do {
            let scratch = work + "/build-scratch"
            try FileTree.makeDirectory(output)
            try FileTree.makeDirectory(scratch + "/tmp")
            let configuration = ProcessConfiguration(
                executable: "/bin/sh", arguments: ["-c", command],
                environment: StepLaunch.cleanEnvironment(bundlePath: bundlePath, manifest: manifest, scratch: scratch, hostEnvironment: hostEnvironment, buildPath: output),
                workingDirectory: scratch, standardInput: .bytes(Data()), logFile: work + "/build.log", timeout: 3600)
            let result = try await ProcessLauncher.run(configuration)
            guard result.exitCode == 0 else {
                return .failure("the build command failed (\(result.exitCode.map { "exit code \($0)" } ?? "killed")): \(command)\n" + result.errorTail)
            }
            guard !(try FileTree.childNames(of: output)).isEmpty else { return .failure("the build command wrote nothing into $ZENML_BUILD_DIR") }
            return .success(())
        } catch {
            return .failure("cannot run the build command: \(error)")
        }
    }
}

/// A result whose failure is a message for people.
private enum Outcome<Value> {
    case success(Value)
    case failure(String)
}
