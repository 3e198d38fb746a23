import Foundation
import ZenMLCore

/// Computes bundle digests (the SHA-256 of the archive ``BundleArchive`` would write) without
/// writing the archive and, for a bundle seen before, without reading its files.
///
/// File digests come from the given hasher (the stat cache, which knows unchanged files by their
/// identity). The archive is a function of the listing (paths, modes, sizes, content digests,
/// link targets), so the archive digest is remembered per listing digest: an unchanged bundle
/// costs one `lstat` per file. A new listing streams the archive through SHA-256 once.
public final class BundleDigester: @unchecked Sendable {
    private let hasher: any FileHasher
    private let file: String?
    private var memo: [String: String]
    private var dirty = false
    private let lock = NSLock()
    /// Old entries are dropped wholesale past this: each is ~140 bytes, and a stale one only costs one streaming pass.
    static let capacity = 20_000

    /// - Parameters:
    ///   - hasher: gives file content digests (a ``StatCache`` in the engine).
    ///   - memoFile: where listing → archive digests persist; `nil` keeps them in memory.
    public init(hasher: any FileHasher, memoFile: String?) {
        self.hasher = hasher
        self.file = memoFile
        if let memoFile, let data = try? FileTree.read(memoFile), let decoded = try? JSONDecoder().decode([String: String].self, from: data) {
            memo = decoded
        } else {
            memo = [:]
        }
    }

    /// The bundle digest of the folder at `root` and its entries.
    public func digest(of root: String) throws -> (digest: Digest, entries: [BundleArchive.Entry]) {
        let entries = try BundleArchive.entries(of: root, hasher: hasher)
        let listing = BundleArchive.listingDigest(entries).hex
        if let known = lock.withLock({ memo[listing] }), let digest = Digest(hex: known) { return (digest, entries) }
        let digest = try BundleArchive.digest(of: entries)
        // A file that changed between listing and streaming gives an archive that does not match
        // the listing; remember only what a second listing confirms.
        let confirmed = try BundleArchive.entries(of: root, hasher: hasher)
        if BundleArchive.listingDigest(confirmed).hex == listing {
            lock.withLock {
                if memo.count >= Self.capacity { memo.removeAll() }
                memo[listing] = digest.hex
                dirty = true
            }
        }
        return (digest, entries)
    }

    /// Writes the memo back if it changed.
    public func save() throws {
        guard let file else { return }
        let data: Data? = try lock.withLock {
            guard dirty else { return nil }
            dirty = false
            return try JSONEncoder().encode(memo)
        }
        guard let data else { return }
        try FileTree.makeDirectory((file as NSString).deletingLastPathComponent)
        try FileTree.writeAtomically(data, to: file)
    }
}
