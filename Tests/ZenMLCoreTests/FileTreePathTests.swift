import XCTest
import ZenMLCore

final class FileTreePathTests: XCTestCase {
    func testNormalizeRemovesDotsAndRepeatedSeparators() {
        let cases: [(String, String)] = [
            ("/", "/"), ("/a/b", "/a/b"), ("/a//b", "/a/b"), ("//a", "/a"), ("/a/./b", "/a/b"), ("/a/../b", "/b"),
            ("/a/b/", "/a/b"), ("/a/b/.", "/a/b"), ("/a/b/..", "/a"), ("/..", "/"), ("/.", "/"), ("a/b", "/a/b"), ("", "/"),
            // Names that only look like dots are kept.
            ("/a/.b", "/a/.b"), ("/a/..b", "/a/..b"), ("/a/b..", "/a/b.."), ("/.../x", "/.../x"), ("/.hidden/x", "/.hidden/x"),
            ("/steps/train", "/steps/train"), ("/é/ü", "/é/ü"),
        ]
        for (path, expected) in cases {
            XCTAssertEqual(FileTree.normalize(path), expected, path)
        }
    }

    func testAbsoluteReadsItsBaseOnlyForARelativePath() {
        var reads = 0
        func base() -> String {
            reads += 1
            return "/work/p"
        }
        XCTAssertEqual(FileTree.absolute("/x/./y", relativeTo: base()), "/x/y")
        XCTAssertEqual(reads, 0)
        XCTAssertEqual(FileTree.absolute("steps/../train", relativeTo: base()), "/work/p/train")
        XCTAssertEqual(reads, 1)
    }
}
