import Foundation
import ZenMLObjectStore

/// A registry under a prefix of a gs:// or s3:// bucket (the clients the remote artifact store uses,
/// with the same credentials).
///
/// Object stores have no `link(2)`. GCS (`ifGenerationMatch=0`) and S3 (`If-None-Match: *`) can
/// create an object only if its key is free, and ``write(_:to:exclusive:)`` asks for that, but
/// the answer cannot be trusted to mean "we were first": the GCS emulators accept and ignore the
/// precondition, OpenStack Swift's s3api refuses conditional PUTs (501; this then falls back to a
/// plain PUT after a look-up) and other S3-compatible servers may do either. So
/// ``exclusiveWritesAreAtomic`` is `false` and ``BundleRegistry`` settles races by reading back
/// (see the comment on its `publish`).
public struct BucketRegistryStorage: RegistryStorage {
    public let objects: any ObjectStore
    public let root: ObjectStoreLocation
    public let readBackDelay: Duration

    public var location: String { root.description }
    public var exclusiveWritesAreAtomic: Bool { false }

    /// - Parameter readBackDelay: how long a publisher waits before reading its record back; it
    ///   must exceed the time between another publisher's existence check and its write (one
    ///   small request), see ``BundleRegistry``. `ZENML_REGISTRY_SETTLE_MS` overrides the default 1.5 s.
    public init(objects: any ObjectStore, root: ObjectStoreLocation, readBackDelay: Duration? = nil) {
        self.objects = objects
        self.root = root
        self.readBackDelay = readBackDelay
            ?? ProcessInfo.processInfo.environment["ZENML_REGISTRY_SETTLE_MS"].flatMap(Int.init).map { .milliseconds(max($0, 0)) }
            ?? .milliseconds(1500)
    }

    public func read(_ key: String) async throws -> Data? { try await objects.data(root.key(key)) }

    public func exists(_ key: String) async throws -> Bool { try await objects.head(root.key(key)) != nil }

    public func download(_ key: String, to path: String) async throws -> Bool {
        try await objects.get(root.key(key), to: path) != nil
    }

    public func upload(_ path: String, to key: String) async throws {
        try await objects.put(root.key(key), file: path)
    }

    public func write(_ data: Data, to key: String, exclusive: Bool) async throws -> Bool {
        guard exclusive else {
            try await objects.put(root.key(key), data: data)
            return true
        }
        if let creating = objects as? any CreateOnlyObjectStore {
            switch try await creating.create(root.key(key), data: data) {
            case .created: return true
            case .exists: return false
            case .unsupported: break
            }
        }
        // No conditional writes here: a look-up and a plain PUT. Racing publishers can both get
        // past the look-up; the registry's read-back decides between them.
        if try await objects.head(root.key(key)) != nil { return false }
        try await objects.put(root.key(key), data: data)
        return true
    }

    public func children(of prefix: String) async throws -> [String] {
        let listed = root.key(prefix.isEmpty ? "" : prefix + "/")
        var names = Set<String>()
        for object in try await objects.list(prefix: listed) {
            guard object.key.hasPrefix(listed) else { continue }
            if let first = object.key.dropFirst(listed.count).split(separator: "/", omittingEmptySubsequences: true).first {
                names.insert(String(first))
            }
        }
        return names.sorted()
    }
}
