import Crypto
import CZlib
import Foundation
import ZenMLCore

/// An object in a bucket, as the server reports it.
public struct ObjectInfo: Sendable, Hashable {
    public var key: String
    public var size: Int64
    /// The MD5 of the content in lower-case hex, when the server gives it (GCS `md5Hash`, an S3
    /// ETag of a single PUT); `nil` for S3 multipart objects, whose ETag is not a content hash.
    public var md5: String?
    /// The S3 ETag or GCS generation, as given.
    public var etag: String?
}

/// A bucket on an object storage service: the few operations the remote artifact store needs.
/// Every upload is verified before it returns (size, and MD5 or the part MD5s).
public protocol ObjectStore: Sendable {
    /// `gs://bucket` or `s3://bucket`, for messages.
    var bucketURL: String { get }
    /// Uploads bytes held in memory.
    @discardableResult func put(_ key: String, data: Data) async throws -> ObjectInfo
    /// How files are split into parts; files of at least `multipartThreshold` bytes can be staged.
    var settings: TransferSettings { get }
    /// Uploads a file; files over the settings' threshold go up in parts (S3 multipart, GCS resumable).
    @discardableResult func put(_ key: String, file path: String) async throws -> ObjectInfo
    /// Sends a large file in one read of it, computing its SHA-256 on the way, without making it
    /// visible: the object appears under `key` only on ``StagedUpload/commit()``, and
    /// ``StagedUpload/abort()`` (or a process killed before either) leaves nothing visible.
    /// S3: a multipart upload whose parts are all sent, not yet completed; GCS: a resumable upload
    /// whose last chunk is held back. For files of at least `settings.multipartThreshold` bytes.
    func stage(_ key: String, file path: String) async throws -> any StagedUpload
    /// Downloads an object into a file (replaced); `nil` if there is no such object. With its
    /// size known and over the multipart threshold, parts are fetched in parallel (range requests).
    func get(_ key: String, to path: String, expectedSize: Int64?) async throws -> ObjectInfo?
    /// An object's bytes; `nil` if there is no such object.
    func data(_ key: String) async throws -> Data?
    /// An object's size and hashes; `nil` if there is no such object.
    func head(_ key: String) async throws -> ObjectInfo?
    /// Every object whose key starts with `prefix` (all pages).
    func list(prefix: String) async throws -> [ObjectInfo]
    /// Deletes an object; deleting a missing object is not an error.
    func delete(_ key: String) async throws
}

/// A file sent to the server but not yet visible: see ``ObjectStore/stage(_:file:)``.
public protocol StagedUpload: Sendable {
    var key: String { get }
    /// The bytes sent (the file's size when it was opened).
    var size: Int64 { get }
    /// The SHA-256 of exactly the bytes sent.
    var sha256: ZenMLCore.Digest { get }
    /// Makes the object visible under its key and verifies it (size and MD5s), or throws.
    @discardableResult func commit() async throws -> ObjectInfo
    /// Drops the upload; nothing becomes visible. Best effort: a server that loses the request
    /// keeps only invisible parts (S3 lifecycle rules abort incomplete uploads; GCS expires sessions).
    func abort() async
}

extension ObjectStore {
    /// Downloads an object into a file (replaced); `nil` if there is no such object.
    public func get(_ key: String, to path: String) async throws -> ObjectInfo? {
        try await get(key, to: path, expectedSize: nil)
    }
}

/// Fetches `size` bytes into `path` as parallel range requests of `partSize`; `nil` if the
/// object is missing. `send(offset, length)` makes one request, writing at `offset`.
func rangedDownload(path: String, size: Int64, partSize: Int64, concurrency: Int, url: String,
                    _ send: @escaping @Sendable (Int64, Int64) async throws -> HTTPResponse) async throws -> Bool {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw ObjectStoreError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
    let sized = ftruncate(descriptor, off_t(size)) == 0
    close(descriptor)
    guard sized else { throw ObjectStoreError.unreadableFile(path: path, reason: "cannot make it \(size) bytes long") }
    let offsets = Array(stride(from: Int64(0), to: size, by: Int(partSize)))
    let missing = MissingFlag()
    try await forEachConcurrently(offsets, limit: concurrency) { offset in
        let length = min(partSize, size - offset)
        let response = try await send(offset, length)
        if response.status == 404 { missing.set(); return }
        guard response.status == 206, response.header("content-range")?.hasPrefix("bytes \(offset)-\(offset + length - 1)/") == true else {
            throw ObjectStoreError.server(operation: "download bytes \(offset)-\(offset + length - 1) of", url: url, status: response.status, detail: errorDetail(response))
        }
    }
    return !missing.value
}

private final class MissingFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

/// How uploads are split. Tests lower the threshold to exercise multipart/resumable uploads.
public struct TransferSettings: Sendable, Equatable {
    /// Files of at least this size are uploaded (and, when their size is known, downloaded) in parts.
    public var multipartThreshold: Int64
    /// The size of a part (S3: at least 5 MiB but for the last; GCS: a multiple of 256 KiB).
    public var partSize: Int64

    public init(multipartThreshold: Int64 = 64 << 20, partSize: Int64 = 16 << 20) {
        self.multipartThreshold = multipartThreshold
        self.partSize = partSize
    }

    /// The defaults, overridden by `ZENML_MULTIPART_THRESHOLD` / `ZENML_PART_SIZE` (bytes).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> TransferSettings {
        var settings = TransferSettings()
        if let value = environment["ZENML_MULTIPART_THRESHOLD"].flatMap(Int64.init), value > 0 { settings.multipartThreshold = value }
        if let value = environment["ZENML_PART_SIZE"].flatMap(Int64.init), value > 0 { settings.partSize = value }
        return settings
    }
}

/// Why an object store operation failed. Messages never contain credentials.
public enum ObjectStoreError: Error, CustomStringConvertible, Sendable {
    /// No credentials were found; `variable` is what to set.
    case missingCredentials(service: String, variable: String, detail: String)
    /// The server refused the credentials.
    case badCredentials(service: String, variable: String, detail: String)
    /// The server answered with an error.
    case server(operation: String, url: String, status: Int, detail: String)
    /// An upload or download arrived with other bytes than were sent.
    case checksumMismatch(url: String, detail: String)
    case invalidLocation(String)
    case unreadableFile(path: String, reason: String)
    /// libcurl, which the bucket stores talk HTTP with, could not be loaded (it is opened at first use).
    case missingLibcurl(reason: String)

    public var description: String {
        switch self {
        case .missingCredentials(let service, let variable, let detail):
            return "no \(service) credentials: set \(variable) (\(detail))"
        case .badCredentials(let service, let variable, let detail):
            return "\(service) refused the credentials (\(detail)); check \(variable)"
        case .server(let operation, let url, let status, let detail):
            return "cannot \(operation) \(url): HTTP \(status)\(detail.isEmpty ? "" : " \(detail)")"
        case .checksumMismatch(let url, let detail):
            return "\(url) does not have the bytes that were sent or expected (\(detail)); it was not used"
        case .invalidLocation(let text):
            return "'\(text)' is not an object store location: use gs://BUCKET/PREFIX or s3://BUCKET/PREFIX"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .missingLibcurl(let reason):
            return "the gs:// and s3:// stores need libcurl, which could not be loaded (\(reason)); install it (Debian/Ubuntu: apt-get install libcurl4; Fedora/RHEL: dnf install libcurl), then run again"
        }
    }
}

/// `gs://BUCKET/PREFIX` or `s3://BUCKET/PREFIX`.
public struct ObjectStoreLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Codable { case gs, s3 }
    public var scheme: Scheme
    public var bucket: String
    /// Without leading or trailing `/`; may be empty.
    public var prefix: String

    public init(parsing text: String) throws {
        guard let range = text.range(of: "://"), let scheme = Scheme(rawValue: String(text[..<range.lowerBound])) else {
            throw ObjectStoreError.invalidLocation(text)
        }
        let rest = text[range.upperBound...]
        let bucket = rest.prefix { $0 != "/" }
        guard bucket.count >= 3, bucket.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ObjectStoreError.invalidLocation(text)
        }
        self.scheme = scheme
        self.bucket = String(bucket)
        self.prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
    }

    public var description: String { "\(scheme)://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }

    /// The key of `name` under the prefix.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }
}

/// Percent-encodes all but RFC 3986's unreserved characters (and `/` when `keepSlash`).
func percentEncode(_ text: String, keepSlash: Bool = false) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        case UInt8(ascii: "/") where keepSlash:
            out.append("/")
        default:
            out += String(format: "%%%02X", byte)
        }
    }
    return out
}

func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// Reads `length` bytes at `offset` of an open file.
func readChunk(_ descriptor: Int32, offset: Int64, length: Int, path: String) throws -> Data {
    var data = Data(count: length)
    var done = 0
    try data.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        while done < length {
            let n = pread(descriptor, base + done, length - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ObjectStoreError.unreadableFile(path: path, reason: n == 0 ? "it shrank while being uploaded" : String(cString: strerror(errno))) }
            done += n
        }
    }
    return data
}

func fileSize(_ path: String) throws -> (descriptor: Int32, size: Int64) {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw ObjectStoreError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
        close(descriptor)
        throw ObjectStoreError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
    }
    return (descriptor, Int64(status.st_size))
}

/// Hashes a part of an upload for both the whole file's SHA-256 and the part's MD5, in 1 MiB
/// slices so that the second hash reads what the first just brought into the CPU cache.
func hashPart(_ bytes: UnsafeRawBufferPointer, into sha256: inout SHA256) -> (md5: Data, crc32: UInt32) {
    var md5 = Insecure.MD5()
    var crc = CZlib.crc32(0, nil, 0)
    var offset = 0
    while offset < bytes.count {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(offset + (1 << 20), bytes.count)])
        sha256.update(bufferPointer: slice)
        md5.update(bufferPointer: slice)
        crc = CZlib.crc32(crc, slice.baseAddress?.assumingMemoryBound(to: UInt8.self), uInt(slice.count))
        offset += slice.count
    }
    return (Data(md5.finalize()), UInt32(truncatingIfNeeded: crc))
}

extension FileMapping {
    /// The error of a file that changed size while it was uploaded.
    func checkUnchangedForUpload(descriptor: Int32) throws {
        do {
            try checkUnchanged(descriptor: descriptor, doing: "upload")
        } catch {
            throw ObjectStoreError.unreadableFile(path: path, reason: "it changed size while being uploaded (it was \(size) bytes); nothing was published")
        }
    }
}

/// Runs `body` for every element with at most `limit` at once, in order of start; rethrows the first error.
public func forEachConcurrently<T: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        var iterator = items.makeIterator()
        for _ in 0..<max(1, limit) {
            guard let item = iterator.next() else { break }
            group.addTask { try await body(item) }
        }
        while try await group.next() != nil {
            if let item = iterator.next() { group.addTask { try await body(item) } }
        }
    }
}

/// Short, credential-free detail of an error body (S3 XML `<Code>`/`<Message>`, GCS JSON `message`).
func errorDetail(_ response: HTTPResponse) -> String {
    let text = response.text
    var parts: [String] = []
    for tag in ["Code", "Message"] {
        if let value = xmlValue(tag, in: text) { parts.append(value) }
    }
    if parts.isEmpty, let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
       let error = object["error"] as? [String: Any], let message = error["message"] as? String {
        parts.append(message)
    }
    let detail = parts.joined(separator: ": ")
    guard response.attempts > 1 else { return detail }
    return (detail.isEmpty ? "" : detail + " ") + "(gave up after \(response.attempts) attempts; the server keeps failing, run again later)"
}

/// The text of the first `<tag>` element (unescaped), enough for S3's flat XML answers.
func xmlValue(_ tag: String, in text: String) -> String? {
    guard let start = text.range(of: "<\(tag)>"), let end = text.range(of: "</\(tag)>", range: start.upperBound..<text.endIndex) else { return nil }
    return xmlUnescape(String(text[start.upperBound..<end.lowerBound]))
}

func xmlValues(_ tag: String, in text: Substring) -> [String] {
    var values: [String] = []
    var rest = text[...]
    while let start = rest.range(of: "<\(tag)>"), let end = rest.range(of: "</\(tag)>", range: start.upperBound..<rest.endIndex) {
        values.append(xmlUnescape(String(rest[start.upperBound..<end.lowerBound])))
        rest = rest[end.upperBound...]
    }
    return values
}

func xmlUnescape(_ text: String) -> String {
    guard text.contains("&") else { return text }
    return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
        .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
        .replacingOccurrences(of: "&amp;", with: "&")
}

/// Bounds the bytes of upload bodies held in memory at once (bodies are read from disk just
/// before they are sent): many parallel parts of many large files would otherwise read whole
/// files into memory while they wait for a transfer thread. `ZENML_UPLOAD_BUFFER` bytes, default 256 MiB.
actor ByteBudget {
    static let shared = ByteBudget(capacity: ProcessInfo.processInfo.environment["ZENML_UPLOAD_BUFFER"].flatMap(Int64.init).map { max($0, 1 << 20) } ?? 256 << 20)

    let capacity: Int64
    private var available: Int64
    private var waiters: [(bytes: Int64, continuation: CheckedContinuation<Void, Never>)] = []

    init(capacity: Int64) {
        self.capacity = capacity
        available = capacity
    }

    private func acquire(_ bytes: Int64) async {
        if waiters.isEmpty && available >= bytes {
            available -= bytes
            return
        }
        await withCheckedContinuation { waiters.append((bytes, $0)) }
    }

    private func release(_ bytes: Int64) {
        available += bytes
        while let first = waiters.first, available >= first.bytes {
            available -= first.bytes
            waiters.removeFirst()
            first.continuation.resume()
        }
    }

    /// Runs `body` holding `bytes` of the budget (at most the whole budget, so one huge part still goes).
    nonisolated func with<T: Sendable>(_ bytes: Int64, _ body: () async throws -> T) async throws -> T {
        let held = min(max(bytes, 1), capacity)
        await acquire(held)
        do {
            let result = try await body()
            await release(held)
            return result
        } catch {
            await release(held)
            throw error
        }
    }
}
