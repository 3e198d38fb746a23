import Foundation

/// Small, explicit file-system operations on paths (POSIX underneath, no `FileManager` surprises).
public enum FileTree {
    /// The names in a directory, without `.` and `..`.
    public static func childNames(of path: String) throws -> [String] {
        guard let directory = opendir(path) else {
            throw FileSystemError.posix(path: path, operation: "list", errno: errno)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A symbolic link's target, as written in the link.
    public static func linkTarget(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { throw FileSystemError.posix(path: path, operation: "read the link", errno: errno) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Creates a directory and its missing parents.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) == 0 { return }
        let code = errno
        if code == EEXIST {
            if let status = try FileStatus.of(path, followingLinks: true), status.kind == .directory { return }
            throw FileSystemError.posix(path: path, operation: "create the directory", errno: code)
        }
        if code == ENOENT {
            let parent = (path as NSString).deletingLastPathComponent
            if !parent.isEmpty && parent != path {
                try makeDirectory(parent, mode: mode)
                if mkdir(path, mode) == 0 || errno == EEXIST { return }
            }
        }
        throw FileSystemError.posix(path: path, operation: "create the directory", errno: code)
    }

    /// Removes a file or a whole tree, first making read-only directories writable again.
    public static func remove(_ path: String) throws {
        guard let status = try FileStatus.of(path) else { return }
        if status.kind == .directory {
            if status.mode & 0o700 != 0o700 { chmod(path, status.mode | 0o700) }
            for name in try childNames(of: path) { try remove(path + "/" + name) }
            if rmdir(path) != 0 { throw FileSystemError.posix(path: path, operation: "remove", errno: errno) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw FileSystemError.posix(path: path, operation: "remove", errno: errno)
        }
    }

    /// Removes everything inside a directory, keeping the directory.
    public static func removeContents(of path: String) throws {
        guard let status = try FileStatus.of(path), status.kind == .directory else { return }
        if status.mode & 0o700 != 0o700 { chmod(path, status.mode | 0o700) }
        for name in try childNames(of: path) { try remove(path + "/" + name) }
    }

    /// Clears the write bits of every file and directory in a tree (links are left alone).
    public static func makeReadOnly(_ path: String) throws {
        guard let status = try FileStatus.of(path) else { return }
        if status.kind == .directory {
            for name in try childNames(of: path) { try makeReadOnly(path + "/" + name) }
        }
        if status.kind != .symlink && chmod(path, status.mode & ~0o222) != 0 {
            throw FileSystemError.posix(path: path, operation: "make read-only", errno: errno)
        }
    }

    /// Flushes a file or directory to disk.
    public static func sync(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: path, operation: "open", errno: errno) }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 && errno != EINVAL {
            throw FileSystemError.posix(path: path, operation: "sync", errno: errno)
        }
    }

    /// Flushes every file of a tree, then the directories bottom-up, so a rename after it is durable.
    public static func syncTree(_ path: String) throws {
        guard let status = try FileStatus.of(path) else { return }
        if status.kind == .directory {
            for name in try childNames(of: path) { try syncTree(path + "/" + name) }
        }
        if status.kind == .file || status.kind == .directory { try sync(path) }
    }

    /// Writes bytes to a file through a temporary file and a rename, so readers never see half of it.
    /// Plain POSIX calls: `FileManager.createFile` fsyncs every file it writes, which cost more
    /// than a small step itself.
    public static func writeAtomically(_ data: Data, to path: String, sync shouldSync: Bool = false) throws {
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: temporary, operation: "create", errno: errno) }
        var failure: Int32 = 0
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0 && shouldSync && fsync(descriptor) != 0 { failure = errno }
        close(descriptor)
        if failure != 0 {
            unlink(temporary)
            throw FileSystemError.posix(path: path, operation: "write", errno: failure)
        }
        if rename(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            throw FileSystemError.posix(path: path, operation: "replace", errno: code)
        }
    }

    /// Reads a whole file.
    public static func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            if try FileStatus.of(path) == nil { throw FileSystemError.notFound(path: path) }
            throw FileSystemError.posix(path: path, operation: "read", errno: errno)
        }
        return data
    }

    /// An absolute, normalised form of a path, relative paths taken from `base`, which is read only
    /// for a relative path (it is often the working directory: a system call).
    public static func absolute(_ path: String, relativeTo base: @autoclosure () -> String) -> String {
        let joined = path.hasPrefix("/") ? path : base() + "/" + path
        return normalize(joined)
    }

    /// Removes `.`, `..` and repeated separators from an absolute path, without touching the disk.
    public static func normalize(_ path: String) -> String {
        // Most paths are clean already: a pipeline of 500 steps normalised its bundle paths in 2 ms.
        if isNormalized(path) { return path }
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether ``normalize(_:)`` would return `path` unchanged: it starts with a separator, and
    /// has no empty, `.` or `..` component and no separator at its end.
    private static func isNormalized(_ path: String) -> Bool {
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var bytes = path.utf8.makeIterator()
        guard bytes.next() == slash else { return false }
        if path.utf8.count == 1 { return true }
        // The component being read: its length, and how many of its bytes are dots.
        var length = 0, dots = 0
        func isSpecial() -> Bool { length == 0 || (length <= 2 && dots == length) }
        while let byte = bytes.next() {
            if byte == slash {
                if isSpecial() { return false }
                length = 0
                dots = 0
            } else {
                length += 1
                if byte == dot { dots += 1 }
            }
        }
        return !isSpecial()
    }

    /// The relative path that leads from the folder `base` to `path` (both absolute), such as
    /// `../steps/train`.
    public static func relative(_ path: String, from base: String) -> String {
        let target = normalize(path).split(separator: "/")
        let start = normalize(base).split(separator: "/")
        var common = 0
        while common < min(target.count, start.count) && target[common] == start[common] { common += 1 }
        let parts = Array(repeating: "..", count: start.count - common) + target[common...].map(String.init)
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// Copies a file or folder to `destination` (which must not exist), keeping execute bits.
    /// Links that stay inside `source` are copied as links; links that leave it are copied as
    /// what they point to, so the copy is self-contained. Names in `excluding` are skipped.
    public static func copyTree(from source: String, to destination: String, excluding: Set<String> = []) throws {
        let root = normalize(source)
        // Links are resolved on the real file system, as bundle archives do: a lexical `..` after
        // a linked folder (steps -> /elsewhere/steps) would point somewhere else.
        let realRoot = realPath(root) ?? root
        func copy(_ path: String, _ target: String) throws {
            guard let status = try FileStatus.of(path) else { throw FileSystemError.notFound(path: path) }
            switch status.kind {
            case .directory:
                try makeDirectory(target)
                for name in try childNames(of: path) where !excluding.contains(name) {
                    try copy(path + "/" + name, target + "/" + name)
                }
            case .symlink:
                let link = try linkTarget(path)
                let resolved = realPath(path) ?? absolute(link, relativeTo: (path as NSString).deletingLastPathComponent)
                if !link.hasPrefix("/") && (resolved == realRoot || resolved.hasPrefix(realRoot + "/")) {
                    try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: link)
                } else {
                    try copy(resolved, target)
                }
            default:
                try FileManager.default.copyItem(atPath: path, toPath: target)
            }
        }
        try copy(root, destination)
    }

    /// The current working directory.
    public static var currentDirectory: String { FileManager.default.currentDirectoryPath }
}

/// `realpath(3)`: the absolute path with every link resolved, or `nil` if something is missing.
private func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
