import Foundation

/// Hashes a file's contents. The cache layer supplies one that remembers digests by file identity.
public protocol FileHasher: Sendable {
    func digest(ofFileAtPath path: String, status: FileStatus) throws -> Digest
}

/// Hashes every file it is asked about, from its bytes.
public struct DirectFileHasher: FileHasher {
    public init() {}
    public func digest(ofFileAtPath path: String, status: FileStatus) throws -> Digest {
        try Digest.ofFile(atPath: path)
    }
}

/// One entry of a hashed tree, in the order and shape that enters the digest.
public struct TreeEntry: Hashable, Sendable, Codable {
    public enum Kind: String, Sendable, Codable { case file, directory, symlink }
    /// The path relative to the tree's root, `/`-separated.
    public var path: String
    public var kind: Kind
    /// Whether a file has an execute bit (the only part of the mode that is hashed: umask and
    /// ownership differ between machines, the execute bit changes what a file does).
    public var executable: Bool
    public var size: Int64
    /// The digest of a file's bytes; `nil` for directories and symbolic links.
    public var digest: Digest?
    /// A symbolic link's target, as written.
    public var target: String?
}

/// The Merkle digest of a directory tree, as used for artifact digests and bundle digests.
///
/// A directory hashes to the SHA-256 of the canonical JSON array of its entries sorted by name
/// bytes, each `{"name","type":"file","executable","size","digest"}`,
/// `{"name","type":"directory","digest"}` (the child directory's own tree digest) or
/// `{"name","type":"symlink","target"}`. Two trees with the same names, contents and execute bits
/// have the same digest on every machine, whatever their timestamps or owners.
public struct TreeDigest: Sendable {
    /// The digest of the tree.
    public var digest: Digest
    /// Every file, directory and link below the root, sorted by path.
    public var entries: [TreeEntry]
    /// The sum of the file sizes.
    public var totalSize: Int64 { entries.reduce(0) { $0 + $1.size } }
    /// The number of regular files.
    public var fileCount: Int { entries.filter { $0.kind == .file }.count }

    /// Hashes the tree at `root`.
    /// - Parameters:
    ///   - excluding: entry names skipped at every level (for example `__pycache__` in a bundle).
    public static func compute(
        root: String, hasher: FileHasher = DirectFileHasher(), excluding: Set<String> = []
    ) throws -> TreeDigest {
        // The root may be a link to a folder (a bundle or a data folder linked into place); links below it are hashed as links.
        guard let status = try FileStatus.of(root, followingLinks: true) else { throw FileSystemError.notFound(path: root) }
        guard status.kind == .directory else {
            throw FileSystemError.posix(path: root, operation: "hash the directory", errno: ENOTDIR)
        }
        var entries: [TreeEntry] = []
        let digest = try hashDirectory(
            absolute: root, relative: "", hasher: hasher, excluding: excluding, entries: &entries)
        entries.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        return TreeDigest(digest: digest, entries: entries)
    }

    private static func hashDirectory(
        absolute: String, relative: String, hasher: FileHasher, excluding: Set<String>,
        entries: inout [TreeEntry]
    ) throws -> Digest {
        let names = try FileTree.childNames(of: absolute)
            .filter { !excluding.contains($0) }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var nodes: [JSONValue] = []
        nodes.reserveCapacity(names.count)
        for name in names {
            let childPath = absolute + "/" + name
            let childRelative = relative.isEmpty ? name : relative + "/" + name
            guard let status = try FileStatus.of(childPath) else { continue }
            switch status.kind {
            case .file:
                let digest = try hasher.digest(ofFileAtPath: childPath, status: status)
                entries.append(
                    TreeEntry(
                        path: childRelative, kind: .file, executable: status.isExecutable, size: status.size,
                        digest: digest, target: nil))
                nodes.append([
                    "name": .string(name), "type": "file", "executable": .bool(status.isExecutable),
                    "size": .int(status.size), "digest": .string(digest.description),
                ])
            case .directory:
                let digest = try hashDirectory(
                    absolute: childPath, relative: childRelative, hasher: hasher, excluding: excluding,
                    entries: &entries)
                entries.append(
                    TreeEntry(
                        path: childRelative, kind: .directory, executable: false, size: 0, digest: digest,
                        target: nil))
                nodes.append(["name": .string(name), "type": "directory", "digest": .string(digest.description)])
            case .symlink:
                let target = try FileTree.linkTarget(childPath)
                entries.append(
                    TreeEntry(
                        path: childRelative, kind: .symlink, executable: false, size: 0, digest: nil, target: target))
                nodes.append(["name": .string(name), "type": "symlink", "target": .string(target)])
            case .other:
                throw FileSystemError.unsupportedFileType(path: childPath)
            }
        }
        return Digest.of(canonical: .array(nodes))
    }
}
