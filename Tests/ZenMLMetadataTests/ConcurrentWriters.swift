import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLMetadata

/// Where a child writer process writes, passed in `ZENML_TEST_WRITER` as JSON.
struct WriterJob: Codable {
    var sqlitePath: String?
    var mysqlDatabase: String?
    var writer: String
    var runs: Int
    var steps: Int
}

/// Concurrent writers: threads of this process and child processes (this test binary, running
/// only ``ConcurrentWriterChild/testWriterChildProcess``), each with its own store instance.
enum ConcurrentWriters {
    /// Runs `threads` writers in threads and `processes` in child processes, all at once; fails the
    /// test if any of them fails.
    static func run(job: WriterJob, threads: Int, processes: Int, makeStore: @escaping @Sendable () throws -> any MetadataStore, password: String? = nil) throws {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let group = DispatchGroup()
        let failures = Locked<[String]>([])
        for index in 0..<processes {
            var child = job
            child.writer = "process\(index)"
            let payload = String(decoding: try JSONEncoder().encode(child), as: UTF8.self)
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                var environment = ["ZENML_TEST_WRITER": payload]
                if let password { environment["ZENML_TEST_WRITER_PASSWORD"] = password }
                do {
                    let result = try runProcess([executable, "ZenMLMetadataTests.ConcurrentWriterChild/testWriterChildProcess"], environment: environment)
                    if !result.succeeded || result.stdout.contains("error:") {
                        failures.withLock { $0.append("child \(index) exited \(result.status): \(result.stdout.suffix(2000)) \(result.stderr.suffix(2000))") }
                    }
                } catch {
                    failures.withLock { $0.append("child \(index): \(error)") }
                }
            }
        }
        for index in 0..<threads {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                do {
                    try writeConcurrently(store: try makeStore(), writer: "thread\(index)", runs: job.runs, steps: job.steps)
                } catch {
                    failures.withLock { $0.append("thread \(index): \(error)") }
                }
            }
        }
        group.wait()
        XCTAssertEqual(failures.current, [], "every writer completes")
    }
}

/// The entry point of a child writer process; skipped in a normal test run.
final class ConcurrentWriterChild: XCTestCase {
    func testWriterChildProcess() throws {
        guard let payload = ProcessInfo.processInfo.environment["ZENML_TEST_WRITER"] else {
            throw XCTSkip("runs only as a child process of the concurrent-writer tests")
        }
        let job = try JSONDecoder().decode(WriterJob.self, from: Data(payload.utf8))
        let store: any MetadataStore
        if let path = job.sqlitePath {
            store = try SQLiteMetadataStore(path: path)
        } else if let database = job.mysqlDatabase {
            var configuration = try MariaDBTestServer.get().configuration(database: database)
            configuration.password = ProcessInfo.processInfo.environment["ZENML_TEST_WRITER_PASSWORD"]
            store = try MySQLMetadataStore(configuration: configuration)
        } else {
            XCTFail("a writer job names a SQLite path or a MySQL database")
            return
        }
        try writeConcurrently(store: store, writer: job.writer, runs: job.runs, steps: job.steps)
    }
}
