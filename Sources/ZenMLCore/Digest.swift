import Crypto
import Foundation

/// A SHA-256 content digest, written `sha256:<64 hex digits>` everywhere it is shown or stored.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 64 lowercase hex digits.
    public let hex: String

    /// Creates a digest from its hex digits; `nil` unless they are 64 lowercase hex digits.
    public init?(hex: String) {
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else { return nil }
        self.hex = hex
    }

    /// Parses `sha256:<hex>` (or bare hex).
    public init?(_ text: String) {
        let hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        self.init(hex: hex)
    }

    init(sha256 digest: SHA256.Digest) {
        self.hex = digest.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
        }.joined()
    }

    public var description: String { "sha256:" + hex }

    /// The first 12 hex digits, for people.
    public var short: String { String(hex.prefix(12)) }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.hex < rhs.hex }

    /// The digest of some bytes.
    public static func of(_ data: Data) -> Digest {
        Digest(sha256: SHA256.hash(data: data))
    }

    /// The digest of a string's UTF-8 bytes.
    public static func of(_ string: String) -> Digest {
        of(Data(string.utf8))
    }

    /// The digest of a JSON value's canonical encoding.
    public static func of(canonical value: JSONValue) -> Digest {
        of(CanonicalJSON.data(value))
    }

    /// The digest of a file's contents. Files of 1 MiB and more are hashed from a ``FileMapping``
    /// (no copy out of the page cache: `read` cost 0.46 s of system time per GiB); a file that
    /// shrinks meanwhile is an error, not a crash; smaller files are read.
    public static func ofFile(atPath path: String) throws -> Digest {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: path, operation: "open", errno: errno) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw FileSystemError.posix(path: path, operation: "read", errno: errno) }
        var hasher = SHA256()
        if status.st_size >= 1 << 20 && (status.st_mode & S_IFMT) == S_IFREG {
            let mapping = try FileMapping(descriptor: descriptor, size: Int64(status.st_size), path: path)
            var offset: Int64 = 0
            while offset < mapping.size {
                let length = min(Int64(8 << 20), mapping.size - offset)
                hasher.update(bufferPointer: mapping.bytes(offset: offset, length: length))
                offset += length
            }
            try mapping.checkUnchanged(descriptor: descriptor, doing: "hash")
            return Digest(sha256: hasher.finalize())
        }
        let chunkSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress, chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileSystemError.posix(path: path, operation: "read", errno: errno)
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        return Digest(sha256: hasher.finalize())
    }
}

/// A file mapped read-only into memory, for hashing and uploading large files straight from the
/// page cache (a `pread` into a reused buffer cost 0.5 s of system time per GiB more, measured).
///
/// A plain mapping kills the process with SIGBUS when the file shrinks while it is read: the pages
/// past the new end are gone. This one registers its range with a process-wide SIGBUS handler that
/// replaces the rest of the range with zero pages and marks the mapping, so the read (ours, or
/// libcurl's copy of an upload body) goes on and ``shrank`` tells the owner its bytes are not the
/// file's: callers check it (``checkUnchanged(descriptor:doing:)``) after their last read. Faults
/// elsewhere go to the handler that was installed before (the Swift runtime's backtracer, or the
/// default action).
public final class FileMapping: @unchecked Sendable {
    public let size: Int64
    public let path: String
    private let base: UnsafeMutableRawPointer?
    private let slot: Int

    /// Maps `size` bytes of an open file (the descriptor may be closed afterwards).
    public init(descriptor: Int32, size: Int64, path: String) throws {
        self.size = size
        self.path = path
        guard size > 0 else { base = nil; slot = -1; return }
        guard let mapped = mmap(nil, Int(size), PROT_READ, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else {
            throw FileSystemError.posix(path: path, operation: "map", errno: errno)
        }
        _ = madvise(mapped, Int(size), MADV_SEQUENTIAL)
        guard let slot = BusGuard.register(start: mapped, length: Int(size)) else {
            munmap(mapped, Int(size))
            throw FileSystemError.posix(path: path, operation: "map (too many files mapped at once)", errno: ENOMEM)
        }
        base = mapped
        self.slot = slot
    }

    deinit {
        if let base {
            BusGuard.unregister(slot)
            munmap(base, Int(size))
        }
    }

    /// Whether the file lost bytes while mapped: what was read past its new end is zeros.
    public var shrank: Bool { slot >= 0 && BusGuard.faulted(slot) }

    /// `length` bytes at `offset`; valid while this object lives.
    public func bytes(offset: Int64, length: Int64) -> UnsafeRawBufferPointer {
        guard let base, length > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + Int(offset), count: Int(length))
    }

    /// `length` bytes at `offset`, without a copy; valid while this object lives.
    public func slice(offset: Int64, length: Int64) -> Data {
        guard let base, length > 0 else { return Data() }
        return Data(bytesNoCopy: base + Int(offset), count: Int(length), deallocator: .none)
    }

    /// Throws unless the file still has the size it was mapped with and no read fell past its end.
    public func checkUnchanged(descriptor: Int32, doing operation: String) throws {
        var status = stat()
        if shrank || (fstat(descriptor, &status) == 0 && Int64(status.st_size) != size) {
            throw FileSystemError.posix(path: path, operation: "\(operation) the file: it changed size while being read (was \(size) bytes)", errno: EIO)
        }
    }
}

/// The process-wide SIGBUS handler of ``FileMapping``: a fixed table of mapped ranges, read
/// without locks by the handler (which must not allocate or lock), written under a lock.
private enum BusGuard {
    struct Slot {
        var start: UInt
        var end: UInt
        var pageMask: UInt
        var faulted: UInt
    }

    /// Room for many at once: a GCS staged upload keeps its mapping until it is committed.
    static let capacity = 4096
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<Slot> = {
        let slots = UnsafeMutablePointer<Slot>.allocate(capacity: capacity)
        slots.initialize(repeating: Slot(start: 0, end: 0, pageMask: 0, faulted: 0), count: capacity)
        return slots
    }()
    nonisolated(unsafe) static let previous: UnsafeMutablePointer<sigaction> = {
        let previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 1)
        previous.initialize(to: sigaction())
        return previous
    }()
    static let lock = NSLock()
    nonisolated(unsafe) static var installed = false

    static func register(start: UnsafeMutableRawPointer, length: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        if !installed {
            _ = slots
            _ = previous
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = busHandler
            action.sa_flags = SA_SIGINFO | SA_ONSTACK
            sigemptyset(&action.sa_mask)
            guard sigaction(SIGBUS, &action, previous) == 0 else { return nil }
            installed = true
        }
        for index in 0..<capacity where slots[index].start == 0 {
            let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
            let begin = UInt(bitPattern: start)
            slots[index] = Slot(start: begin, end: (begin + UInt(length) + page - 1) & ~(page - 1), pageMask: ~(page - 1), faulted: 0)
            return index
        }
        return nil
    }

    static func unregister(_ index: Int) {
        lock.lock()
        slots[index] = Slot(start: 0, end: 0, pageMask: 0, faulted: 0)
        lock.unlock()
    }

    static func faulted(_ index: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return slots[index].faulted != 0
    }
}

/// Runs on the faulting thread: only reads the table, maps zero pages and forwards.
private let busHandler: @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = { signal, info, context in
    let slots = BusGuard.slots
    if let info {
        let address = UInt(bitPattern: info.pointee._sifields._sigfault.si_addr)
        for index in 0..<BusGuard.capacity {
            let slot = slots[index]
            guard slot.start != 0, address >= slot.start, address < slot.end else { continue }
            // Zero pages over the rest of the range: the faulting read resumes and reads zeros.
            let page = address & slot.pageMask
            if mmap(UnsafeMutableRawPointer(bitPattern: page), Int(slot.end - page), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED {
                slots[index].faulted = 1
                return
            }
        }
    }
    let previous = BusGuard.previous
    if previous.pointee.sa_flags & SA_SIGINFO != 0, let handler = previous.pointee.__sigaction_handler.sa_sigaction {
        handler(signal, info, context)
    } else if let handler = previous.pointee.__sigaction_handler.sa_handler, unsafeBitCast(handler, to: Int.self) > 1 {
        handler(signal)
    } else {
        // The default action (or ignored, which cannot be for a fault): restore it; the access faults again and ends the process.
        sigaction(SIGBUS, previous, nil)
    }
}

extension Digest: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let digest = Digest(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a digest of the form sha256:<64 hex digits>")
        }
        self = digest
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
