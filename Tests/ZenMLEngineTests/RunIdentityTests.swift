import XCTest
@testable import ZenMLEngine

/// Run ids sort by when the run started, in UTC, and two runs started in the same second differ.
final class RunIdentityTests: XCTestCase {
    func testARunIDIsItsUTCStartAndARandomSuffix() throws {
        // 2026-03-04 05:06:07 UTC, with a fraction that must not round the second up.
        let date = Date(timeIntervalSince1970: 1_772_600_767.9)
        let id = PipelineRunner.makeRunID(at: date)
        XCTAssertTrue(id.hasPrefix("20260304-050607-"), id)
        let suffix = id.dropFirst("20260304-050607-".count)
        XCTAssertEqual(suffix.count, 6, id)
        XCTAssertTrue(suffix.allSatisfy(\.isHexDigit), id)
        let ids = Set((0..<20).map { _ in PipelineRunner.makeRunID(at: date) })
        XCTAssertGreaterThan(ids.count, 15, "the suffix tells apart runs of the same second")
        XCTAssertEqual(PipelineRunner.makeRunID(at: Date(timeIntervalSince1970: 0)).prefix(16), "19700101-000000-")
    }
}
