import Foundation
import XCTest
@testable import ZenMLMetadata

/// libmariadb is opened with dlopen when a MySQL store is opened, not linked (see MariaDBLibrary).
final class MariaDBLibraryTests: XCTestCase {
    let location = "mysql://zenml@127.0.0.1:3306/zenml"

    func testAMissingClientLibraryIsATypedErrorThatSaysWhatToInstall() {
        XCTAssertThrowsError(try MariaDBLibrary.load(for: location, candidates: ["libzenml-no-such-mariadb.so.3"])) { error in
            guard case MetadataStoreError.missingClientLibrary(let path, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, location)
            XCTAssertTrue(reason.hasPrefix("libzenml-no-such-mariadb.so.3 could not be loaded: "), reason)
            XCTAssertTrue(reason.contains("cannot open shared object file"), reason)  // dlerror's own words
            let message = "\(error)"
            XCTAssertTrue(message.contains("needs the MariaDB client library"), message)
            XCTAssertTrue(message.contains("apt-get install libmariadb3"), message)
        }
    }

    func testALibraryWithoutTheClientFunctionsIsRefused() {
        XCTAssertThrowsError(try MariaDBLibrary.load(for: location, candidates: ["libz.so.1"])) { error in
            guard case MetadataStoreError.missingClientLibrary(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("has no function mysql_server_init"), reason)
        }
    }

    func testTheNextCandidateIsTriedAndTheSystemLibraryLoads() throws {
        try MariaDBLibrary.load(for: location, candidates: ["libzenml-no-such-mariadb.so.3", "libmariadb.so.3"])
        let location = self.location
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            do { try MariaDBLibrary.load(for: location) } catch { XCTFail("\(error)") }
        }
    }
}
