import XCTest
import ZenMLCore
@testable import ZenMLExecutor

final class ProcessLauncherTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "launch-\(UUID().uuidString)"
        try FileTree.makeDirectory(directory)
        try Data("request".utf8).write(to: URL(fileURLWithPath: directory + "/stdin"))
    }

    override func tearDownWithError() throws { try FileTree.remove(directory) }

    func configuration(_ script: String, timeout: Double? = nil) -> ProcessConfiguration {
        ProcessConfiguration(executable: "/bin/sh", arguments: ["-c", script], environment: ["PATH": "/usr/bin:/bin", "ONLY": "this"], workingDirectory: directory, standardInput: .file(directory + "/stdin"), logFile: directory + "/log", timeout: timeout)
    }

    func testStreamsEnvironmentAndExitCode() async throws {
        let result = try await ProcessLauncher.run(configuration("cat; echo; pwd; env | sort; echo oops >&2; exit 7"))
        XCTAssertEqual(result.exitCode, 7, "a non-zero exit is a result, not an error")
        let stdout = String(decoding: result.standardOutput, as: UTF8.self)
        XCTAssertTrue(stdout.hasPrefix("request\n\(directory)\n"), stdout)
        XCTAssertTrue(stdout.contains("ONLY=this"))
        XCTAssertFalse(stdout.contains("HOME="), "nothing is inherited")
        XCTAssertEqual(result.errorTail, "oops\n")
        XCTAssertEqual(try String(contentsOfFile: directory + "/log", encoding: .utf8), "oops\n")
        XCTAssertTrue(result.wroteLog)
    }

    /// Bytes given as the standard input reach the process whole, however large (a pipe holds
    /// 64 KiB), also when it never reads them; nothing is left on disk.
    func testStandardInputFromMemory() async throws {
        var large = configuration("wc -c; echo; head -c 5; ls -A")
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251 + 1) })
        large.standardInput = .bytes(bytes)
        try FileTree.remove(directory + "/stdin")
        let result = try await ProcessLauncher.run(large)
        XCTAssertEqual(result.exitCode, 0, result.errorTail)
        let lines = String(decoding: result.standardOutput, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.first.map { $0.trimmingCharacters(in: .whitespaces) }, "300000")
        XCTAssertEqual(try FileTree.childNames(of: directory), [], "no file holds the standard input (and nothing went to stderr)")

        try Data("an earlier attempt's log".utf8).write(to: URL(fileURLWithPath: directory + "/log"))
        var ignored = configuration("exit 0")
        ignored.standardInput = .bytes(bytes)
        let unread = try await ProcessLauncher.run(ignored)
        XCTAssertEqual(unread.exitCode, 0, "a process that never reads its input ends normally")
        XCTAssertFalse(unread.wroteLog)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/log"), "a quiet process leaves no log, not even an earlier one")

        var empty = configuration("wc -c")
        empty.standardInput = .bytes(Data())
        let none = try await ProcessLauncher.run(empty)
        XCTAssertEqual(String(decoding: none.standardOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "0")
    }

    /// The sampled peak memory of a live process is its `VmHWM`, as /proc/PID/status shows it.
    func testHighWaterMarkOfALiveProcess() throws {
        let sampled = try XCTUnwrap(ProcessWatcher.residentHighWaterMark(of: getpid()))
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        let kilobytes = try XCTUnwrap(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int64($0) })
        XCTAssertGreaterThan(sampled, 1 << 20)
        XCTAssertLessThanOrEqual(sampled, kilobytes * 1024, "a high-water mark only grows")
        XCTAssertGreaterThan(sampled, kilobytes * 1024 - (16 << 20), "sampled \(sampled), /proc \(kilobytes) kB")
        XCTAssertNil(ProcessWatcher.residentHighWaterMark(of: 0x3fff_fff0), "no such process")
    }

    func testTimeoutStopsTheWholeProcessGroup() async throws {
        let started = Date()
        let result = try await ProcessLauncher.run(configuration("sleep 100 & echo $! > child; trap '' TERM; sleep 100", timeout: 0.3))
        XCTAssertTrue(result.timedOut)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "SIGKILL follows SIGTERM after the grace period")
        if case .signaled = result.termination {} else { XCTFail("expected a signal, got \(result.termination)") }
        let child = try String(contentsOfFile: directory + "/child", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        usleep(100_000)
        XCTAssertNotEqual(kill(pid_t(child) ?? 0, 0), 0, "the background child is gone too")
    }

    func testCancellationStopsTheProcess() async throws {
        let config = configuration("sleep 100")
        let task = Task { try await ProcessLauncher.run(config) }
        try await Task.sleep(nanoseconds: 200_000_000)
        task.cancel()
        let result = try await task.value
        XCTAssertTrue(result.canceled)
    }

    func testOutputLimitAndLogLimit() async throws {
        var config = configuration("head -c 5000 /dev/zero; head -c 100000 /dev/zero | tr '\\0' 'e' >&2; echo END >&2")
        config.outputLimit = 1000
        config.logLimit = 10000
        let result = try await ProcessLauncher.run(config)
        XCTAssertTrue(result.outputLimitExceeded)
        XCTAssertLessThanOrEqual(result.standardOutput.count, 1000)
        let log = try String(contentsOfFile: directory + "/log", encoding: .utf8)
        XCTAssertLessThan(log.utf8.count, 10000 + 20000, "the log is bounded")
        XCTAssertTrue(log.contains("bytes of stderr over the 10000-byte log limit were dropped"))
        XCTAssertTrue(log.hasSuffix("END\n"), "the tail is kept")
    }

    func testProcessLeavingAChildHoldingItsPipesDoesNotHang() async throws {
        let started = Date()
        let result = try await ProcessLauncher.run(configuration("sleep 100 & echo done"))
        XCTAssertEqual(result.exitCode, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
    }

    func testReportsPeakMemoryAndCPUTimeOfTheStep() async throws {
        // 300 MiB of written (not just reserved) memory, held for a while, then released.
        let big = try await ProcessLauncher.run(configuration(
            "exec python3 -c 'import time; b = b\"x\" * (300 << 20); time.sleep(0.3); sum(range(2000000))'"))
        let bigUsage = try XCTUnwrap(big.usage)
        XCTAssertGreaterThan(bigUsage.peakMemoryBytes, 300 << 20)
        XCTAssertLessThan(bigUsage.peakMemoryBytes, 600 << 20)
        XCTAssertGreaterThan(bigUsage.cpuSeconds, 0.01)
        // A small program is not charged the host's own memory.
        let small = try await ProcessLauncher.run(configuration("sleep 0.3"))
        XCTAssertLessThan(try XCTUnwrap(small.usage).peakMemoryBytes, 20 << 20)
    }

    func testMissingProgramIsALaunchError() async {
        var config = configuration("true")
        config.executable = directory + "/nope"
        do {
            _ = try await ProcessLauncher.run(config)
            XCTFail("started a missing program")
        } catch {
            XCTAssertTrue("\(error)".contains("it does not exist"), "\(error)")
        }
    }
}

final class OutputCheckerTests: XCTestCase {
    func testLinksMustStayInsideTheirOutput() {
        XCTAssertTrue(OutputChecker.staysInside(linkDirectory: "", target: "data/x.csv"))
        XCTAssertTrue(OutputChecker.staysInside(linkDirectory: "a/b", target: "../../c"))
        XCTAssertTrue(OutputChecker.staysInside(linkDirectory: "a", target: "./../a/./x"))
        XCTAssertFalse(OutputChecker.staysInside(linkDirectory: "", target: "../result/x"), "a sibling named like the output is still outside")
        XCTAssertFalse(OutputChecker.staysInside(linkDirectory: "a", target: "../../x"))
        XCTAssertFalse(OutputChecker.staysInside(linkDirectory: "a/b", target: "c/../../../../x"))
    }
}
