import Foundation
import ZenMLEngine

/// Shows a run's progress on standard error: a live table in a terminal, plain lines otherwise.
///
/// The table is redrawn ten times a second at most, not on every change: a cached 500-step run
/// changes 500 times in a fraction of a second, and redrawing 500 lines each time wrote 12 MB to
/// the terminal and took 7 s instead of 0.5 s. A pipeline taller than the terminal is shown as
/// counts per state plus the steps that are running or failed.
final class ProgressDisplay: @unchecked Sendable {
    private let live: Bool
    private let lock = NSLock()
    private var order: [String] = [] {
        // Every line pads step names to the longest; measured once, not per line (a 500-step
        // run printed 1,000 lines, each measuring 500 names).
        didSet { width = max(8, order.map(\.count).max() ?? 8) }
    }
    private var width = 8
    private var states: [String: StepState] = [:]
    private var drawnLines = 0
    private var changed = false
    private var timer: DispatchSourceTimer?
    private let enabled: Bool

    init(enabled: Bool) {
        self.enabled = enabled
        self.live = enabled && isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    func handle(_ event: RunEvent) {
        guard enabled else { return }
        lock.withLock {
            switch event {
            case .runStarted(let runID, let pipeline, let steps):
                order = steps
                for step in steps { states[step] = .waiting }
                write("run \(runID) of \(pipeline): \(steps.count) step\(steps.count == 1 ? "" : "s")\n")
                if live {
                    redraw()
                    let timer = DispatchSource.makeTimerSource(queue: .global())
                    timer.schedule(deadline: .now() + 0.1, repeating: 0.1)
                    timer.setEventHandler { [weak self] in self?.lock.withLock { self?.redrawIfNeeded() } }
                    timer.resume()
                    self.timer = timer
                }
            case .stepChanged(let step, let state):
                states[step] = state
                if live { changed = true } else { write(line(step, state) + "\n") }
            case .runFinished:
                timer?.cancel()
                timer = nil
                if live { redraw() }
            }
        }
    }

    private func line(_ step: String, _ state: StepState) -> String {
        let name = step.count >= width ? step : step + String(repeating: " ", count: width - step.count)
        switch state {
        case .waiting:
            return "  \(name)  waiting"
        case .pending(let since, let reason):
            return "  \(name)  pending  " + detail(since: since, reason: reason)
        case .running(let since, let reason):
            return "  \(name)  running  " + detail(since: since, reason: reason)
        case .cached(let run):
            return "  \(name)  cached   (from run \(run))"
        case .completed(let duration):
            return "  \(name)  done     \(String(format: "%.2f s", duration))"
        case .failed(let report):
            return "  \(name)  FAILED   \(report.message)"
        case .skipped(let because):
            return "  \(name)  skipped  (\(because))"
        case .canceled:
            return "  \(name)  canceled"
        }
    }

    /// The time in the state (in a terminal) and why: a queue's reason, a job id, a node.
    private func detail(since: Date, reason: String?) -> String {
        let elapsed = String(format: "%.1f s", Date().timeIntervalSince(since))
        return (live ? elapsed : "") + (reason.map { live ? "  (\($0))" : "(\($0))" } ?? "")
    }

    private static func isUnderway(_ state: StepState) -> Bool {
        switch state {
        case .pending, .running: return true
        default: return false
        }
    }

    /// Redraws when a step changed, or every tick while one is pending or runs (its elapsed time moves).
    private func redrawIfNeeded() {
        if changed || states.values.contains(where: Self.isUnderway) { redraw() }
    }

    private func redraw() {
        changed = false
        var lines: [String]
        let (rows, columns) = Self.terminalSize()
        if order.count + 2 <= rows {
            lines = order.map { line($0, states[$0] ?? .waiting) }
        } else {
            // Too tall for the terminal: counts, then the steps worth watching.
            var counts: [String: Int] = [:]
            for step in order { counts[(states[step] ?? .waiting).label, default: 0] += 1 }
            let summary = ["running", "pending", "waiting", "cached", "done", "failed", "skipped", "canceled"]
                .compactMap { label in counts[label].map { "\($0) \(label)" } }.joined(separator: ", ")
            lines = ["  \(order.count) steps: \(summary)"]
            let running = order.filter { if case .running = states[$0] ?? .waiting { return true } else { return false } }
            let pending = order.filter { if case .pending = states[$0] ?? .waiting { return true } else { return false } }
            let failed = order.filter { if case .failed = states[$0] ?? .waiting { return true } else { return false } }
            // Pending steps last: a wide fan-out queues hundreds, which must not hide a failure.
            let watched = running + failed + pending
            let room = max(1, rows - 3)
            lines += watched.prefix(room).map { line($0, states[$0] ?? .waiting) }
            if watched.count > room { lines.append("  … and \(watched.count - room) more") }
        }
        // Up to the first line drawn, then clear to the end of the screen: the new table may be shorter.
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A\r\u{1B}[J" : ""
        // A line the terminal wraps would take two rows, and the next redraw would go up too few.
        let lineLimit = max(20, columns - 1)
        for var rendered in lines {
            if rendered.count > lineLimit { rendered = String(rendered.prefix(lineLimit - 3)) + "..." }
            text += rendered + "\n"
        }
        drawnLines = lines.count
        write(text)
    }

    /// The terminal's rows and columns, from standard error; 24 by 80 when they cannot be read.
    private static func terminalSize() -> (rows: Int, columns: Int) {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 else { return (24, 80) }
        return (Int(size.ws_row), Int(size.ws_col))
    }

    private func write(_ text: String) {
        writeError(text)
    }
}
