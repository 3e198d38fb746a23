import Foundation
import XCTest

/// libcurl (bucket stores) and libmariadb (MySQL metadata store) are opened at first use: the
/// binary does not need them to start, and a run on a local store never loads them.
final class LazyLibraryTests: XCTestCase {
    static let lazyLibraries = ["libcurl", "libmariadb"]

    /// The shared libraries the binary lists as needed (its ELF DT_NEEDED entries).
    static func neededLibraries(of binary: String) throws -> [String] {
        let output = try Sandbox.shell("readelf -d '\(binary)'")
        // "0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]"
        return output.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line in
            guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]"), open < close else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    func testTheBinaryDoesNotNeedLibcurlOrLibmariadbToStart() throws {
        let needed = try Self.neededLibraries(of: Sandbox.binary)
        XCTAssertTrue(needed.contains("libc.so.6"), "readelf listed no libc.so.6, so the list cannot be trusted: \(needed)")
        for library in Self.lazyLibraries {
            XCTAssertFalse(needed.contains { $0.hasPrefix(library) }, "\(Sandbox.binary) needs \(library) at start: \(needed)")
        }
    }

    /// A whole run on the local stores, watched by the dynamic loader (LD_DEBUG=files names every
    /// library it opens, dlopen included): neither library is ever loaded.
    func testARunOnLocalStoresNeverLoadsThem() throws {
        let sandbox = try Sandbox()
        try sandbox.shBundle("hello", outputs: "{greeting: Text}", script: #"""
            O=$(out greeting); echo hello > "$O/greeting.txt"; echo '{"status":"ok"}'
            """#)
        try sandbox.write("pipeline.yaml", "name: hello\nsteps:\n  hello:\n    uses: ./bundles/hello\n")
        let trace = sandbox.root + "/ld-debug"
        let (result, summary) = try sandbox.runPipeline(environment: ["LD_DEBUG": "files", "LD_DEBUG_OUTPUT": trace])
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(Sandbox.states(summary), ["hello": "done"], result.output)
        // One file per process (LD_DEBUG_OUTPUT.PID): zenml-run's, and a step's if its environment kept the variable.
        let files = try FileManager.default.contentsOfDirectory(atPath: sandbox.root).filter { $0.hasPrefix("ld-debug.") }
        let text = try files.map { try String(contentsOfFile: sandbox.root + "/" + $0, encoding: .utf8) }.joined()
        XCTAssertTrue(text.contains("file=libc.so.6"), "the loader trace names no libc.so.6, so it cannot be trusted: \(files)")
        for library in Self.lazyLibraries {
            let lines = text.split(separator: "\n").filter { $0.contains("file=\(library)") }
            XCTAssertTrue(lines.isEmpty, "a local run loaded \(library):\n\(lines.prefix(5).joined(separator: "\n"))")
        }
    }
}
