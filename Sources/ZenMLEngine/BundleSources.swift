import Foundation
import ZenMLBundles
import ZenMLCache
import ZenMLCore
import ZenMLObjectStore
import ZenMLPipeline

extension Workspace {
    /// Unpacked registry bundles by digest.
    public var bundleCache: BundleCache { BundleCache(root: stateDirectory + "/bundles") }

    /// The registries the workspace names, sorted by name.
    public func registries(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [BundleRegistry] {
        try (configuration().registries ?? [:]).sorted { $0.key < $1.key }.map { try openRegistry(name: $0.key, settings: $0.value, environment: environment) }
    }

    /// One named registry, or an error listing the known ones.
    public func registry(named name: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BundleRegistry {
        let known = try configuration().registries ?? [:]
        guard let settings = known[name] else {
            let names = known.keys.sorted()
            throw BundleError.registry(
                "no registry named '\(name)' in this workspace"
                    + (names.isEmpty ? "; add one with 'zenml-run config registry add \(name) /path/to/registry'" : " (known: \(names.joined(separator: ", ")))"))
        }
        return try openRegistry(name: name, settings: settings, environment: environment)
    }

    /// A registry from its settings: a folder, or a bucket with credentials from the environment
    /// (as for a bucket artifact store: `AWS_*` or `~/.aws/credentials`, `GOOGLE_APPLICATION_CREDENTIALS`
    /// or `ZENML_GCS_TOKEN`, `STORAGE_EMULATOR_HOST`).
    public func openRegistry(name: String, settings: WorkspaceConfiguration.RegistrySettings,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BundleRegistry {
        guard settings.url.hasPrefix("gs://") || settings.url.hasPrefix("s3://") else {
            return try BundleRegistry.open(name: name, location: settings.url)
        }
        let location = try ObjectStoreLocation(parsing: settings.url)
        let objects = try openObjectStore(location, endpoint: settings.endpoint, region: settings.region, environment: environment)
        return BundleRegistry(name: name, storage: BucketRegistryStorage(objects: objects, root: location))
    }

    /// The workspace's signature rules.
    public func trustPolicy() throws -> TrustPolicy {
        let settings = try configuration()
        return TrustPolicy(requireSignatures: settings.requireSignatures ?? false, trustedKeys: settings.trustedKeys ?? [])
    }
}

/// Turns a pipeline's registry references (`uses: NAME@VERSION`, `NAME@^1.2`, `NAME@sha256:…`)
/// into folders in the workspace's bundle cache, through the lock file beside the pipeline, and
/// pins its local bundle folders in the same file.
///
/// With a lock file, a reference it pins is used exactly: the pinned digest is pulled (from the
/// cache, else from the pinned registry) and a bundle whose content differs is refused. A
/// reference it does not pin, or every reference with `update`, is resolved against the
/// registries and the lock file is rewritten (only if it changed).
///
/// Local bundle folders are pinned (path and digest) whenever there is a lock file: one is
/// written when the pipeline uses a registry bundle, or by `update`. A local bundle that changed
/// since the lock was written is used as it is and re-pinned, with a note: local folders are
/// meant to be edited, and Cargo (path dependencies), npm (`file:`) and uv (path sources) all
/// use the folder's current content and just update the lock. With `locked` (like
/// `cargo --locked`, `npm ci`, `uv sync --locked`), any change the lock would need is refused.
public struct BundleSources {
    public let workspace: Workspace
    /// Digests cached bundles through the workspace's stat cache and archive digest memo (read,
    /// never written here: the run's fingerprinter keeps them), so checking an unchanged cached
    /// bundle costs one `lstat` per file.
    private let digester: BundleDigester

    public init(workspace: Workspace) {
        self.workspace = workspace
        let statCache = StatCache(file: workspace.statCachePath)
        self.digester = BundleDigester(hasher: statCache, memoFile: (workspace.statCachePath as NSString).deletingLastPathComponent + "/bundle-digests.json")
    }

    /// What a resolution did, for messages.
    public struct Resolution: Sendable {
        public var locations: [String: BundleLocation]
        public var lock: LockFile?
        public var lockChanged: Bool
        /// Things the user should hear about (a local bundle re-pinned).
        public var notes: [String] = []
    }

    /// Loads and validates a pipeline, resolving its registry references first.
    public func graph(pipeline: String, update: Bool = false) async throws -> PipelineGraph {
        try await graph(PipelineSpec.load(pipeline), update: update)
    }

    /// Validates a loaded pipeline, resolving its registry references first.
    public func graph(_ spec: PipelineSpec, update: Bool = false) async throws -> PipelineGraph {
        let resolution = try await resolve(spec, update: update)
        return try PipelineGraph.resolve(spec, locations: resolution.locations)
    }

    /// Resolves every registry reference of a pipeline and pins its local bundles.
    /// - Parameters:
    ///   - update: resolve registry references again (move the pins); creates a lock file for a
    ///     pipeline without registry references too.
    ///   - locked: refuse to change the lock file (a missing pin, a changed local bundle).
    public func resolve(_ spec: PipelineSpec, update: Bool, locked: Bool = false) async throws -> Resolution {
        var references: [String: (step: String, reference: BundleReference)] = [:]
        var localFolders: [String: (step: String, folder: String)] = [:]
        var issues: [PipelineIssue] = []
        for step in spec.steps {
            // Steps share bundles (500 steps of a fan, one folder): each is looked at once.
            if localFolders[step.uses] != nil || references[step.uses] != nil { continue }
            do {
                let reference = try BundleReference(step.uses)
                if case .path = reference {
                    // `sha256:…` names a stored bundle (pipelines export), already exact.
                    guard !step.uses.hasPrefix(SourceSnapshots.pinPrefix) else { continue }
                    let folder = FileTree.absolute(step.uses, relativeTo: spec.directory)
                    // A missing folder is reported by the graph, with the step's line.
                    if (try? FileStatus.of(folder + "/step.yaml", followingLinks: true)) != nil { localFolders[step.uses] = (step.name, folder) }
                    continue
                }
                references[step.uses] = (step.name, reference)
            } catch {
                issues.append(PipelineIssue(location: spec.document.location(["steps", step.name, "uses"]), message: "\(error)"))
            }
        }
        if !issues.isEmpty { throw PipelineError(issues: issues) }
        let lockPath = LockFile.path(forPipeline: spec.file)
        let existing = try LockFile.load(lockPath)
        guard !references.isEmpty || existing != nil || update || locked else { return Resolution(locations: [:], lock: nil, lockChanged: false) }
        if locked && existing == nil {
            throw BundleError.lock("--locked, but there is no \(LockFile.fileName) beside \(spec.file); run once without --locked to write it (and commit it)")
        }
        var bundles: [String: LockFile.Pin] = [:]
        var local: [String: LockFile.LocalPin] = [:]
        var locations: [String: BundleLocation] = [:]
        var notes: [String] = []
        let trust = try workspace.trustPolicy()
        for (text, (step, reference)) in references.sorted(by: { $0.key < $1.key }) {
            do {
                let pinned = update ? nil : existing?.bundles[text]
                if locked && pinned == nil {
                    throw BundleError.lock("--locked, but \(LockFile.fileName) does not pin '\(text)'; run without --locked to resolve and pin it")
                }
                let (pin, folder) = try await locate(reference, text: text, pinned: pinned, trust: trust)
                bundles[text] = pin
                locations[text] = BundleLocation(path: folder, source: "\(pin.name)@\(pin.version) from registry \(pin.registry) (\(text))")
            } catch let error as BundleError {
                issues.append(PipelineIssue(location: spec.document.location(["steps", step, "uses"]), message: error.description))
            }
        }
        for (text, (step, folder)) in localFolders.sorted(by: { $0.key < $1.key }) {
            let digest: Digest
            do { digest = try digester.digest(of: folder).digest } catch {
                issues.append(PipelineIssue(location: spec.document.location(["steps", step, "uses"]), message: "cannot read the bundle of step '\(step)': \(error)"))
                continue
            }
            let path = relativePath(folder, from: spec.directory)
            let before = existing?.local?[text]
            if let before, before.digest != digest {
                if locked {
                    issues.append(PipelineIssue(
                        location: spec.document.location(["steps", step, "uses"]),
                        message: "the local bundle \(text) changed since \(LockFile.fileName) pinned it (\(before.digest.short), now \(digest.short)) and --locked forbids re-pinning; run without --locked to accept the change, or restore the bundle"))
                    continue
                }
                if !update { notes.append("the local bundle \(text) changed since \(LockFile.fileName) pinned it (\(before.digest.short), now \(digest.short)); using it as it is and re-pinning it") }
            } else if before == nil && locked {
                issues.append(PipelineIssue(
                    location: spec.document.location(["steps", step, "uses"]),
                    message: "--locked, but \(LockFile.fileName) does not pin the local bundle \(text); run without --locked to pin it"))
                continue
            }
            local[text] = LockFile.LocalPin(path: path, digest: digest)
            locations[text] = BundleLocation(path: folder, source: "local folder \(path) (\(digest.short) in \(LockFile.fileName))")
        }
        if !issues.isEmpty { throw PipelineError(issues: issues) }
        let lock = LockFile(bundles: bundles, local: local)
        let changed = existing != lock
        if changed && locked {
            throw BundleError.lock("--locked, but \(lockPath) is out of date (it pins bundles the pipeline no longer uses); run without --locked to rewrite it")
        }
        if changed { try lock.save(lockPath) }
        return Resolution(locations: locations, lock: lock, lockChanged: changed, notes: notes)
    }

    /// `folder` relative to `base` when inside it (`steps/clean`), else `../`-relative.
    private func relativePath(_ folder: String, from base: String) -> String {
        let target = FileTree.normalize(folder).split(separator: "/").map(String.init)
        let origin = FileTree.normalize(base).split(separator: "/").map(String.init)
        var common = 0
        while common < min(target.count, origin.count) && target[common] == origin[common] { common += 1 }
        let parts = Array(repeating: "..", count: origin.count - common) + target[common...]
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    private func locate(_ reference: BundleReference, text: String, pinned: LockFile.Pin?, trust: TrustPolicy) async throws -> (LockFile.Pin, String) {
        let cache = workspace.bundleCache
        if let pinned {
            let registry = try workspace.registry(named: pinned.registry)
            guard let record = try await registry.metadata(of: pinned.name, version: pinned.version) else {
                if let folder = try cache.folder(for: pinned.digest) {
                    try verify(folder, pinned.digest, text: text)
                    try trust.check([], digest: pinned.digest, bundle: text)
                    return (pinned, folder)
                }
                throw BundleError.lock("zenml.lock pins \(text) to \(pinned.name)@\(pinned.version) in registry '\(pinned.registry)', which no longer has it; run with --update to resolve it again")
            }
            guard record.digest == pinned.digest else {
                throw BundleError.lock(
                    "zenml.lock pins \(text) to \(pinned.name)@\(pinned.version) with digest \(pinned.digest.short), but registry '\(pinned.registry)' now has digest \(record.digest.short) for it: the published bundle changed. Check with its publisher; run with --update to accept the new content")
            }
            let folder = try await registry.pull(record, into: cache, trust: trust)
            try verify(folder, pinned.digest, text: text)
            return (pinned, folder)
        }
        let registries = try workspace.registries()
        guard !registries.isEmpty else {
            throw BundleError.registry("'\(text)' names a registry bundle, but this workspace has no registry; add one with 'zenml-run config registry add NAME LOCATION'")
        }
        for registry in registries {
            guard let record = try await registry.resolve(reference) else { continue }
            let folder = try await registry.pull(record, into: cache, trust: trust)
            try verify(folder, record.digest, text: text)
            return (LockFile.Pin(name: record.name, version: record.version, digest: record.digest, registry: registry.name), folder)
        }
        let name = reference.name ?? text
        var available: [String] = []
        for registry in registries { available += try await registry.versions(of: name).map { "\($0) in \(registry.name)" } }
        throw BundleError.registry(
            "no registry has a version of '\(name)' matching '\(text)'"
                + (available.isEmpty ? " (no registry has '\(name)' at all; publish it with 'zenml-run bundle publish')" : " (available: \(available.joined(separator: ", ")))"))
    }

    /// A cached folder must still be the pinned bundle: someone may have edited it in place.
    private func verify(_ folder: String, _ digest: Digest, text: String) throws {
        let actual = try digester.digest(of: folder).digest
        guard actual == digest else {
            throw BundleError.lock(
                "the cached bundle for \(text) at \(folder) has digest \(actual.short), but \(digest.short) is pinned: it was modified in place; delete that folder and run again to pull it afresh")
        }
    }
}
