import CZenMLSystem
import Foundation
import ZenMLCore

/// A process to start: a value that can be built, logged and checked before anything runs.
public struct ProcessConfiguration: Sendable, Codable {
    /// Absolute path of the program.
    public var executable: String
    /// Arguments after the program name.
    public var arguments: [String]
    /// The complete environment (nothing is inherited).
    public var environment: [String: String]
    public var workingDirectory: String
    /// What the process reads on its standard input.
    public var standardInput: StandardInput
    /// Where standard error is written (bounded by `logLimit`). The file is made when the first
    /// byte arrives: a process that writes nothing to standard error leaves none.
    public var logFile: String
    /// Bytes of standard output kept; a step that prints more fails.
    public var outputLimit: Int = 1 << 20
    /// Bytes of standard error written to the log file before it is cut to its tail.
    public var logLimit: Int = 8 << 20
    /// Seconds before the process group is stopped; `nil` for no limit.
    public var timeout: Double?
    /// Seconds between SIGTERM and SIGKILL when stopping.
    public var gracePeriod: Double = 2

    public init(executable: String, arguments: [String], environment: [String: String], workingDirectory: String, standardInput: StandardInput, logFile: String, timeout: Double? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.standardInput = standardInput
        self.logFile = logFile
        self.timeout = timeout
    }
}

/// What a process reads on its standard input.
public enum StandardInput: Sendable, Codable, Equatable {
    /// The content of a file.
    case file(String)
    /// These bytes, from an anonymous in-memory file: no file is created on disk, which costs an
    /// inode and its deletion per step (on ext4 without a journal, half a millisecond each when
    /// many files were deleted recently).
    case bytes(Data)
}

/// How a process ended. A non-zero exit is a normal result, not an error.
public struct ProcessResult: Sendable {
    public enum Termination: Sendable, Hashable {
        case exited(Int32)
        case signaled(Int32)
    }

    public var termination: Termination
    public var standardOutput: Data
    /// Whether standard output exceeded the limit (and was cut).
    public var outputLimitExceeded: Bool
    /// The last lines of standard error.
    public var errorTail: String
    public var timedOut: Bool
    public var canceled: Bool
    public var duration: TimeInterval
    /// What the process and the children it waited for used, from `wait4`; `nil` if it was not reaped normally.
    public var usage: ResourceUsage?
    /// Whether the process wrote to standard error, and so the log file exists.
    public var wroteLog = false

    public var exitCode: Int32? {
        if case .exited(let code) = termination { return code }
        return nil
    }
}

/// The peak memory and CPU time of a finished process (with the descendants it waited for).
public struct ResourceUsage: Sendable, Hashable, Codable {
    /// The largest resident set size, in bytes.
    public var peakMemoryBytes: Int64
    /// User plus system CPU time, in seconds.
    public var cpuSeconds: Double

    public init(peakMemoryBytes: Int64, cpuSeconds: Double) {
        self.peakMemoryBytes = peakMemoryBytes
        self.cpuSeconds = cpuSeconds
    }

    /// Linux carries the high-water mark of the memory a process had before `exec` over into
    /// `ru_maxrss`, and a spawned step's "before" is the host (vfork shares its memory). So
    /// `ru_maxrss` is exact only above the host's own peak; below it, the step's peak comes from
    /// `VmHWM` sampled while it ran (which misses only a spike in its last sampling interval).
    init(_ usage: rusage, sampledPeakMemory: Int64) {
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
        var ownUsage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &ownUsage)
        // Linux reports ru_maxrss in kilobytes.
        let reported = Int64(usage.ru_maxrss) * 1024
        let hostPeak = Int64(ownUsage.ru_maxrss) * 1024
        self.init(
            peakMemoryBytes: reported > hostPeak ? reported : sampledPeakMemory,
            cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }
}

/// Why a process could not be started.
public enum LaunchError: Error, CustomStringConvertible, Sendable {
    case cannotStart(executable: String, errno: Int32)
    case io(String)

    public var description: String {
        switch self {
        case .cannotStart(let executable, let code):
            let hint: String
            switch code {
            case ENOENT: hint = "it does not exist"
            case EACCES: hint = "it is not executable (chmod +x it)"
            case ENOEXEC: hint = "it is not a program; add a #! line such as #!/bin/sh"
            default: hint = String(cString: strerror(code))
            }
            return "cannot start '\(executable)': \(hint)"
        case .io(let message):
            return message
        }
    }
}

/// Starts processes in their own process group and watches them on a dedicated thread, so a
/// step that hangs, floods its output or outlives a cancellation is stopped with its children.
public enum ProcessLauncher {
    /// Runs a process to completion. Cancelling the task stops the process group (SIGTERM, then SIGKILL).
    public static func run(_ configuration: ProcessConfiguration) async throws -> ProcessResult {
        let watcher = try ProcessWatcher(configuration)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, Error>) in
                let thread = Thread {
                    continuation.resume(with: Result { try watcher.watch() })
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
        } onCancel: {
            watcher.cancel()
        }
    }
}

final class ProcessWatcher: @unchecked Sendable {
    private let configuration: ProcessConfiguration
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let cancelFlag = NSLock()
    private var canceled = false

    init(_ configuration: ProcessConfiguration) throws {
        self.configuration = configuration
        var fds: [Int32] = [0, 0]
        guard czenml_pipe(&fds, O_CLOEXEC | O_NONBLOCK) == 0 else { throw LaunchError.io("cannot create a pipe: \(String(cString: strerror(errno)))") }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    func cancel() {
        cancelFlag.withLock { canceled = true }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private var isCanceled: Bool { cancelFlag.withLock { canceled } }

    /// How often a running process's memory high-water mark is read (see ``ResourceUsage``).
    static let memorySamplingMilliseconds: Double = 100

    /// `VmHWM` of a live process, in bytes.
    static func residentHighWaterMark(of pid: pid_t) -> Int64? {
        // Read and scanned in place: through String and split, this took 4% of a run of short
        // steps (each is sampled once as it starts).
        let descriptor = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = buffer[0..<count]
        let label = Array("\nVmHWM:".utf8)
        guard let start = text.indices.first(where: { text[$0...].starts(with: label) }) else { return nil }
        var kilobytes: Int64 = 0
        var sawDigit = false
        for byte in text[(start + label.count)...] {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                if sawDigit { break } else { continue }
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            kilobytes = kilobytes * 10 + Int64(byte - UInt8(ascii: "0"))
            sawDigit = true
        }
        return sawDigit ? kilobytes * 1024 : nil
    }

    func watch() throws -> ProcessResult {
        let started = Date()
        let input: Int32
        switch configuration.standardInput {
        case .file(let path):
            input = open(path, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else { throw LaunchError.io("cannot open the standard input file \(path): \(String(cString: strerror(errno)))") }
        case .bytes(let data):
            input = data.withUnsafeBytes { czenml_memory_file("stdin", $0.baseAddress, $0.count) }
            guard input >= 0 else { throw LaunchError.io("cannot make the standard input in memory: \(String(cString: strerror(errno)))") }
        }
        defer { close(input) }
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard czenml_pipe(&outPipe, O_CLOEXEC) == 0 else { throw LaunchError.io("cannot create a pipe") }
        guard czenml_pipe(&errPipe, O_CLOEXEC) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw LaunchError.io("cannot create a pipe")
        }
        // The log file is made at the first byte of standard error: a quiet step costs no file
        // (creating one took half a millisecond on ext4 without a journal, after many deletions).
        var log: Int32 = -1
        var logError: String?
        defer { if log >= 0 { close(log) } }
        func openLog() -> Bool {
            if log >= 0 { return true }
            guard logError == nil else { return false }
            log = open(configuration.logFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if log < 0 { logError = String(cString: strerror(errno)) }
            return log >= 0
        }

        let argv = [configuration.executable] + configuration.arguments
        let envp = configuration.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let spawnResult = CStrings.withArray(argv) { argvPointer in
            CStrings.withArray(envp) { envPointer in
                czenml_spawn(configuration.executable, argvPointer, envPointer, configuration.workingDirectory, input, outPipe[1], errPipe[1], &pid)
            }
        }
        close(outPipe[1])
        close(errPipe[1])
        guard spawnResult == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw LaunchError.cannotStart(executable: configuration.executable, errno: spawnResult)
        }
        let pidfd = czenml_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        _ = fcntl(outPipe[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(errPipe[0], F_SETFL, O_NONBLOCK)

        var output = Data()
        var outputExceeded = false
        var logWritten = 0
        var logDropped = 0
        var tail = Data()
        let tailLimit = 16 << 10
        var outOpen = true
        var errOpen = true
        var exited = false
        var status: Int32 = 0
        var usage = rusage()
        var sampledPeakMemory: Int64 = 0
        var nextMemorySample = Date.distantPast
        var timedOut = false
        var stopRequested = false
        var killDeadline: Date?
        var exitDrainDeadline: Date?
        var killSent = false
        let deadline = configuration.timeout.map { started.addingTimeInterval($0) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { buffer.deallocate() }

        func stop(_ signal: Int32) { _ = kill(-pid, signal) }
        func drain(_ fd: Int32, isOutput: Bool) -> Bool {
            while true {
                let count = read(fd, buffer.baseAddress, buffer.count)
                if count > 0 {
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                    if isOutput {
                        if output.count + count <= configuration.outputLimit { output.append(contentsOf: chunk) } else { outputExceeded = true }
                    } else {
                        if logWritten < configuration.logLimit, openLog() {
                            let allowed = min(count, configuration.logLimit - logWritten)
                            _ = Glibc.write(log, chunk.baseAddress, allowed)
                            logWritten += allowed
                            logDropped += count - allowed
                        } else {
                            logDropped += count
                        }
                        tail.append(contentsOf: chunk)
                        if tail.count > tailLimit * 2 { tail.removeFirst(tail.count - tailLimit) }
                    }
                    continue
                }
                if count == 0 { return false }
                if errno == EINTR { continue }
                return errno == EAGAIN || errno == EWOULDBLOCK
            }
        }

        while outOpen || errOpen || !exited {
            if !exited {
                var reaped: Int32 = 0
                let result = wait4(pid, &reaped, WNOHANG, &usage)
                if result == pid {
                    exited = true
                    status = reaped
                    // Children the step left behind keep its pipes open: give them a moment, then stop them.
                    exitDrainDeadline = Date().addingTimeInterval(0.2)
                }
            }
            if exited && !(outOpen || errOpen) { break }
            let now = Date()
            if !exited && now >= nextMemorySample {
                // Chatty steps wake this loop often: read /proc at most once per sampling interval.
                sampledPeakMemory = max(sampledPeakMemory, Self.residentHighWaterMark(of: pid) ?? 0)
                nextMemorySample = now.addingTimeInterval(Self.memorySamplingMilliseconds / 2000)
            }
            if let exitDrainDeadline, now >= exitDrainDeadline {
                stop(SIGKILL)
                _ = drain(outPipe[0], isOutput: true)
                _ = drain(errPipe[0], isOutput: false)
                break
            }
            if !stopRequested {
                if isCanceled || (deadline.map { now >= $0 } ?? false) {
                    timedOut = !isCanceled
                    stopRequested = true
                    stop(SIGTERM)
                    killDeadline = now.addingTimeInterval(configuration.gracePeriod)
                }
            } else if let killDeadline, now >= killDeadline {
                stop(SIGKILL)
                killSent = true
            }
            var fds: [pollfd] = []
            if outOpen { fds.append(pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0)) }
            if errOpen { fds.append(pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)) }
            if !exited && pidfd >= 0 { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            var waitMilliseconds: Double = (!exited && pidfd < 0) ? 10 : (exited ? 60_000 : Self.memorySamplingMilliseconds)
            for limit in [deadline, killDeadline, exitDrainDeadline].compactMap({ $0 }) {
                waitMilliseconds = min(waitMilliseconds, max(0, limit.timeIntervalSince(now) * 1000))
            }
            if killSent && !exited { waitMilliseconds = min(waitMilliseconds, 10) }
            _ = poll(&fds, nfds_t(fds.count), Int32(waitMilliseconds.rounded(.up)))
            for entry in fds where entry.revents != 0 {
                if entry.fd == outPipe[0] { outOpen = drain(outPipe[0], isOutput: true) }
                else if entry.fd == errPipe[0] { errOpen = drain(errPipe[0], isOutput: false) }
                else if entry.fd == wakeRead {
                    var sink = [UInt8](repeating: 0, count: 64)
                    _ = read(wakeRead, &sink, sink.count)
                }
            }
        }
        close(outPipe[0])
        close(errPipe[0])
        if !exited {
            var reaped: Int32 = 0
            while wait4(pid, &reaped, 0, &usage) < 0 && errno == EINTR {}
            status = reaped
        } else {
            stop(SIGKILL)
        }
        if logDropped > 0, openLog() {
            let note = "\n[zenml-run: \(logDropped) bytes of stderr over the \(configuration.logLimit)-byte log limit were dropped; the last lines follow]\n"
            _ = note.withCString { Glibc.write(log, $0, strlen($0)) }
            tail.suffix(tailLimit).withUnsafeBytes { _ = Glibc.write(log, $0.baseAddress, $0.count) }
        }
        if let logError {
            throw LaunchError.io("cannot create the log file \(configuration.logFile): \(logError)")
        }
        // A log left by an earlier attempt must not pass for this one's.
        if log < 0 { unlink(configuration.logFile) }
        let termination: ProcessResult.Termination =
            (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        let tailText = String(decoding: tail.suffix(tailLimit), as: UTF8.self)
        let lines = tailText.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(separator: "\n")
        return ProcessResult(
            termination: termination, standardOutput: output, outputLimitExceeded: outputExceeded, errorTail: lines,
            timedOut: timedOut, canceled: isCanceled, duration: Date().timeIntervalSince(started),
            usage: ResourceUsage(usage, sampledPeakMemory: sampledPeakMemory), wroteLog: log >= 0)
    }

}
