import enum Crypto.Curve25519
import Foundation
import ZenMLContract
import ZenMLCore

/// Where a registry keeps its objects: a few blob operations on `/`-separated keys, so that a
/// folder, a gs:// bucket or an s3:// bucket can hold a registry (async, as object store clients are). Everything else (layout,
/// overwrite rules, digests, signatures) is in ``BundleRegistry``, once for every backend.
public protocol RegistryStorage: Sendable {
    /// For messages: `/shared/registry`, `gs://bucket/prefix`.
    var location: String { get }
    /// Whether `write(_:to:exclusive: true)` is a true create-if-absent (a folder's `link(2)`).
    /// When it is not (buckets: see ``BucketRegistryStorage``), ``BundleRegistry/publish(bundle:signingKey:staging:)``
    /// waits ``readBackDelay`` and reads the record back to find out who won.
    var exclusiveWritesAreAtomic: Bool { get }
    /// How long a publisher waits before reading its version record back (when writes are not atomic).
    var readBackDelay: Duration { get }
    /// An object's bytes, or `nil` when there is none.
    func read(_ key: String) async throws -> Data?
    /// Whether there is an object.
    func exists(_ key: String) async throws -> Bool
    /// Copies an object to a local file; `false` when there is none.
    func download(_ key: String, to path: String) async throws -> Bool
    /// Stores a local file as an object (replacing one that is there).
    func upload(_ path: String, to key: String) async throws
    /// Stores bytes as an object. With `exclusive`, only if there is none yet (returns `false` otherwise).
    func write(_ data: Data, to key: String, exclusive: Bool) async throws -> Bool
    /// The keys directly below `prefix` (one level, names only, sorted).
    func children(of prefix: String) async throws -> [String]
}

/// A registry in a local or shared folder (a network file system mount, say).
public struct FolderRegistryStorage: RegistryStorage {
    public let root: String
    public var location: String { root }

    public var exclusiveWritesAreAtomic: Bool { true }
    public var readBackDelay: Duration { .zero }

    public init(root: String) { self.root = FileTree.normalize(root) }

    public func exists(_ key: String) async throws -> Bool { (try FileStatus.of(root + "/" + key)) != nil }

    public func read(_ key: String) async throws -> Data? {
        guard (try FileStatus.of(root + "/" + key)) != nil else { return nil }
        return try FileTree.read(root + "/" + key)
    }

    public func download(_ key: String, to path: String) async throws -> Bool {
        guard (try FileStatus.of(root + "/" + key)) != nil else { return false }
        try Self.copy(root + "/" + key, to: path)
        return true
    }

    public func upload(_ path: String, to key: String) async throws {
        let destination = root + "/" + key
        try FileTree.makeDirectory((destination as NSString).deletingLastPathComponent)
        try Self.copy(path, to: destination)
    }

    /// Copies a file through a temporary file and a rename (streamed: archives can be large).
    static func copy(_ source: String, to destination: String) throws {
        let temporary = destination + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.copyItem(atPath: source, toPath: temporary)
            try FileTree.sync(temporary)
        } catch {
            unlink(temporary)
            throw BundleError.registry("cannot copy \(source) to \(destination): \(error)")
        }
        if rename(temporary, destination) != 0 {
            let code = errno
            unlink(temporary)
            throw FileSystemError.posix(path: destination, operation: "replace", errno: code)
        }
    }

    public func write(_ data: Data, to key: String, exclusive: Bool) async throws -> Bool {
        let destination = root + "/" + key
        try FileTree.makeDirectory((destination as NSString).deletingLastPathComponent)
        guard exclusive else {
            try FileTree.writeAtomically(data, to: destination, sync: true)
            return true
        }
        // Written aside, then hard-linked into place: link(2) fails if the name exists, so two
        // publishers of one version cannot both win, and nobody sees half a file.
        let temporary = destination + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileTree.writeAtomically(data, to: temporary, sync: true)
        defer { unlink(temporary) }
        if link(temporary, destination) == 0 { return true }
        if errno == EEXIST { return false }
        throw FileSystemError.posix(path: destination, operation: "create", errno: errno)
    }

    public func children(of prefix: String) async throws -> [String] {
        let directory = prefix.isEmpty ? root : root + "/" + prefix
        guard (try FileStatus.of(directory, followingLinks: true))?.kind == .directory else { return [] }
        return try FileTree.childNames(of: directory).filter { !$0.contains(".tmp-") }.sorted()
    }
}

/// What a registry knows about one published bundle version (`bundles/NAME/VERSION.json`).
public struct PublishedBundle: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var digest: Digest
    public var size: Int64
    public var description: String?
    public var publishedAt: String
    public var signatures: [BundleSignature]
    /// A random id of the publish that wrote the record: how a publisher reading the record back
    /// tells its own write from a concurrent publisher's (absent in records of older builds).
    public var publishID: String?

    enum CodingKeys: String, CodingKey {
        case name, version, digest, size, description, signatures
        case publishedAt = "published_at"
        case publishID = "publish_id"
    }
}

/// A registry's own rules (`registry.json` at its root, optional).
public struct RegistryPolicy: Codable, Sendable, Equatable {
    public var requireSignatures: Bool
    public var trustedKeys: [String]

    public init(requireSignatures: Bool = false, trustedKeys: [String] = []) {
        self.requireSignatures = requireSignatures
        self.trustedKeys = trustedKeys
    }

    enum CodingKeys: String, CodingKey {
        case requireSignatures = "require_signatures"
        case trustedKeys = "trusted_keys"
    }

    public var trust: TrustPolicy { TrustPolicy(requireSignatures: requireSignatures, trustedKeys: trustedKeys) }
}

/// A bundle registry in some storage:
/// - `blobs/sha256/HEX.tar`: the deterministic archives, by their digest (content-addressed);
/// - `bundles/NAME/VERSION.json`: ``PublishedBundle``, the version record (digest, signatures);
///   writing it is what makes a version exist;
/// - `registry.json`: ``RegistryPolicy`` (optional).
///
/// Registries written by earlier builds keep archives at `bundles/NAME/VERSION.tar`; pulls fall
/// back to that key. A published version never changes content; publishing the same content
/// again is a no-op.
public struct BundleRegistry: Sendable {
    public let name: String
    public let storage: any RegistryStorage

    public init(name: String, storage: any RegistryStorage) {
        self.name = name
        self.storage = storage
    }

    /// A registry in a folder (`/path` or `file:///path`). Buckets need credentials and
    /// clients: open them as ``BucketRegistryStorage`` (the workspace does, from its settings).
    public static func open(name: String, location: String) throws -> BundleRegistry {
        if location.contains("://") && !location.hasPrefix("file://") {
            throw BundleError.registry("registry '\(name)' is at \(location), which is not a folder; open bucket registries through the workspace settings ('zenml-run config registry add \(name) \(location)')")
        }
        let path = location.hasPrefix("file://") ? String(location.dropFirst(7)) : location
        return BundleRegistry(name: name, storage: FolderRegistryStorage(root: path))
    }

    static func blobKey(_ digest: Digest) -> String { "blobs/sha256/\(digest.hex).tar" }
    static func legacyArchiveKey(_ name: String, _ version: String) -> String { "bundles/\(name)/\(version).tar" }
    static func metadataKey(_ name: String, _ version: String) -> String { "bundles/\(name)/\(version).json" }

    /// The registry's rules (none when it has no `registry.json`).
    public func policy() async throws -> RegistryPolicy {
        guard let data = try await storage.read("registry.json") else { return RegistryPolicy() }
        do { return try JSONDecoder().decode(RegistryPolicy.self, from: data) } catch {
            throw BundleError.registry("\(storage.location)/registry.json is unreadable: \(error); fix it or remove it")
        }
    }

    /// Sets the registry's rules.
    public func setPolicy(_ policy: RegistryPolicy) async throws {
        _ = try await storage.write(try Self.encoder.encode(policy), to: "registry.json", exclusive: false)
    }

    /// Bundle names in the registry.
    public func names() async throws -> [String] { try await storage.children(of: "bundles") }

    /// Published versions of a bundle, lowest first (semantic versions by precedence).
    public func versions(of bundle: String) async throws -> [String] {
        let versions = try await storage.children(of: "bundles/\(bundle)").filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        return versions.sorted { left, right in
            switch (SemanticVersion(left), SemanticVersion(right)) {
            case let (l?, r?): return l < r
            default: return left < right
            }
        }
    }

    /// The record of one version, or `nil`.
    public func metadata(of bundle: String, version: String) async throws -> PublishedBundle? {
        guard BundleReference.isValidName(bundle), !version.contains("/") else { return nil }
        guard let data = try await storage.read(Self.metadataKey(bundle, version)) else { return nil }
        do { return try JSONDecoder().decode(PublishedBundle.self, from: data) } catch {
            throw BundleError.registry("the record of \(bundle)@\(version) in registry '\(name)' is unreadable: \(error)")
        }
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Publishes the bundle folder at `bundlePath` under its manifest's name and version.
    /// - Returns: the record and whether it was new (`false`: the same content was already published).
    public func publish(bundle bundlePath: String, signingKey: Curve25519.Signing.PrivateKey? = nil, staging: String) async throws -> (PublishedBundle, Bool) {
        let manifest = try BundleManifest.load(bundle: bundlePath)
        guard BundleReference.isValidName(manifest.name) else {
            throw BundleError.registry("the bundle name '\(manifest.name)' cannot be published: use lowercase letters, digits, '-', '_' and '.'")
        }
        guard SemanticVersion(manifest.version) != nil else {
            throw BundleError.registry("the bundle version '\(manifest.version)' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0); fix 'version:' in step.yaml")
        }
        try FileTree.makeDirectory(staging)
        let archive = staging + "/publish-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tar"
        defer { unlink(archive) }
        let digest = try BundleArchive.pack(bundlePath, to: archive)
        var signatures: [BundleSignature] = []
        if let signingKey { signatures.append(try BundleSigning.sign(digest, with: signingKey)) }
        let reference = "\(manifest.name)@\(manifest.version)"
        let policy = try await self.policy()
        if policy.requireSignatures {
            do { try policy.trust.check(signatures, digest: digest, bundle: reference) } catch let error as BundleError {
                throw BundleError.signature("registry '\(name)' accepts only bundles signed by its trusted keys: \(error.description) (publish with --key KEYFILE)")
            }
        }
        let size = Int64((try FileStatus.of(archive))?.size ?? 0)
        let publishID = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let record = PublishedBundle(
            name: manifest.name, version: manifest.version, digest: digest, size: size, description: manifest.description,
            publishedAt: ISO8601DateFormatter().string(from: Date()), signatures: signatures, publishID: publishID)
        let recordKey = Self.metadataKey(manifest.name, manifest.version)
        if let existing = try await metadata(of: manifest.name, version: manifest.version) {
            return (try await republish(existing, digest: digest, signatures: signatures, reference: reference), false)
        }
        // How two publishers of one NAME@VERSION cannot both win (and why a lost race never
        // mixes their bytes):
        //
        // 1. The archive goes to a content-addressed key, blobs/sha256/HEX.tar. Racing publishers
        //    of different content write different keys; of the same content, the same bytes. No
        //    record can ever point at another publisher's archive, and pulls check the digest.
        // 2. The version record is created only if absent. In a folder that is link(2), atomic:
        //    the loser gets EEXIST and compares digests. Done.
        // 3. A bucket's create-only write (GCS ifGenerationMatch=0, S3 If-None-Match: *) is atomic
        //    on the real services, but emulators ignore it and Swift refuses it, so the outcome is
        //    not trusted: after writing, the publisher waits the storage's readBackDelay D and reads
        //    the record back. Only a publisher that finds its own publish_id there has won; one that
        //    finds another's with other content reports that it lost, and its version was not
        //    published. This is Fischer's timed mutual exclusion (check absent; write; wait D;
        //    read back): it is safe as long as every publisher's write lands within D of its
        //    existence check. The check is repeated if it was slow, and is followed at once by the
        //    write of a small record, so the gap is one short request.
        //
        // What remains a window (without working preconditions): a publisher stalled for more than
        // D between its check and its write (a paused VM, a hung connection that the server applies
        // late) can overwrite a record whose writer already read it back and reported success. The
        // registry then holds the stalled publisher's content, whole and consistent; a consumer that
        // had already locked the first content gets the "published bundle changed" error from its
        // zenml.lock, never silently other bytes.
        let blob = Self.blobKey(digest)
        if try await !storage.exists(blob) { try await storage.upload(archive, to: blob) }
        let encoded = try Self.encoder.encode(record)
        var created = false
        for attempt in 1...3 {
            let started = ContinuousClock.now
            if let existing = try await metadata(of: manifest.name, version: manifest.version) {
                return (try await republish(existing, digest: digest, signatures: signatures, reference: reference), false)
            }
            // A slow look-up may be answering about a moment long past; look again.
            if attempt < 3 && !storage.exclusiveWritesAreAtomic && ContinuousClock.now - started > storage.readBackDelay / 4 { continue }
            created = try await storage.write(encoded, to: recordKey, exclusive: true)
            break
        }
        if created && storage.exclusiveWritesAreAtomic { return (record, true) }
        if created { try await Task.sleep(for: storage.readBackDelay) }
        guard let winner = try await metadata(of: manifest.name, version: manifest.version) else {
            throw BundleError.registry("publishing \(reference) to registry '\(name)' raced with another publisher or a deletion (the record is gone); publish again")
        }
        if winner.publishID == publishID { return (record, true) }
        if created && winner.digest != digest {
            throw BundleError.registry(
                "another publisher published \(reference) to registry '\(name)' at the same moment, with other content (\(winner.digest.short); this bundle is \(digest.short)); theirs won and yours was not published: raise 'version:' in step.yaml and publish again")
        }
        return (try await republish(winner, digest: digest, signatures: signatures, reference: reference), false)
    }

    private func republish(_ existing: PublishedBundle, digest: Digest, signatures: [BundleSignature], reference: String) async throws -> PublishedBundle {
        guard existing.digest == digest else {
            throw BundleError.registry(
                "\(reference) is already published in registry '\(name)' with other content (\(existing.digest.short), this bundle is \(digest.short)); a published version never changes: raise 'version:' in step.yaml and publish again")
        }
        let added = signatures.filter { !existing.signatures.contains($0) }
        guard !added.isEmpty else { return existing }
        return try await addSignatures(added, to: existing)
    }

    /// Adds signatures to a published version's record (each must be valid for its digest).
    public func addSignatures(_ signatures: [BundleSignature], to record: PublishedBundle) async throws -> PublishedBundle {
        for signature in signatures where !BundleSigning.isValid(signature, for: record.digest) {
            throw BundleError.signature("the signature does not match \(record.name)@\(record.version) (\(record.digest.short)); sign that exact bundle")
        }
        var updated = record
        for signature in signatures where !updated.signatures.contains(signature) { updated.signatures.append(signature) }
        _ = try await storage.write(try Self.encoder.encode(updated), to: Self.metadataKey(record.name, record.version), exclusive: false)
        return updated
    }

    /// The version of `bundle` a reference selects, or `nil` if none matches.
    public func resolve(_ reference: BundleReference) async throws -> PublishedBundle? {
        switch reference {
        case .path: return nil
        case .version(let bundle, let range):
            guard let version = range.best(of: try await versions(of: bundle)) else { return nil }
            return try await metadata(of: bundle, version: version)
        case .digest(let bundle, let digest):
            for version in try await versions(of: bundle).reversed() {
                if let record = try await metadata(of: bundle, version: version), record.digest == digest { return record }
            }
            return nil
        }
    }

    /// Downloads a published version into the bundle cache (checking its digest and the trust
    /// policy) and returns the folder.
    public func pull(_ record: PublishedBundle, into cache: BundleCache, trust: TrustPolicy) async throws -> String {
        let reference = "\(record.name)@\(record.version)"
        let registryPolicy = try await policy()
        try trust.merged(with: registryPolicy.trust).check(record.signatures, digest: record.digest, bundle: reference)
        if let folder = try cache.folder(for: record.digest) { return folder }
        try FileTree.makeDirectory(cache.root)
        let archive = cache.root + "/.download-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tar"
        defer { unlink(archive) }
        var found = try await storage.download(Self.blobKey(record.digest), to: archive)
        if !found { found = try await storage.download(Self.legacyArchiveKey(record.name, record.version), to: archive) }
        guard found else {
            throw BundleError.registry("registry '\(name)' has a record of \(reference) but not its archive; republish it")
        }
        let actual = try Digest.ofFile(atPath: archive)
        guard actual == record.digest else {
            throw BundleError.registry("the archive of \(reference) in registry '\(name)' has digest \(actual.short), but its record says \(record.digest.short): the registry copy is damaged or was altered; ask its publisher to check it")
        }
        return try cache.insert(archive: archive, digest: record.digest)
    }
}

/// Unpacked bundles by digest (`.zenml/bundles/<hex>` in a workspace): what pipelines run from.
public struct BundleCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// The folder of a cached bundle, or `nil` when it is not cached.
    public func folder(for digest: Digest) throws -> String? {
        let folder = root + "/" + digest.hex
        return (try FileStatus.of(folder))?.kind == .directory ? folder : nil
    }

    /// Unpacks an archive whose SHA-256 is `digest` into the cache, checking that the unpacked
    /// folder packs back to the same bytes (so the digest a run computes is the pinned one).
    public func insert(archive: String, digest: Digest) throws -> String {
        if let folder = try folder(for: digest) { return folder }
        let staging = root + "/.unpack-\(digest.short)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try BundleUnpacker.unpack(archive, into: staging)
        do {
            let entries = try BundleArchive.entries(of: staging)
            let repacked = try BundleArchive.digest(of: entries)
            guard repacked == digest else {
                throw BundleError.registry("the archive \(digest.short) is not in zenml-run's canonical form (it unpacks to a bundle with digest \(repacked.short)); publish it with 'zenml-run bundle publish'")
            }
            let folder = root + "/" + digest.hex
            if rename(staging, folder) != 0 {
                // Another process cached the same bundle first: same content, keep theirs.
                if (try FileStatus.of(folder))?.kind == .directory { try FileTree.remove(staging); return folder }
                throw FileSystemError.posix(path: folder, operation: "move the unpacked bundle to", errno: errno)
            }
            return folder
        } catch {
            try? FileTree.remove(staging)
            throw error
        }
    }
}
