import Foundation
import ZenMLBundles
import ZenMLCache
import ZenMLCore
import ZenMLPipeline

extension Workspace {
    /// Unpacked registry bundles by digest.
    public var bundleCache: BundleCache { BundleCache(root: stateDirectory + "/bundles") }

    /// The registries the workspace names, sorted by name.
    public func registries() throws -> [BundleRegistry] {
        try (configuration().registries ?? [:]).sorted { $0.key < $1.key }.map { try BundleRegistry.open(name: $0.key, location: $0.value) }
    }

    /// One named registry, or an error listing the known ones.
    public func registry(named name: String) throws -> BundleRegistry {
        let known = try configuration().registries ?? [:]
        guard let location = known[name] else {
            let names = known.keys.sorted()
            throw BundleError.registry(
                "no registry named '\(name)' in this workspace"
                    + (names.isEmpty ? "; add one with 'zenml-run config registry add \(name) /path/to/registry'" : " (known: \(names.joined(separator: ", ")))"))
        }
        return try BundleRegistry.open(name: name, location: location)
    }

    /// The workspace's signature rules.
    public func trustPolicy() throws -> TrustPolicy {
        let settings = try configuration()
        return TrustPolicy(requireSignatures: settings.requireSignatures ?? false, trustedKeys: settings.trustedKeys ?? [])
    }
}

/// Turns a pipeline's registry references (`uses: NAME@VERSION`, `NAME@^1.2`, `NAME@sha256:…`)
/// into folders in the workspace's bundle cache, through the lock file beside the pipeline.
///
/// With a lock file, a reference it pins is used exactly: the pinned digest is pulled (from the
/// cache, else from the pinned registry) and a bundle whose content differs is refused. A
/// reference it does not pin, or every reference with `update`, is resolved against the
/// registries and the lock file is rewritten (only if it changed).
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

    /// Resolves every registry reference of a pipeline.
    public func resolve(_ spec: PipelineSpec, update: Bool) async throws -> Resolution {
        var references: [String: (step: String, reference: BundleReference)] = [:]
        var issues: [PipelineIssue] = []
        for step in spec.steps {
            do {
                let reference = try BundleReference(step.uses)
                if case .path = reference { continue }
                references[step.uses] = (step.name, reference)
            } catch {
                issues.append(PipelineIssue(location: spec.document.location(["steps", step.name, "uses"]), message: "\(error)"))
            }
        }
        if !issues.isEmpty { throw PipelineError(issues: issues) }
        let lockPath = LockFile.path(forPipeline: spec.file)
        guard !references.isEmpty else { return Resolution(locations: [:], lock: nil, lockChanged: false) }
        let existing = try LockFile.load(lockPath)
        var lock = LockFile()
        var locations: [String: BundleLocation] = [:]
        let trust = try workspace.trustPolicy()
        for (text, (step, reference)) in references.sorted(by: { $0.key < $1.key }) {
            do {
                let (pin, folder) = try await locate(reference, text: text, pinned: update ? nil : existing?.bundles[text], trust: trust)
                lock.bundles[text] = pin
                locations[text] = BundleLocation(path: folder, source: "\(pin.name)@\(pin.version) from registry \(pin.registry) (\(text))")
            } catch let error as BundleError {
                issues.append(PipelineIssue(location: spec.document.location(["steps", step, "uses"]), message: error.description))
            }
        }
        if !issues.isEmpty { throw PipelineError(issues: issues) }
        let changed = existing != lock
        if changed { try lock.save(lockPath) }
        return Resolution(locations: locations, lock: lock, lockChanged: changed)
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
