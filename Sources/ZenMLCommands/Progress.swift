import Foundation
import ZenMLEngine

/// Shows a run's progress on standard error: a live table in a terminal, plain lines otherwise.
final class ProgressDisplay: @unchecked Sendable {
    private let live: Bool
    private let lock = NSLock()
    private var order: [String] = []
    private var states: [String: StepState] = [:]
    private var drawnLines = 0
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
                    timer.setEventHandler { [weak self] in self?.lock.withLock { self?.redraw() } }
                    timer.resume()
                    self.timer = timer
                }
            case .stepChanged(let step, let state):
                states[step] = state
                if live { redraw() } else { write(line(step, state) + "\n") }
            case .runFinished:
                timer?.cancel()
                timer = nil
                if live { redraw() }
            }
        }
    }

    private var width: Int { max(8, (order.map(\.count).max() ?? 8)) }

    private func line(_ step: String, _ state: StepState) -> String {
        let name = step.padding(toLength: width, withPad: " ", startingAt: 0)
        switch state {
        case .waiting:
            return "  \(name)  waiting"
        case .running(let since, let reason):
            let elapsed = String(format: "%.1f s", Date().timeIntervalSince(since))
            return "  \(name)  running  \(live ? elapsed : "")" + (reason.map { live ? "  (\($0))" : "(\($0))" } ?? "")
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

    private func redraw() {
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        for step in order {
            var rendered = line(step, states[step] ?? .waiting)
            if rendered.count > 160 { rendered = String(rendered.prefix(157)) + "..." }
            text += "\u{1B}[2K" + rendered + "\n"
        }
        drawnLines = order.count
        write(text)
    }

    private func write(_ text: String) {
        writeError(text)
    }
}
