import Foundation
import ZenMLCore

/// Bounds on what an archive may expand to.
public struct UnpackLimits: Sendable {
    /// The most bytes the files may hold together.
    public var maxBytes: Int64
    /// The most entries (files, folders, links).
    public var maxEntries: Int

    /// 1 GiB and 100,000 entries: far above any step bundle, far below a disk-filling bomb.
    public init(maxBytes: Int64 = 1 << 30, maxEntries: Int = 100_000) {
        self.maxBytes = maxBytes
        self.maxEntries = maxEntries
    }
}

/// Unpacks bundle archives safely: an archive that would write outside its folder (absolute
/// paths, `..`, links that leave it, entries below a link), holds devices, fifos or hard links,
/// or expands beyond the limits is refused before anything appears at the destination. Files are
/// written into a fresh folder beside the destination that is renamed into place at the end.
public enum BundleUnpacker {
    /// Unpacks the archive at `archive` into the folder `destination`, which must not exist (or be empty).
    public static func unpack(_ archive: String, into destination: String, limits: UnpackLimits = UnpackLimits()) throws {
        let destination = FileTree.normalize(destination)
        if let status = try FileStatus.of(destination) {
            guard status.kind == .directory, try FileTree.childNames(of: destination).isEmpty else {
                throw BundleError.destinationExists(path: destination)
            }
        }
        let parent = (destination as NSString).deletingLastPathComponent
        try FileTree.makeDirectory(parent)
        let staging = parent + "/.unpack-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(staging, 0o755) == 0 else { throw FileSystemError.posix(path: staging, operation: "create the directory", errno: errno) }
        do {
            try extract(archive, into: staging, limits: limits)
            try verifyLinks(in: staging, archive: archive)
            if (try FileStatus.of(destination)) != nil { rmdir(destination) }
            guard rename(staging, destination) == 0 else {
                throw FileSystemError.posix(path: destination, operation: "move the unpacked bundle to", errno: errno)
            }
        } catch {
            try? FileTree.remove(staging)
            throw error
        }
    }

    /// One checked entry of an archive.
    struct CheckedEntry {
        var path: String
        var kind: BundleArchive.Entry.Kind
        var size: Int64
        var executable: Bool
        var target: String?
    }

    private static func extract(_ archive: String, into staging: String, limits: UnpackLimits) throws {
        try read(archive, limits: limits) { entry, _ in
            let path = staging + "/" + entry.path
            switch entry.kind {
            case .directory:
                if mkdir(path, 0o755) != 0 && !(errno == EEXIST && (try? FileStatus.of(path))?.kind == .directory) {
                    throw FileSystemError.posix(path: path, operation: "create the directory", errno: errno)
                }
                return nil
            case .symlink:
                try makeParents(of: entry.path, in: staging)
                guard symlink(entry.target ?? "", path) == 0 else { throw FileSystemError.posix(path: path, operation: "create the link", errno: errno) }
                return nil
            case .file:
                try makeParents(of: entry.path, in: staging)
                // O_NOFOLLOW and O_EXCL: never write through a link, never over an earlier entry.
                let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, entry.executable ? 0o755 : 0o644)
                guard descriptor >= 0 else { throw FileSystemError.posix(path: path, operation: "create", errno: errno) }
                // The mode passed to open is masked by the umask; a bundle's modes must not be.
                fchmod(descriptor, entry.executable ? 0o755 : 0o644)
                return descriptor
            }
        }
    }

    private static func makeParents(of relative: String, in staging: String) throws {
        guard let slash = relative.lastIndex(of: "/") else { return }
        try FileTree.makeDirectory(staging + "/" + relative[..<slash])
    }

    /// Every link must resolve, and resolve inside the unpacked folder. Checked on the real tree:
    /// a chain of links can leave a folder that each link's text alone seems to stay in.
    private static func verifyLinks(in staging: String, archive: String) throws {
        guard let realStaging = realPath(staging) else { return }
        func visit(_ directory: String, _ relative: String) throws {
            for name in try FileTree.childNames(of: directory) {
                let path = directory + "/" + name
                let inside = relative.isEmpty ? name : relative + "/" + name
                guard let status = try FileStatus.of(path) else { continue }
                if status.kind == .symlink {
                    guard let real = realPath(path), real == realStaging || real.hasPrefix(realStaging + "/") else {
                        throw BundleError.unsafeArchive(path: archive, reason: "the symbolic link \(inside) points outside the bundle or to nothing")
                    }
                } else if status.kind == .directory {
                    try visit(path, inside)
                }
            }
        }
        try visit(staging, "")
    }

    /// Reads and checks every entry; `body` returns a descriptor to receive a file's bytes (it is closed here).
    static func read(_ archive: String, limits: UnpackLimits, body: (CheckedEntry, Int) throws -> Int32?) throws {
        let reader = try BlockReader(path: archive)
        func refuse(_ reason: String) -> BundleError { .unsafeArchive(path: archive, reason: reason) }
        var pax: [String: String] = [:]
        var seen: [String: BundleArchive.Entry.Kind] = [:]
        var links = Set<String>()
        var totalBytes: Int64 = 0
        var count = 0
        while true {
            guard let header = try reader.block() else { throw refuse("it ends before its end-of-archive marker (truncated?)") }
            if header.allSatisfy({ $0 == 0 }) { break }
            if count == 0 && header[0] == 0x1f && header[1] == 0x8b {
                throw refuse("it is gzip-compressed; bundle archives are plain tar: gunzip it first")
            }
            guard verifyChecksum(header) else { throw refuse("a header's checksum is wrong: this is not a tar archive, or it is damaged") }
            let type = header[156]
            guard var size = octal(header[124..<136]) else { throw refuse("a header has an unreadable size field") }
            if type == TarHeader.paxExtended || type == UInt8(ascii: "g") {
                guard size <= 1 << 20 else { throw refuse("a pax header of \(size) bytes is larger than any real one") }
                let data = try reader.bytes(Int(size))
                if type == TarHeader.paxExtended { pax = try parsePax(data, refuse: refuse) }
                continue
            }
            var path = pax["path"] ?? {
                let name = string(header[0..<100])
                let prefix = header[257..<263].elementsEqual("ustar".utf8 + [0]) ? string(header[345..<500]) : ""
                return prefix.isEmpty ? name : prefix + "/" + name
            }()
            let linkTarget = pax["linkpath"] ?? string(header[157..<257])
            if let paxSize = pax["size"] {
                guard let value = Int64(paxSize) else { throw refuse("a pax size is not a number") }
                size = value
            }
            pax = [:]
            count += 1
            guard count <= limits.maxEntries else { throw refuse("it has more than \(limits.maxEntries) entries") }
            let kind: BundleArchive.Entry.Kind
            switch type {
            case TarHeader.regular, 0, UInt8(ascii: "7"): kind = .file
            case TarHeader.directory: kind = .directory
            case TarHeader.symlink: kind = .symlink
            case UInt8(ascii: "1"): throw refuse("\(path) is a hard link, which bundles may not hold")
            case UInt8(ascii: "3"), UInt8(ascii: "4"): throw refuse("\(path) is a device file, which bundles may not hold")
            case UInt8(ascii: "6"): throw refuse("\(path) is a fifo, which bundles may not hold")
            default: throw refuse("\(path) has the unsupported entry type '\(String(decoding: [type], as: UTF8.self))'")
            }
            if path.hasPrefix("/") { throw refuse("\(path) is an absolute path") }
            if path.hasSuffix("/") { path.removeLast() }
            if path.hasPrefix("./") { path.removeFirst(2) }
            let components = path.split(separator: "/", omittingEmptySubsequences: false)
            if path.isEmpty || path == "." { if kind == .directory { continue } else { throw refuse("an entry has no name") } }
            if components.contains("..") { throw refuse("\(path) has a '..' component") }
            if components.contains("") || components.contains(".") { throw refuse("\(path) is not a normalised path") }
            if path.utf8.contains(0) { throw refuse("a path holds a NUL byte") }
            // Nothing may be written below a link: that is how archives reach outside their folder.
            for index in 1..<components.count where links.contains(components[0..<index].joined(separator: "/")) {
                throw refuse("\(path) lies below the symbolic link \(components[0..<index].joined(separator: "/"))")
            }
            if let earlier = seen[path], !(earlier == .directory && kind == .directory) {
                throw refuse("\(path) appears twice")
            }
            seen[path] = kind
            if kind == .symlink {
                if linkTarget.hasPrefix("/") { throw refuse("the symbolic link \(path) points to the absolute path \(linkTarget)") }
                var depth = components.count - 1
                for part in linkTarget.split(separator: "/") where part != "." {
                    depth += part == ".." ? -1 : 1
                    if depth < 0 { throw refuse("the symbolic link \(path) -> \(linkTarget) points outside the bundle") }
                }
                links.insert(path)
            }
            if kind != .file && size != 0 { throw refuse("\(path) is not a file but carries \(size) bytes") }
            totalBytes += size
            guard totalBytes <= limits.maxBytes else { throw refuse("it expands to more than \(limits.maxBytes) bytes") }
            let mode = octal(header[100..<108]) ?? 0
            let entry = CheckedEntry(path: path, kind: kind, size: size, executable: mode & 0o111 != 0, target: kind == .symlink ? linkTarget : nil)
            let descriptor = try body(entry, count)
            defer { if let descriptor { close(descriptor) } }
            try reader.copy(size, to: descriptor, path: path)
        }
    }

    private static func verifyChecksum(_ header: [UInt8]) -> Bool {
        guard let stored = octal(header[148..<156]) else { return false }
        var sum: Int64 = 0
        for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 32 : Int64(byte) }
        return sum == stored
    }

    private static func octal(_ field: ArraySlice<UInt8>) -> Int64? {
        let text = String(decoding: field.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return 0 }
        return Int64(text, radix: 8)
    }

    private static func string(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func parsePax(_ data: [UInt8], refuse: (String) -> BundleError) throws -> [String: String] {
        var records: [String: String] = [:]
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > 0, index + length <= data.count
            else { throw refuse("a pax header is malformed") }
            let record = data[(space + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else { throw refuse("a pax record has no '='") }
            records[String(decoding: record[record.startIndex..<equals], as: UTF8.self)] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            index += length
        }
        return records
    }
}

/// Reads an archive in 512-byte blocks through a buffer.
private final class BlockReader {
    let descriptor: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: path, operation: "open", errno: errno) }
    }

    deinit { close(descriptor) }

    /// Reads exactly `count` bytes, or fewer at the end of the file.
    private func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var total = 0
        while total < buffer.count {
            let count = Glibc.read(descriptor, buffer.baseAddress.map { $0 + total }, buffer.count - total)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileSystemError.posix(path: path, operation: "read", errno: errno)
            }
            if count == 0 { break }
            total += count
        }
        return total
    }

    /// The next block, or `nil` at the end of the file.
    func block() throws -> [UInt8]? {
        var block = [UInt8](repeating: 0, count: 512)
        let count = try block.withUnsafeMutableBytes { try fill($0) }
        if count == 0 { return nil }
        guard count == 512 else { throw BundleError.unsafeArchive(path: path, reason: "it ends in the middle of a block (truncated?)") }
        return block
    }

    /// `count` bytes of entry data and the padding after them.
    func bytes(_ count: Int) throws -> [UInt8] {
        let padded = (count + 511) / 512 * 512
        var data = [UInt8](repeating: 0, count: padded)
        let read = try data.withUnsafeMutableBytes { try fill($0) }
        guard read == padded else { throw BundleError.unsafeArchive(path: path, reason: "it ends in the middle of an entry (truncated?)") }
        return Array(data.prefix(count))
    }

    /// Copies `size` bytes of entry data to `destination` (or skips them), then the padding.
    func copy(_ size: Int64, to destination: Int32?, path entryPath: String) throws {
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var remaining = (size + 511) / 512 * 512
        var payload = size
        while remaining > 0 {
            let wanted = Int(min(Int64(chunk), remaining))
            let count = try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]))
            guard count == wanted else { throw BundleError.unsafeArchive(path: path, reason: "it ends in the middle of \(entryPath) (truncated?)") }
            let useful = Int(min(Int64(count), payload))
            if let destination, useful > 0 {
                try writeAll(destination, UnsafeRawBufferPointer(rebasing: buffer[0..<useful]), path: entryPath)
            }
            payload -= Int64(useful)
            remaining -= Int64(count)
        }
    }
}
