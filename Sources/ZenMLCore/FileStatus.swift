import Foundation

/// The parts of `lstat(2)` that the hashing and store code needs.
public struct FileStatus: Hashable, Sendable, Codable {
    public enum Kind: String, Sendable, Codable { case file, directory, symlink, other }

    public var kind: Kind
    public var size: Int64
    public var mode: UInt32
    public var device: UInt64
    public var inode: UInt64
    public var modificationNanoseconds: Int64
    public var changeNanoseconds: Int64

    /// Whether any execute bit is set.
    public var isExecutable: Bool { mode & 0o111 != 0 }

    /// The status of a path, or `nil` when nothing is there. Symbolic links are not followed
    /// unless `followingLinks` is set.
    public static func of(_ path: String, followingLinks: Bool = false) throws -> FileStatus? {
        var info = Glibc.stat()
        let result = followingLinks ? statFollowingLinks(path, &info) : lstat(path, &info)
        if result != 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw FileSystemError.posix(path: path, operation: "stat", errno: errno)
        }
        return FileStatus(info)
    }

    init(_ info: Glibc.stat) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        size = Int64(info.st_size)
        mode = UInt32(info.st_mode & 0o7777)
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        modificationNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changeNanoseconds = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }
}

private func statFollowingLinks(_ path: String, _ info: inout Glibc.stat) -> Int32 {
    stat(path, &info)
}
