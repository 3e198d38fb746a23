import Foundation
import ZenMLCore

/// Remembers file digests by file identity (device, inode, size, modification and change times),
/// so unchanged files, such as a 1 GiB training set, are not hashed again on every run.
///
/// An entry is trusted only if the file looks exactly as it did when hashed (the change time
/// included, which every write and every `touch` moves). Files modified in the two seconds
/// before they were hashed are not remembered: a write in the same clock tick could otherwise go
/// unnoticed (git's "racy clean" problem).
public final class StatCache: FileHasher, @unchecked Sendable {
    struct Entry: Codable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var changed: Int64
        var digest: Digest
    }

    /// Where the cache persists (`nil`: in memory only).
    public let file: String?
    private var entries: [String: Entry]
    private var dirty = false
    private let lock = NSLock()

    /// Loads the cache from `file` (a missing or unreadable file starts an empty cache); `nil` keeps it in memory.
    public init(file: String?) {
        self.file = file
        if let file, let data = try? FileTree.read(file), let decoded = try? JSONDecoder().decode([String: Entry].self, from: data) {
            entries = decoded
        } else {
            entries = [:]
        }
    }

    public func digest(ofFileAtPath path: String, status: FileStatus) throws -> Digest {
        let cached: Entry? = lock.withLock { entries[path] }
        if let cached, cached.device == status.device, cached.inode == status.inode, cached.size == status.size,
            cached.modified == status.modificationNanoseconds, cached.changed == status.changeNanoseconds
        {
            return cached.digest
        }
        let digest = try Digest.ofFile(atPath: path)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        let settled = status.modificationNanoseconds < now - 2_000_000_000
        lock.withLock {
            if settled {
                entries[path] = Entry(
                    device: status.device, inode: status.inode, size: status.size,
                    modified: status.modificationNanoseconds, changed: status.changeNanoseconds, digest: digest)
            } else {
                entries[path] = nil
            }
            dirty = true
        }
        return digest
    }

    /// Writes the cache back if it changed.
    public func save() throws {
        guard let file else { return }
        let data: Data? = try lock.withLock {
            guard dirty else { return nil }
            dirty = false
            return try JSONEncoder().encode(entries)
        }
        guard let data else { return }
        try FileTree.makeDirectory((file as NSString).deletingLastPathComponent)
        try FileTree.writeAtomically(data, to: file)
    }
}
