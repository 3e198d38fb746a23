import Foundation
import XCTest
@testable import ZenMLObjectStore

/// libcurl is opened with dlopen at the first request, not linked (see HTTPClient).
final class LibcurlLoadingTests: XCTestCase {
    func testAMissingLibcurlIsATypedErrorThatSaysWhatToInstall() {
        XCTAssertThrowsError(try HTTPClient.loadLibcurl(candidates: ["libzenml-no-such-curl.so.4", "libzenml-no-such-curl.so"])) { error in
            guard case ObjectStoreError.missingLibcurl(let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.hasPrefix("libzenml-no-such-curl.so.4 could not be loaded: "), reason)
            XCTAssertTrue(reason.contains("cannot open shared object file"), reason)  // dlerror's own words
            let message = "\(error)"
            XCTAssertTrue(message.contains("need libcurl"), message)
            XCTAssertTrue(message.contains("apt-get install libcurl4"), message)
        }
    }

    func testALibraryWithoutCurlsFunctionsIsRefused() {
        XCTAssertThrowsError(try HTTPClient.loadLibcurl(candidates: ["libz.so.1"])) { error in
            guard case ObjectStoreError.missingLibcurl(let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("has no function curl_global_init"), reason)
        }
    }

    func testTheNextCandidateIsTriedWhenTheFirstIsMissing() throws {
        try HTTPClient.loadLibcurl(candidates: ["libzenml-no-such-curl.so.4", "libcurl.so.4"])
    }

    /// The process-wide load, from many threads at once (pthread_once), then a transfer through it.
    func testTheSystemLibcurlLoadsOnceFromManyThreadsAndTransfers() async throws {
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            do { try HTTPClient.loadLibcurl() } catch { XCTFail("\(error)") }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zenml-curl-\(UUID().uuidString.prefix(8))").path
        try Data("through libcurl".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let response = try await HTTPClient(concurrency: 2).send(HTTPRequest(method: "GET", url: "file://" + path))
        XCTAssertEqual(response.text, "through libcurl")
    }
}
