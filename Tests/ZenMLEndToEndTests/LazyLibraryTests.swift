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

    /// With both libraries unloadable (each bind-mounted over with /dev/null, in a private mount
    /// namespace of this command only), opening a bucket store or a MySQL store fails with the
    /// typed error that says what to install. Needs root and unshare(1); skipped otherwise.
    func testMissingLibrariesAreReportedWithWhatToInstall() throws {
        guard getuid() == 0, (try? Sandbox.shell("command -v unshare"))?.isEmpty == false else {
            throw XCTSkip("needs root and unshare(1) to hide the libraries in a private mount namespace")
        }
        let sandbox = try Sandbox()
        let environment = "HOME='\(sandbox.root)' STORAGE_EMULATOR_HOST=http://127.0.0.1:9 ZENML_METADATA_PASSWORD=x"
        let script = """
            set -e
            for name in libcurl.so.4 libmariadb.so.3; do
                for path in $(ldconfig -p | sed -n "s/^[[:space:]]*$name .*=> //p"); do mount --bind /dev/null "$(readlink -f "$path")"; done
            done
            cd '\(sandbox.root)'
            \(environment) '\(Sandbox.binary)' init >/dev/null
            \(environment) '\(Sandbox.binary)' config artifacts set s3://zenml-bucket/a 2>&1 || echo "exit $?"
            \(environment) '\(Sandbox.binary)' config metadata set mysql --host 127.0.0.1 --port 1 --username zenml --database zenml 2>&1 || echo "exit $?"
            """
        try sandbox.write("hide.sh", script)
        let output = try Sandbox.shell("unshare --mount --propagation private sh '\(sandbox.root)/hide.sh' 2>&1")
        XCTAssertTrue(output.contains("the gs:// and s3:// stores need libcurl, which could not be loaded (libcurl.so.4 could not be loaded: "), output)
        XCTAssertTrue(output.contains("apt-get install libcurl4"), output)
        XCTAssertTrue(output.contains("needs the MariaDB client library, which could not be loaded (libmariadb.so.3 could not be loaded: "), output)
        XCTAssertTrue(output.contains("apt-get install libmariadb3"), output)
        XCTAssertEqual(output.components(separatedBy: "exit 3").count - 1, 2, output)
    }
}
