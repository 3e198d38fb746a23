// Only SHA256: swift-crypto also exports a `Digest` protocol, which would shadow ours.
import struct Crypto.SHA256
import Foundation
import ZenMLCore

/// The deterministic archive of a bundle folder, whose SHA-256 is the bundle digest.
///
/// The archive is an uncompressed POSIX tar (ustar headers, a pax `x` header before an entry
/// whose path or link target does not fit): entries sorted by path bytes, no `./` prefix,
/// directories as `dir/`, mtime 0, uid/gid 0, empty owner names, modes 0644/0755 for files (by
/// their execute bit), 0755 for directories, 0777 for symbolic links, and two zero blocks at the
/// end, without padding to a 10 KiB record. It is not gzipped: gzip's bytes depend on the zlib
/// version and level, so a compressed archive could not be rebuilt bit for bit elsewhere; the
/// digest is always of the tar bytes (see `protocol/SPEC.md`, "Bundle archives").
///
/// A symbolic link whose target stays inside the bundle is archived as a link; one that leaves
/// the bundle is archived as the file or folder it points to, so bundles can share SDK files by
/// relative links and still be self-contained.
public enum BundleArchive {
    /// Names never archived: interpreter caches and version-control folders, which change
    /// without the step changing.
    public static let excludedNames: Set<String> = ["__pycache__", ".git", ".DS_Store"]

    /// One entry of a bundle, as archived.
    public struct Entry: Sendable, Hashable {
        public enum Kind: String, Sendable { case file, directory, symlink }
        /// The path inside the bundle, `/`-separated.
        public var path: String
        public var kind: Kind
        public var executable: Bool
        public var size: Int64
        /// A file's content digest.
        public var digest: Digest?
        /// A link's target, as written.
        public var target: String?
        /// Where a file's bytes are read from (differs from the path for followed links).
        var source: String
    }

    /// The entries of the bundle at `root`, sorted as archived.
    public static func entries(of root: String, hasher: any FileHasher = DirectFileHasher()) throws -> [Entry] {
        let root = FileTree.normalize(root)
        guard let status = try FileStatus.of(root, followingLinks: true), status.kind == .directory else {
            throw BundleError.notABundle(path: root, reason: "there is no folder there")
        }
        guard let realRoot = realPath(root) else { throw BundleError.notABundle(path: root, reason: "cannot resolve its real path") }
        var entries: [Entry] = []
        try walk(directory: root, relative: "", realRoot: realRoot, bundleRoot: root, hasher: hasher, depth: 0, into: &entries)
        entries.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        return entries
    }

    private static func walk(
        directory: String, relative: String, realRoot: String, bundleRoot: String, hasher: any FileHasher, depth: Int,
        into entries: inout [Entry]
    ) throws {
        // Followed links can form cycles (a link to a parent folder); no real bundle is this deep.
        guard depth < 64 else { throw BundleError.notABundle(path: directory, reason: "folders nest more than 64 deep (a symbolic link loop?)") }
        for name in try FileTree.childNames(of: directory) where !excludedNames.contains(name) {
            let path = directory + "/" + name
            let inside = relative.isEmpty ? name : relative + "/" + name
            guard var status = try FileStatus.of(path) else { continue }
            var source = path
            if status.kind == .symlink {
                let target = try FileTree.linkTarget(path)
                guard let real = realPath(path), let resolved = try FileStatus.of(real) else {
                    throw BundleError.notABundle(path: bundleRoot, reason: "the symbolic link \(inside) -> \(target) points to nothing; fix or remove it")
                }
                if !target.hasPrefix("/"), real == realRoot || real.hasPrefix(realRoot + "/") {
                    entries.append(Entry(path: inside, kind: .symlink, executable: false, size: 0, digest: nil, target: target, source: path))
                    continue
                }
                // A link out of the bundle is archived as what it points to.
                status = resolved
                source = real
            }
            switch status.kind {
            case .file:
                let digest = try hasher.digest(ofFileAtPath: source, status: status)
                entries.append(Entry(path: inside, kind: .file, executable: status.isExecutable, size: status.size, digest: digest, target: nil, source: source))
            case .directory:
                entries.append(Entry(path: inside, kind: .directory, executable: true, size: 0, digest: nil, target: nil, source: source))
                try walk(directory: source, relative: inside, realRoot: realRoot, bundleRoot: bundleRoot, hasher: hasher, depth: depth + 1, into: &entries)
            case .symlink, .other:
                throw BundleError.notABundle(path: bundleRoot, reason: "\(inside) is neither a file, a folder nor a symbolic link; remove it from the bundle")
            }
        }
    }

    /// A digest of the listing (paths, kinds, modes, sizes, content digests, link targets). The
    /// archive is a function of exactly this, so it keys the memo of archive digests.
    static func listingDigest(_ entries: [Entry]) -> Digest {
        Digest.of(canonical: .array(entries.map { entry in
            var object: [String: JSONValue] = ["p": .string(entry.path), "k": .string(entry.kind.rawValue)]
            if entry.kind == .file {
                object["x"] = .bool(entry.executable)
                object["s"] = .int(entry.size)
                object["d"] = .string(entry.digest?.description ?? "")
            }
            if let target = entry.target { object["t"] = .string(target) }
            return .object(object)
        }))
    }

    /// Writes the archive of `entries` through `sink`, in order.
    static func write(_ entries: [Entry], to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var padding = [UInt8](repeating: 0, count: 1024)
        for entry in entries {
            let header: [UInt8]
            switch entry.kind {
            case .directory:
                header = TarHeader.encode(path: entry.path + "/", mode: 0o755, size: 0, type: TarHeader.directory, linkTarget: "")
            case .symlink:
                header = TarHeader.encode(path: entry.path, mode: 0o777, size: 0, type: TarHeader.symlink, linkTarget: entry.target ?? "")
            case .file:
                header = TarHeader.encode(path: entry.path, mode: entry.executable ? 0o755 : 0o644, size: entry.size, type: TarHeader.regular, linkTarget: "")
            }
            try header.withUnsafeBytes { try sink($0) }
            guard entry.kind == .file else { continue }
            let written = try copyFile(entry.source, expectedSize: entry.size, path: entry.path, to: sink)
            let remainder = Int(written % 512)
            if remainder != 0 { try padding.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<(512 - remainder)])) } }
        }
        padding = [UInt8](repeating: 0, count: 1024)
        try padding.withUnsafeBytes { try sink($0) }
    }

    /// The SHA-256 of the archive, streamed: nothing is written.
    public static func digest(of entries: [Entry]) throws -> Digest {
        var hasher = SHA256()
        try write(entries) { hasher.update(bufferPointer: $0) }
        return Digest.ofSHA256(hasher.finalize())
    }

    /// Writes the archive of the bundle at `root` to `destination` (through a temporary file and
    /// a rename) and returns its digest.
    @discardableResult
    public static func pack(_ root: String, to destination: String) throws -> Digest {
        let entries = try Self.entries(of: root)
        let temporary = destination + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: temporary, operation: "create", errno: errno) }
        var hasher = SHA256()
        do {
            try write(entries) { buffer in
                hasher.update(bufferPointer: buffer)
                try writeAll(descriptor, buffer, path: temporary)
            }
            close(descriptor)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        if rename(temporary, destination) != 0 {
            let code = errno
            unlink(temporary)
            throw FileSystemError.posix(path: destination, operation: "replace", errno: code)
        }
        return Digest.ofSHA256(hasher.finalize())
    }

    private static func copyFile(_ source: String, expectedSize: Int64, path: String, to sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        let descriptor = open(source, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: source, operation: "open", errno: errno) }
        defer { close(descriptor) }
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while total < expectedSize {
            let wanted = Int(min(Int64(chunk), expectedSize - total))
            let count = read(descriptor, buffer.baseAddress, wanted)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileSystemError.posix(path: source, operation: "read", errno: errno)
            }
            if count == 0 { break }
            try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += Int64(count)
        }
        // The header already promised `expectedSize` bytes: a file that changed size meanwhile
        // would make a corrupt archive, so refuse rather than guess.
        var probe: UInt8 = 0
        guard total == expectedSize, read(descriptor, &probe, 1) == 0 else {
            throw BundleError.changedWhilePacking(path: path)
        }
        return total
    }
}

func writeAll(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
    var offset = 0
    while offset < buffer.count {
        let written = Glibc.write(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            throw FileSystemError.posix(path: path, operation: "write", errno: errno)
        }
        offset += written
    }
}

/// `realpath(3)`: the absolute path with every link resolved, or `nil` if something is missing.
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

extension Digest {
    static func ofSHA256(_ digest: SHA256.Digest) -> Digest {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in digest { hex.append(digits[Int(byte >> 4)]); hex.append(digits[Int(byte & 0x0f)]) }
        // 64 lowercase hex digits by construction.
        return Digest(hex: String(decoding: hex, as: UTF8.self))!
    }
}

/// ustar header blocks and pax records.
enum TarHeader {
    static let regular: UInt8 = UInt8(ascii: "0")
    static let symlink: UInt8 = UInt8(ascii: "2")
    static let directory: UInt8 = UInt8(ascii: "5")
    static let paxExtended: UInt8 = UInt8(ascii: "x")
    static let maxOctalSize: Int64 = 0o77777777777

    /// The header block(s) of one entry: a pax header first when a field does not fit ustar.
    static func encode(path: String, mode: Int, size: Int64, type: UInt8, linkTarget: String) -> [UInt8] {
        let pathBytes = Array(path.utf8)
        let linkBytes = Array(linkTarget.utf8)
        var records: [(String, [UInt8])] = []
        if pathBytes.count > 100 { records.append(("path", pathBytes)) }
        if linkBytes.count > 100 { records.append(("linkpath", linkBytes)) }
        if size > maxOctalSize { records.append(("size", Array(String(size).utf8))) }
        var blocks: [UInt8] = []
        if !records.isEmpty {
            var data: [UInt8] = []
            for (key, value) in records { data += paxRecord(key: key, value: value) }
            blocks += block(name: Array("././@PaxHeader".utf8), mode: 0o644, size: Int64(data.count), type: paxExtended, link: [])
            blocks += data
            let remainder = data.count % 512
            if remainder != 0 { blocks += [UInt8](repeating: 0, count: 512 - remainder) }
        }
        blocks += block(
            name: Array(pathBytes.prefix(100)), mode: mode, size: size > maxOctalSize ? 0 : size, type: type,
            link: Array(linkBytes.prefix(100)))
        return blocks
    }

    /// `"<length> <key>=<value>\n"`, where the length counts itself.
    static func paxRecord(key: String, value: [UInt8]) -> [UInt8] {
        let body = Array(" \(key)=".utf8) + value + [UInt8(ascii: "\n")]
        var length = body.count + 1
        while String(length).utf8.count + body.count != length { length = String(length).utf8.count + body.count }
        return Array(String(length).utf8) + body
    }

    private static func block(name: [UInt8], mode: Int, size: Int64, type: UInt8, link: [UInt8]) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], at offset: Int) { for (index, byte) in bytes.enumerated() { header[offset + index] = byte } }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(Int64(mode), width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)
        put([UInt8](repeating: UInt8(ascii: " "), count: 8), at: 148)
        header[156] = type
        put(link, at: 157)
        put(Array("ustar\0".utf8), at: 257)
        put(Array("00".utf8), at: 263)
        put(octal(0, width: 8), at: 329)
        put(octal(0, width: 8), at: 337)
        let checksum = header.reduce(0) { $0 + Int64($1) }
        put(Array((String(repeating: "0", count: max(0, 6 - String(checksum, radix: 8).count)) + String(checksum, radix: 8)).utf8) + [0, UInt8(ascii: " ")], at: 148)
        return header
    }
}

/// Why a bundle cannot be packed, unpacked, published or used.
public enum BundleError: Error, CustomStringConvertible, Sendable {
    case notABundle(path: String, reason: String)
    case changedWhilePacking(path: String)
    case unsafeArchive(path: String, reason: String)
    case destinationExists(path: String)
    case registry(String)
    case signature(String)
    case reference(String)
    case lock(String)

    public var description: String {
        switch self {
        case .notABundle(let path, let reason):
            return "cannot pack the bundle at \(path): \(reason)"
        case .changedWhilePacking(let path):
            return "the bundle file \(path) changed while it was being packed; pack again when nothing writes to the bundle"
        case .unsafeArchive(let path, let reason):
            return "refusing to unpack \(path): \(reason); nothing was written"
        case .destinationExists(let path):
            return "\(path) already exists and is not empty; unpack into a new folder"
        case .registry(let message), .signature(let message), .reference(let message), .lock(let message):
            return message
        }
    }
}
