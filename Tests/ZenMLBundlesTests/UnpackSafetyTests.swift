import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLBundles

/// Each malicious archive is forged with Python's tarfile, then must be refused with nothing
/// written at the destination nor outside it.
final class UnpackSafetyTests: XCTestCase {
    var base = ""

    override func setUpWithError() throws { base = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileTree.remove(base) }

    /// Builds an archive from Python statements that add members to `t` (a `tarfile.TarFile`).
    func forge(_ body: String) throws -> String {
        let path = base + "/evil-\(UUID().uuidString).tar"
        try python("""
            import io, sys, tarfile
            def member(name, kind=tarfile.REGTYPE, data=b'', link=''):
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = link
                info.size = len(data) if kind == tarfile.REGTYPE else 0
                return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
                add = lambda *a, **k: t.addfile(*member(*a, **k))
            \(body.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """, [path])
        return path
    }

    func assertRefused(_ archive: String, because reason: String, limits: UnpackLimits = UnpackLimits(), file: StaticString = #filePath, line: UInt = #line) throws {
        let destination = base + "/out/bundle"
        XCTAssertThrowsError(try BundleUnpacker.unpack(archive, into: destination, limits: limits), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(reason), "expected '\(reason)' in: \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains("nothing was written"), "\(error)", file: file, line: line)
        }
        XCTAssertNil(try FileStatus.of(destination), "nothing at the destination", file: file, line: line)
        XCTAssertEqual(try FileTree.childNames(of: base + "/out"), [], "no staging left behind", file: file, line: line)
        XCTAssertNil(try FileStatus.of(base + "/escaped"), "nothing outside", file: file, line: line)
        XCTAssertNil(try FileStatus.of("/tmp/zenml-escaped-\(getpid())"), file: file, line: line)
    }

    func testAGoodArchiveFromPythonUnpacks() throws {
        let archive = try forge("add('step.yaml', data=b'name: x\\n')\nadd('sub/', kind=tarfile.DIRTYPE)\nadd('sub/link', kind=tarfile.SYMTYPE, link='../step.yaml')")
        try BundleUnpacker.unpack(archive, into: base + "/good")
        XCTAssertEqual(String(decoding: try FileTree.read(base + "/good/sub/link"), as: UTF8.self), "name: x\n")
    }

    func testAbsolutePathIsRefused() throws {
        try assertRefused(try forge("add('ok.txt', data=b'x')\nadd('/tmp/zenml-escaped-\(getpid())', data=b'x')"), because: "is an absolute path")
    }

    func testDotDotIsRefused() throws {
        try assertRefused(try forge("add('ok.txt', data=b'x')\nadd('../../escaped', data=b'x')"), because: "has a '..' component")
        try assertRefused(try forge("add('a/../../escaped', data=b'x')"), because: "has a '..' component")
    }

    func testLinkOutOfTheBundleIsRefused() throws {
        try assertRefused(try forge("add('out', kind=tarfile.SYMTYPE, link='../..')"), because: "points outside the bundle")
        try assertRefused(try forge("add('abs', kind=tarfile.SYMTYPE, link='/etc/passwd')"), because: "points to the absolute path")
    }

    func testWritingThroughALinkIsRefused() throws {
        // The classic: a link to a folder inside, then a file below the link.
        try assertRefused(
            try forge("add('sub/', kind=tarfile.DIRTYPE)\nadd('l', kind=tarfile.SYMTYPE, link='sub')\nadd('l/x', data=b'x')"),
            because: "lies below the symbolic link l")
    }

    func testLinkChainLeavingTheBundleIsRefused() throws {
        // Each link's text looks inside; together they point out: caught on the real tree.
        try assertRefused(
            try forge("add('here', kind=tarfile.SYMTYPE, link='.')\nadd('d/', kind=tarfile.DIRTYPE)\nadd('d/up', kind=tarfile.SYMTYPE, link='../here/..')"),
            because: "points outside the bundle")
    }

    func testDevicesFifosAndHardLinksAreRefused() throws {
        try assertRefused(try forge("add('dev', kind=tarfile.CHRTYPE)"), because: "is a device file")
        try assertRefused(try forge("add('blk', kind=tarfile.BLKTYPE)"), because: "is a device file")
        try assertRefused(try forge("add('pipe', kind=tarfile.FIFOTYPE)"), because: "is a fifo")
        try assertRefused(try forge("add('a', data=b'x')\nadd('b', kind=tarfile.LNKTYPE, link='a')"), because: "is a hard link")
    }

    func testSizeAndEntryBoundsAreEnforced() throws {
        let big = try forge("add('big', data=b'x' * 5000)")
        try assertRefused(big, because: "expands to more than 4096 bytes", limits: UnpackLimits(maxBytes: 4096))
        let many = try forge("for i in range(20): add('f%d' % i, data=b'x')")
        try assertRefused(many, because: "more than 10 entries", limits: UnpackLimits(maxEntries: 10))
    }

    func testDuplicatesAndDamageAreRefused() throws {
        try assertRefused(try forge("add('a', data=b'x')\nadd('a', data=b'y')"), because: "appears twice")
        let good = try forge("add('a', data=b'x' * 2000)")
        var bytes = try FileTree.read(good)
        let truncated = base + "/truncated.tar"
        try FileTree.writeAtomically(bytes.prefix(1536), to: truncated)
        try assertRefused(truncated, because: "truncated")
        bytes[600] ^= 0xff // inside the first header block after pax: corrupt a header byte
        bytes[0] ^= 0xff
        let damaged = base + "/damaged.tar"
        try FileTree.writeAtomically(bytes, to: damaged)
        try assertRefused(damaged, because: "checksum is wrong")
    }
}
