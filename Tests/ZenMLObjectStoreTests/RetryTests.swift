import Foundation
import XCTest
import ZenMLArtifacts
import ZenMLCore
@testable import ZenMLObjectStore

/// Retries, resumption and the transfer bound, against moto and the GCS emulator behind a
/// ``FaultProxy`` that fails requests on cue and counts them.
final class RetryTests: XCTestCase {
    /// A fresh moto bucket reached through a new proxy.
    func moto(settings: TransferSettings = TransferSettings(multipartThreshold: 6 << 20, partSize: 5 << 20),
              client: HTTPClient = .shared) async throws -> (S3ObjectStore, FaultProxy) {
        let proxy = try FaultProxy(targetPort: try Servers.start("s3-moto.sh"))
        let store = S3ObjectStore(bucket: Servers.uniqueBucket("retry"), endpoint: proxy.endpoint,
                                  credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing"), settings: settings, client: client)
        try await store.createBucket()
        return (store, proxy)
    }

    /// A fresh GCS emulator bucket reached through a new proxy.
    func gcs(settings: TransferSettings = TransferSettings(multipartThreshold: 1 << 20, partSize: 512 << 10),
             client: HTTPClient = .shared) async throws -> (GCSObjectStore, FaultProxy) {
        let proxy = try FaultProxy(targetPort: try Servers.gcsPort.get())
        let store = GCSObjectStore(bucket: Servers.uniqueBucket("retry"), endpoint: proxy.endpoint, credentials: .none, settings: settings, client: client)
        try await store.createBucket()
        return (store, proxy)
    }

    func file(_ directory: String, _ name: String, _ size: Int) throws -> (path: String, data: Data) {
        let data = Servers.randomData(size)
        try data.write(to: URL(fileURLWithPath: "\(directory)/\(name)"))
        return ("\(directory)/\(name)", data)
    }

    /// Downloads `key` straight from the server behind the proxy's rules and compares it.
    func assertStored(_ store: some ObjectStore, _ key: String, _ data: Data, in directory: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let path = "\(directory)/check-\(UUID().uuidString)"
        let info = try await store.get(key, to: path)
        XCTAssertEqual(info?.size, Int64(data.count), key, file: file, line: line)
        XCTAssertTrue(try Data(contentsOf: URL(fileURLWithPath: path)) == data, "\(key) has the bytes sent", file: file, line: line)
    }

    // MARK: Retries with backoff

    func testS3RetriesBusyAnswersAndDroppedConnections() async throws {
        let (store, proxy) = try await moto()
        defer { proxy.stop() }
        let directory = try Servers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // A single PUT answered 503, then 429, then stored.
        try proxy.set([.init(method: "PUT", contains: "/small", action: .status, status: 503, times: 1),
                       .init(method: "PUT", contains: "/small", action: .status, status: 429, times: 1)])
        let small = try file(directory, "small", 1000)
        let put = try await store.put("small", file: small.path)
        XCTAssertEqual(put.size, 1000)
        XCTAssertEqual(try proxy.hits(0), 3, "two refusals, then the upload")

        // A multipart upload: part 2 refused twice, part 3's connection dropped before it arrived.
        try proxy.set([.init(method: "PUT", contains: "partNumber=2&", action: .status, status: 503, times: 2),
                       .init(method: "PUT", contains: "partNumber=3&", action: .drop, times: 1)])
        let large = try file(directory, "large", (11 << 20) + 12345)
        let staged = try await store.stage("large", file: large.path)
        XCTAssertEqual(staged.sha256, ZenMLCore.Digest.of(large.data))
        let committed = try await staged.commit()
        XCTAssertEqual(committed.size, Int64(large.data.count))
        XCTAssertEqual(try proxy.hits(0), 3)
        XCTAssertEqual(try proxy.hits(1), 2)

        // Downloads whose connection drops half-way through the body, whole and in ranges.
        try proxy.set([.init(method: "GET", contains: "/small", action: .dropBody, times: 2),
                       .init(method: "GET", contains: "/large", header: "bytes=5242880-", action: .dropBody, times: 1)])
        try await assertStored(store, "small", small.data, in: directory)
        XCTAssertEqual(try proxy.hits(0), 3)
        let ranged = try await store.get("large", to: "\(directory)/large.ranged", expectedSize: Int64(large.data.count))
        XCTAssertNotNil(ranged)
        XCTAssertTrue(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/large.ranged")) == large.data)
        XCTAssertEqual(try proxy.hits(1), 2, "the dropped range was fetched again")
    }

    /// A server that keeps failing: the error comes after the retry budget (5 attempts) and says so.
    func testPersistentFailuresEndWithAClearErrorAfterTheRetryBudget() async throws {
        let (store, proxy) = try await moto()
        defer { proxy.stop() }
        try proxy.set([.init(method: "PUT", contains: "/doomed", action: .status, status: 503, times: 100),
                       .init(method: "GET", contains: "/unreachable", action: .drop, times: 100)])
        let started = Date()
        do {
            _ = try await store.put("doomed", data: Data("x".utf8))
            XCTFail("a server that always answers 503 must fail the upload")
        } catch {
            XCTAssertTrue("\(error)".contains("cannot upload s3://\(store.bucket)/doomed: HTTP 503"), "\(error)")
            XCTAssertTrue("\(error)".contains("gave up after 5 attempts"), "\(error)")
        }
        let log = try proxy.stats().log
        XCTAssertEqual(try proxy.hits(0), 5, "\(log)")
        // 4 waits of 0.25 s doubling, each ±50%: at least 1.875 s.
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 1.8, "retries back off")
        do {
            _ = try await store.data("unreachable")
            XCTFail("a connection that always drops must fail the download")
        } catch {
            XCTAssertTrue("\(error)".contains("cannot reach"), "\(error)")
            XCTAssertTrue("\(error)".contains("gave up after 5 attempts"), "\(error)")
        }
        // libcurl itself sends a request once more when the reused connection it went out on
        // closes before any answer: 5 attempts of ours are 5 to 10 requests.
        let drops = try proxy.hits(1)
        XCTAssertTrue((5...10).contains(drops), "\(drops) requests")
    }

    func testGCSRetriesBusyAnswersAndDroppedConnections() async throws {
        let (store, proxy) = try await gcs()
        defer { proxy.stop() }
        let directory = try Servers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        try proxy.set([.init(method: "POST", contains: "uploadType=multipart", action: .status, status: 503, times: 1),
                       .init(method: "POST", contains: "uploadType=multipart", action: .drop, times: 1)])
        let small = try file(directory, "small", 1000)
        _ = try await store.put("small", file: small.path)
        XCTAssertEqual(try proxy.hits(0), 3)

        // Resumable: the session start refused once, a chunk refused, a chunk's connection dropped
        // before it arrived.
        try proxy.set([.init(method: "POST", contains: "uploadType=resumable", action: .status, status: 429, times: 1),
                       .init(method: "PUT", contains: "upload_id", header: "Content-Range: bytes 0-", action: .status, status: 503, times: 1),
                       .init(method: "PUT", contains: "upload_id", header: "Content-Range: bytes 524288-", action: .drop, times: 1)])
        let large = try file(directory, "large", (3 << 19) + 12345)
        let info = try await store.put("large", file: large.path)
        XCTAssertEqual(info.size, Int64(large.data.count))
        XCTAssertEqual(try proxy.hits(0), 2)
        XCTAssertEqual(try proxy.hits(1), 2)
        XCTAssertEqual(try proxy.hits(2), 2)

        try proxy.set([.init(method: "GET", contains: "/o/small", action: .dropBody, times: 2)])
        try await assertStored(store, "small", small.data, in: directory)
        XCTAssertEqual(try proxy.hits(0), 3)
    }

    // MARK: GCS resumable uploads resume where the server says

    /// The server keeps only part of a chunk (a shorter `Range` in its 308), or part of it and then
    /// the connection drops (only a status query tells how much arrived): the upload goes on from
    /// there and the object has exactly the file's bytes.
    func testGCSResumesFromTheOffsetTheServerKept() async throws {
        let (store, proxy) = try await gcs()
        defer { proxy.stop() }
        let directory = try Servers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let size = (3 << 19) + 12345  // chunks of 512 KiB at 0, 512 Ki and 1 Mi, and the last one
        let large = try file(directory, "large", size)
        let chunk = "upload_id"
        try proxy.set([
            .init(method: "PUT", contains: chunk, header: "Content-Range: bytes 0-", action: .keepPart, keep: 100_000, times: 1),
            .init(method: "PUT", contains: chunk, header: "Content-Range: bytes 624288-", action: .keepPartAndDrop, keep: 300_000, times: 1),
            .init(method: "PUT", contains: chunk, header: "Content-Range: bytes */*", action: .status, status: 503, times: 1),
        ])
        let staged = try await store.stage("resumed", file: large.path)
        XCTAssertEqual(staged.sha256, ZenMLCore.Digest.of(large.data), "every byte hashed once, in order")
        let seen = try await store.head("resumed")
        XCTAssertNil(seen, "invisible until committed")
        _ = try await staged.commit()
        try await assertStored(store, "resumed", large.data, in: directory)
        let log = try proxy.stats().log
        let ranges = log.map { $0.components(separatedBy: " ").dropFirst(2).prefix(2).joined(separator: " ") }
        XCTAssertEqual(try proxy.hits(0), 1)
        // libcurl may send the dropped chunk once more by itself (its connection was reused and
        // closed): the server refuses the copy, and a status query sorts it out as well.
        XCTAssertTrue((1...2).contains(try proxy.hits(1)), "the second chunk started at byte 100000, where the server said it stopped: \(log)")
        XCTAssertTrue(ranges.contains("bytes 924288-1448575/*"), "after the drop, the next chunk starts where the server has the bytes up to: \(log)")
        XCTAssertEqual(try proxy.hits(2), 2, "after the drop, the status query (refused once, then asked again): \(log)")

        // The last chunk: kept in part, then sent whole but its answer lost on the way back.
        try proxy.set([
            .init(method: "PUT", contains: chunk, header: "/\(size)\n", action: .keepPart, keep: 5000, times: 1),
            .init(method: "PUT", contains: chunk, header: "/\(size)\n", action: .dropBody, times: 1),
        ])
        _ = try await store.put("finished", file: large.path)
        try await assertStored(store, "finished", large.data, in: directory)
        XCTAssertEqual(try proxy.hits(0), 3, "the last chunk, its rest, then the status query")
    }

    // MARK: The bound on transfers in flight

    func testTransfersInFlightStayWithinTheBound() async throws {
        XCTAssertEqual(HTTPClient.transfers([:]), 8)
        XCTAssertEqual(HTTPClient.transfers(["ZENML_TRANSFERS": "3"]), 3)
        XCTAssertEqual(HTTPClient.transfers(["ZENML_TRANSFERS": "500"]), 64)
        XCTAssertEqual(HTTPClient.transfers(["ZENML_TRANSFERS": "0"]), 1)
        XCTAssertEqual(HTTPClient.transfers(["ZENML_TRANSFERS": "many"]), 8)

        // An HTTP client of 3 transfers under an artifact store that would run 16 at once.
        let client = HTTPClient(concurrency: 3)
        let (store, proxy) = try await moto(client: client)
        defer { proxy.stop() }
        let root = try Servers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let location = try ObjectStoreLocation(parsing: store.bucketURL + "/bound")
        let cache = try ArtifactCache(root: root + "/cache", stagingRoot: root + "/tmp")
        func publish(_ artifacts: RemoteArtifactStore, files: Int) async throws {
            let staged = try artifacts.makeStagingDirectory(label: "out")
            for index in 0..<files { try Data("file \(index) \(UUID())\n".utf8).write(to: URL(fileURLWithPath: "\(staged)/f\(index)")) }
            _ = try await artifacts.publish(stagedDirectory: staged)
        }
        // Each request is held 50 ms, so that parallel requests overlap at the proxy.
        try proxy.set([], delay: 0.05)
        try await publish(RemoteArtifactStore(objects: store, location: location, cache: cache, concurrency: 16), files: 40)
        var stats = try proxy.stats()
        XCTAssertEqual(stats.max_in_flight, 3, "the client's bound, reached and not passed (\(stats.requests) requests)")

        // A multipart upload's parts and a ranged download share the same bound.
        let large = try file(root, "large", 21 << 20)
        try proxy.set([], delay: 0.05)
        _ = try await store.put("large", file: large.path)
        _ = try await store.get("large", to: root + "/large.out", expectedSize: Int64(large.data.count))
        stats = try proxy.stats()
        XCTAssertEqual(stats.max_in_flight, 3, "\(stats.requests) requests")

        // The artifact store's own bound, under a client that allows more.
        let wide = S3ObjectStore(bucket: store.bucket, endpoint: proxy.endpoint, credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing"),
                                 settings: store.settings, client: HTTPClient(concurrency: 8))
        try proxy.set([], delay: 0.05)
        try await publish(RemoteArtifactStore(objects: wide, location: location, cache: cache, concurrency: 2), files: 20)
        stats = try proxy.stats()
        XCTAssertEqual(stats.max_in_flight, 2, "\(stats.requests) requests")
    }
}
