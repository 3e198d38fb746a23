import Foundation
import ZenMLObjectStore

/// The object storage servers of `scripts/services/`, started on 127.0.0.1 for the tests (and left
/// running for the next test; each test uses its own bucket).
enum Servers {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    struct Unavailable: Error, CustomStringConvertible { var description: String }

    /// Runs `scripts/services/<script> start` (or another command) and returns the port it prints.
    static func start(_ script: String, _ command: String = "start") throws -> Int {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let log = "/tmp/zenml-test-\(script).log"
        process.arguments = ["-c", "'\(repository)/scripts/services/\(script)' \(command) 2>\(log)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        // Reaped here rather than with waitUntilExit, which was seen to wait forever on the exited
        // shell of a script that leaves a server running in the background.
        var status: Int32 = 0
        var reaped = waitpid(process.processIdentifier, &status, 0)
        while reaped < 0 && errno == EINTR { reaped = waitpid(process.processIdentifier, &status, 0) }
        if reaped != process.processIdentifier { while process.isRunning { usleep(1_000) } }  // Foundation reaped it first
        let exitStatus = reaped == process.processIdentifier ? (status >> 8) & 0xff : process.terminationStatus
        guard exitStatus == 0, let port = Int(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            // A missing server is a broken test setup, not a reason to pass quietly.
            throw Unavailable(description: "could not start \(script): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return port
    }

    static func uniqueBucket(_ label: String) -> String { "zenml-\(label)-\(UUID().uuidString.prefix(8).lowercased())" }

    /// The GCS emulator's port, emptied once per test process: it slows down with every object it
    /// holds (see `scripts/services/gcs-emulator.sh`).
    static let gcsPort = Result { try start("gcs-emulator.sh", "fresh") }

    /// A fresh bucket on the GCS emulator.
    static func gcs(settings: TransferSettings = TransferSettings()) async throws -> GCSObjectStore {
        let port = try gcsPort.get()
        let store = GCSObjectStore(bucket: uniqueBucket("gcs"), endpoint: "http://127.0.0.1:\(port)", credentials: .none, settings: settings)
        try await store.createBucket()
        return store
    }

    /// A fresh bucket on moto (which does not check signatures).
    static func moto(settings: TransferSettings = TransferSettings()) async throws -> S3ObjectStore {
        let port = try start("s3-moto.sh")
        let store = S3ObjectStore(bucket: uniqueBucket("moto"), endpoint: "http://127.0.0.1:\(port)",
                                  credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing"), settings: settings)
        try await store.createBucket()
        return store
    }

    /// A fresh bucket on Swift's s3api (which verifies SigV4).
    static func swift(settings: TransferSettings = TransferSettings(), secret: String = "testing") async throws -> S3ObjectStore {
        let port = try start("swift-s3.sh")
        let store = S3ObjectStore(bucket: uniqueBucket("swift"), endpoint: "http://127.0.0.1:\(port)",
                                  credentials: S3Credentials(accessKeyID: "test:tester", secretAccessKey: secret), settings: settings)
        if secret == "testing" { try await store.createBucket() }
        return store
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "zenml-objstore-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func randomData(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        var data = Data(count: count)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
            for index in (words.count * 8)..<count { raw[index] = UInt8.random(in: 0...255) }
        }
        return data
    }
}
