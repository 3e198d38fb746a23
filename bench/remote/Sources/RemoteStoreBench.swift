// Publishes a folder to a bucket through RemoteArtifactStore and fetches it back into an empty
// cache, timing both (hashing and verification included, as in a run). Used by bench/remote/run.sh.
//
//   remote-store-bench publish|fetch URL DIR --endpoint E --cache C [--digest D]
//   remote-store-bench hash|put URL DIR --endpoint E --cache C   # the two halves of a publish, timed apart
import Foundation
import ZenMLArtifacts
import ZenMLCore
import ZenMLObjectStore

@main
struct RemoteStoreBench {
    static func main() async {
        do {
            try await run(Array(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ arguments: [String]) async throws {
        func option(_ name: String) -> String? {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
            return arguments[index + 1]
        }
        guard arguments.count >= 3, let cacheRoot = option("--cache") else {
            throw ObjectStoreError.invalidLocation("usage: remote-store-bench publish|fetch URL DIR --cache C [--endpoint E] [--digest D]")
        }
        let location = try ObjectStoreLocation(parsing: arguments[1])
        let environment = ProcessInfo.processInfo.environment
        let objects: any ObjectStore
        switch location.scheme {
        case .s3:
            objects = S3ObjectStore(bucket: location.bucket, endpoint: option("--endpoint"), credentials: try S3Credentials.fromEnvironment(environment))
        case .gs:
            var env = environment
            if let endpoint = option("--endpoint") { env["STORAGE_EMULATOR_HOST"] = endpoint }
            objects = try GCSObjectStore.fromEnvironment(bucket: location.bucket, environment: env)
        }
        let cache = try ArtifactCache(root: cacheRoot + "/artifacts", stagingRoot: cacheRoot + "/tmp", maxSize: 1 << 40)
        let store = RemoteArtifactStore(objects: objects, location: location, cache: cache)
        let started = Date()
        switch arguments[0] {
        case "publish":
            // publish consumes its folder: hand it a hard-linked copy.
            let staged = try cache.makeStagingDirectory(label: "bench")
            try FileTree.remove(staged)
            let copy = Process()
            copy.executableURL = URL(fileURLWithPath: "/bin/cp")
            copy.arguments = ["-al", arguments[2], staged]
            try copy.run()
            copy.waitUntilExit()
            let copied = Date()
            let stored = try await store.publish(stagedDirectory: staged)
            print(#"{"operation":"publish","digest":"\#(stored.digest.hex)","bytes":\#(stored.size),"files":\#(stored.fileCount),"seconds":\#(Date().timeIntervalSince(copied))}"#)
        case "fetch":
            guard let hex = option("--digest"), let digest = Digest(hex: hex) else { throw ObjectStoreError.invalidLocation("fetch needs --digest HEX") }
            guard let path = try await store.localPath(of: digest) else { throw ArtifactStoreError.missing(digest) }
            let seconds = Date().timeIntervalSince(started)
            let tree = try TreeDigest.compute(root: path)
            print(#"{"operation":"fetch","digest":"\#(hex)","bytes":\#(tree.totalSize),"files":\#(tree.fileCount),"seconds":\#(seconds)}"#)
        case "hash":
            // Only the tree digest a publish computes before it can name its keys.
            let tree = try TreeDigest.compute(root: arguments[2])
            print(#"{"operation":"hash","digest":"\#(tree.digest.hex)","bytes":\#(tree.totalSize),"files":\#(tree.fileCount),"seconds":\#(Date().timeIntervalSince(started))}"#)
        case "put":
            // Only the uploads of a publish (every file, verified), under a fresh prefix.
            let tree = try TreeDigest.compute(root: arguments[2])
            let hashed = Date()
            let prefix = location.key("put-\(UUID().uuidString.prefix(8))")
            try await forEachConcurrently(tree.entries.filter { $0.kind == .file }, limit: store.concurrency) { entry in
                try await objects.put(prefix + "/" + entry.path, file: arguments[2] + "/" + entry.path)
            }
            print(#"{"operation":"put","bytes":\#(tree.totalSize),"files":\#(tree.fileCount),"seconds":\#(Date().timeIntervalSince(hashed))}"#)
        default:
            throw ObjectStoreError.invalidLocation("unknown operation \(arguments[0]): publish or fetch")
        }
    }
}
