import Foundation
import ZenMLArtifacts
import ZenMLCache
import ZenMLContract
import ZenMLCore
import ZenMLMetadata
import ZenMLPipeline

/// Copies of what runs read from outside the stores (step bundles and `format: path` data files),
/// kept in the artifact store under the digest that entered the cache keys, so that any run can
/// be reproduced from the stores alone: a pipeline file may name them as `sha256:DIGEST`.
public enum SourceSnapshots {
    /// The artifact type of stored bundles.
    public static let bundleType = "Bundle"
    /// The artifact type of stored data files and folders.
    public static let dataType = "DataSnapshot"
    /// The prefix of a pinned reference in a pipeline file (`uses: sha256:…`, a path config value).
    public static let pinPrefix = "sha256:"

    /// Data files larger than this are not copied into the store (a 1 GiB input would cost a
    /// 1 GiB copy on its first run); their digest is still recorded and still keys the cache, but
    /// reproducing such a run needs the file itself. `ZENML_SNAPSHOT_LIMIT` sets it, in bytes
    /// (`0` turns data snapshots off). Default 256 MiB.
    public static func dataLimit(_ environment: [String: String]) -> Int64 {
        environment["ZENML_SNAPSHOT_LIMIT"].flatMap { Int64($0) } ?? 256 << 20
    }
}

extension PipelineRunner {
    /// Stores every bundle and data file these steps read that the stores do not have yet. Each is
    /// copied once per content version; later runs only look it up.
    func snapshotSources(of steps: [ResolvedStep], pipelineDirectory: String, dataLimit: Int64) async throws {
        var seen = Set<Digest>()
        for step in steps {
            if let bundle = try? fingerprinter.bundle(at: step.bundlePath), seen.insert(bundle.digest).inserted {
                try await snapshot(
                    step.bundlePath, type: SourceSnapshots.bundleType, key: bundle.digest,
                    properties: ["name": .string(step.manifest.name), "version": .string(step.manifest.version)],
                    excluding: Fingerprinter.excludedBundleNames)
            }
            for key in step.manifest.config.pathKeys {
                guard let value = step.config[key]?.stringValue, !value.hasPrefix(SourceSnapshots.pinPrefix) else { continue }
                let path = FileTree.absolute(value, relativeTo: pipelineDirectory)
                guard let status = try? FileStatus.of(path, followingLinks: true),
                      status.kind == .directory || status.size <= dataLimit
                else { continue }
                // A missing file is reported by the step's fingerprint, with the step's name.
                guard let digest = try? fingerprinter.content(at: path), seen.insert(digest).inserted else { continue }
                if status.kind == .directory, Self.folderSize(path, limit: dataLimit) > dataLimit { continue }
                try await snapshot(path, type: SourceSnapshots.dataType, key: digest, properties: ["path": .string(path)], excluding: [])
            }
        }
    }

    /// The bytes of the files in a folder, counted until they pass `limit` (no file is read).
    static func folderSize(_ path: String, limit: Int64) -> Int64 {
        var total: Int64 = 0
        guard let walk = FileManager.default.enumerator(atPath: path) else { return .max }
        while let name = walk.nextObject() as? String, total <= limit {
            if let status = try? FileStatus.of(path + "/" + name), status.kind == .file { total += status.size }
        }
        return total
    }

    private func snapshot(_ path: String, type: String, key: Digest, properties: [String: JSONValue], excluding: Set<String>) async throws {
        // A presence check, not localPath: with a bucket store, that would download the copy.
        if let existing = try metadata.snapshot(type: type, key: key),
           try await store.isIntact(StoredArtifact(digest: existing.digest, uri: existing.uri, size: existing.size, fileCount: existing.fileCount)) {
            return
        }
        let staging = try store.makeStagingDirectory(label: "snapshot")
        do {
            let name = (path as NSString).lastPathComponent
            try FileTree.copyTree(from: path, to: staging + "/" + name, excluding: excluding)
            let stored = try await store.publish(stagedDirectory: staging)
            var properties = properties
            properties["entry"] = .string(name)
            try metadata.recordSnapshot(
                ArtifactRecord(type: type, uri: stored.uri, digest: stored.digest, size: stored.size, fileCount: stored.fileCount, properties: properties, createdAt: Date()),
                type: type, key: key)
        } catch {
            try? FileTree.remove(staging)
            throw error
        }
    }

    /// The local path of a stored bundle or data file, by the digest a pipeline pins.
    func pinnedSource(type: String, digest: Digest) async throws -> String? {
        guard let artifact = try metadata.snapshot(type: type, key: digest),
              let directory = try await store.localPath(of: artifact.digest),
              let entry = artifact.properties["entry"]?.stringValue
        else { return nil }
        return directory + "/" + entry
    }
}

/// A pinned bundle or data file that the stores do not have.
public struct PinnedSourceError: Error, CustomStringConvertible, Sendable {
    public var step: String
    public var reference: String
    public var what: String

    public var description: String {
        "step '\(step)': no \(what) \(reference) in this workspace's stores; pinned files come from a run recorded in the same stores (zenml-run pipelines export), so point this workspace at them (zenml-run config metadata/artifacts)"
    }
}

extension PipelineRunner {
    /// Reads a pipeline file for running: `base:` may name a registered pipeline, and `uses:` or
    /// `format: path` config values may pin stored bundles and data files by digest (`sha256:…`).
    /// `uses: NAME@VERSION` names a registry bundle, resolved through `zenml.lock` (``BundleSources``;
    /// `update` moves its pins, `locked` refuses any change to the lock file); `note` hears of local
    /// bundles re-pinned in it. `forRun`: a run of it follows, so what starting it asks (git, the
    /// previous run) is asked now, in the background.
    public func load(
        _ path: String, update: Bool = false, locked: Bool = false, forRun: Bool = false, note: (String) -> Void = { _ in }
    ) async throws -> PipelineGraph {
        if forRun { gitStates.prefetch(PipelineSpec.directory(ofFile: path)) }
        let parsed = await documents.take(FileTree.absolute(path, relativeTo: FileTree.currentDirectory))
        var spec = try PipelineSpec.load(path, parsed: parsed, resolveBase: registered.resolver)
        if forRun { previousRuns.prefetch(spec.name) }
        let resolution = try await BundleSources(workspace: workspace).resolve(spec, update: update, locked: locked)
        resolution.notes.forEach(note)
        let locations = resolution.locations
        for index in spec.steps.indices {
            let step = spec.steps[index]
            if step.uses.hasPrefix(SourceSnapshots.pinPrefix) {
                guard let digest = Digest(step.uses), let bundle = try await pinnedSource(type: SourceSnapshots.bundleType, digest: digest) else {
                    throw PinnedSourceError(step: step.name, reference: step.uses, what: "bundle")
                }
                spec.steps[index].uses = bundle
            }
            let pinned = step.config.filter { $0.value.stringValue?.hasPrefix(SourceSnapshots.pinPrefix) == true }
            guard !pinned.isEmpty,
                  let manifest = try? BundleManifest.load(
                      bundle: locations[spec.steps[index].uses]?.path ?? FileTree.absolute(spec.steps[index].uses, relativeTo: spec.directory))
            else { continue }
            for (key, value) in pinned where manifest.config.pathKeys.contains(key) {
                guard let text = value.stringValue, let digest = Digest(text),
                      let file = try await pinnedSource(type: SourceSnapshots.dataType, digest: digest)
                else {
                    throw PinnedSourceError(step: step.name, reference: value.stringValue ?? "", what: "data file")
                }
                spec.steps[index].config[key] = .string(file)
            }
        }
        return try PipelineGraph.resolve(spec, locations: locations)
    }

    /// A run's pipeline as a self-contained file: its recorded spec with every bundle and data file
    /// pinned by digest, so that `zenml-run run` reproduces it on any machine sharing the stores.
    public func export(runID reference: String) throws -> (run: RunRecord, spec: JSONValue) {
        guard let run = try metadata.run(id: reference) else { throw InspectorError.unknownRun(reference) }
        return (run, try registered.pinnedSpec(of: run, spec: recordedSpec(of: run).root))
    }
}
