import Foundation
import ZenMLArtifacts
import ZenMLCore
import ZenMLExecutor

/// Work directories for steps (`request.json`, `outputs/`, `scratch/tmp/`), reused from one step
/// to the next: creating and removing four directories per step cost more on ext4 than a small
/// step itself. A released directory is emptied before it is handed out again, so every step
/// still starts with empty outputs and an empty scratch space. Emptying happens in the
/// background, off the path from one step's end to the next one's start.
final class WorkDirectoryPool: @unchecked Sendable {
    private let store: any ArtifactStore
    private var idle: [String] = []
    private let lock = NSLock()
    private let cleaner = DispatchQueue(label: "zenml-run.work-directories")
    private let cleaning = DispatchGroup()

    init(store: any ArtifactStore) {
        self.store = store
    }

    /// An empty work directory with `outputs/` and `scratch/tmp/`.
    func acquire() throws -> String {
        if let reused = lock.withLock({ idle.popLast() }) { return reused }
        let directory = try store.makeStagingDirectory(label: "step")
        try FileTree.makeDirectory(StepLaunch.outputsDirectory(in: directory))
        try FileTree.makeDirectory(StepLaunch.scratchDirectory(in: directory))
        try FileTree.makeDirectory(StepLaunch.scratchDirectory(in: directory) + "/tmp")
        return directory
    }

    /// Empties a work directory and keeps it for the next step; one that cannot be emptied is removed.
    func release(_ directory: String) {
        cleaner.async(group: cleaning) { [self] in clean(directory) }
    }

    private func clean(_ directory: String) {
        do {
            let outputs = StepLaunch.outputsDirectory(in: directory)
            let scratch = StepLaunch.scratchDirectory(in: directory)
            try FileTree.removeContents(of: outputs)
            for name in try FileTree.childNames(of: scratch) where name != "tmp" {
                try FileTree.remove(scratch + "/" + name)
            }
            try FileTree.removeContents(of: scratch + "/tmp")
            for name in try FileTree.childNames(of: directory) where name != "outputs" && name != "scratch" {
                try FileTree.remove(directory + "/" + name)
            }
            // A step may have made its folders read-only or replaced them; only a clean layout is reused.
            guard try FileStatus.of(outputs)?.kind == .directory, try FileStatus.of(scratch + "/tmp")?.kind == .directory,
                (try FileStatus.of(outputs)?.mode ?? 0) & 0o700 == 0o700, (try FileStatus.of(scratch + "/tmp")?.mode ?? 0) & 0o700 == 0o700
            else {
                try FileTree.remove(directory)
                return
            }
            lock.withLock { idle.append(directory) }
        } catch {
            try? FileTree.remove(directory)
        }
    }

    /// Removes every idle directory (at the end of a run).
    func drain() {
        cleaning.wait()
        let directories = lock.withLock { () -> [String] in
            defer { idle.removeAll() }
            return idle
        }
        for directory in directories { try? FileTree.remove(directory) }
    }
}
