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

    /// The digest of a file's contents, read in 1 MiB chunks so that files larger than memory hash.
    public static func ofFile(atPath path: String) throws -> Digest {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: path, operation: "open", errno: errno) }
        defer { close(descriptor) }
        var hasher = SHA256()
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
