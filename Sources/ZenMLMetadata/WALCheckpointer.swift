import CZenMLSQLite
import Foundation
import GRDBSQLite

/// Copies an SQLite store's write-ahead log into the database file on a thread of its own.
///
/// SQLite checkpoints inside the commit that takes the WAL past 1,000 pages, and again when the
/// last connection closes; a command waits for both copies and their `fsync`s (20 ms of a cached
/// 500-step run's 140, in the commit of its last records). Here a commit only asks (a WAL hook),
/// and this thread copies with a connection of its own: in PASSIVE mode, which blocks no reader
/// and no writer, then briefly in RESTART mode (see ``checkpoint(_:)``). Connections close
/// without checkpointing; the store syncs the WAL instead, so what was committed is on disk when
/// a command ends.
///
/// The next command's first connection reads the whole WAL (about 0.5 ms per MB), so it is kept
/// short: once a checkpoint has copied all of it, the next commit starts it over, and a command
/// that finds a long one (its predecessor ended during the copy) has it copied at once, while it
/// reads its pipeline, and its first write waits for that copy if it is still under way (see
/// ``awaitOpeningCheckpoint(limit:)``). (Leaving the WAL at close without this bound had the next
/// command read up to 32 MB, which cost more than the checkpoint saved.)
///
/// The same thread also syncs the WAL as commits add to it, so that the sync at close has only the
/// last commits left to write: a cached 500-step run's 4 MB of WAL took 10 ms to sync there.
final class WALCheckpointer: @unchecked Sendable {
    /// WAL pages after which a checkpoint is asked for: SQLite's own default.
    static let pages: CInt = 1000
    /// WAL pages added since the last sync after which another is asked for (1 MiB).
    static let syncPages: CInt = 256

    private let path: String
    private let condition = NSCondition()
    private var requested = false
    private var syncRequested = false
    /// The WAL's length in pages when a sync was last asked for.
    private var syncedPages: CInt = 0
    private var syncs = 0
    /// Whether the checkpoint asked for when the store opened has yet to end.
    private var openingCheckpoint = false
    private var stopping = false
    private var threadStarted = false
    /// The thread's connection, while it checkpoints (to interrupt it).
    private var busyConnection: OpaquePointer?

    init(path: String) {
        self.path = path
    }

    /// Asks for a checkpoint if the WAL left by earlier commands holds ``pages`` live frames or
    /// more (see ``liveFrames(wal:)``); the store's first write waits for it (see
    /// ``awaitOpeningCheckpoint(limit:)``).
    func checkpointIfLong() {
        guard Self.liveFrames(wal: path + "-wal") >= Int(Self.pages) else { return }
        condition.lock()
        defer { condition.unlock() }
        openingCheckpoint = true
        requested = true
        wake()
    }

    /// Waits up to `limit` seconds for the checkpoint asked for when the store opened, if it has
    /// yet to end, so that this command's first commit starts the WAL over. Later calls return
    /// at once.
    ///
    /// A command's first connection reads the whole WAL and forgets what earlier checkpoints
    /// copied (SQLite rebuilds the WAL index), so each command copies the WAL in full again. A
    /// command shorter than that copy (a cached chain of 100 steps, 35 ms, once the WAL is a few
    /// MB) left it longer still for the next one: cached runs grew it to 6,000 pages (24 MB)
    /// before a command happened to finish a copy. The copy usually ends while the command
    /// reads its pipeline, and this returns at once.
    func awaitOpeningCheckpoint(limit: TimeInterval) {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: limit)
        while openingCheckpoint, !stopping, condition.wait(until: deadline) {}
        openingCheckpoint = false
    }

    /// The frames of a WAL's current generation: those a connection opening it reads, and a
    /// checkpoint copies. The file keeps its largest size when the WAL starts over, so its size
    /// says little. A restart gives the header a new salt and frames are written in order, so the
    /// frames that carry the header's salt come first: a binary search finds the last of them.
    static func liveFrames(wal path: String) -> Int {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return 0 }
        defer { close(file) }
        func read(_ count: Int, at offset: Int) -> [UInt8]? {
            var bytes = [UInt8](repeating: 0, count: count)
            return pread(file, &bytes, count, off_t(offset)) == count ? bytes : nil
        }
        var status = stat()
        guard fstat(file, &status) == 0, let header = read(32, at: 0) else { return 0 }
        let pageSize = header[8..<12].reduce(0) { $0 << 8 | Int($1) }
        guard pageSize >= 512 else { return 0 }
        let frameSize = 24 + pageSize
        let salt = header[16..<24]
        func live(_ frame: Int) -> Bool { read(8, at: 32 + frame * frameSize + 8).map { $0[...] == salt } ?? false }
        // The first `low` frames are live; frames from `high` on are not.
        var low = 0, high = (Int(status.st_size) - 32) / frameSize
        while low < high {
            let middle = (low + high) / 2
            if live(middle) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// How many background syncs of the WAL completed.
    var completedSyncs: Int {
        condition.lock()
        defer { condition.unlock() }
        return syncs
    }

    /// Called after each commit with the WAL's length in pages: asks for a sync once ``syncPages``
    /// were added since the last, and for a checkpoint once the WAL holds ``pages``.
    private func committed(walPages: CInt) {
        condition.lock()
        defer { condition.unlock() }
        // A shorter WAL than at the last sync has started over.
        if walPages < syncedPages { syncedPages = 0 }
        if walPages - syncedPages >= Self.syncPages {
            syncedPages = walPages
            syncRequested = true
        }
        if walPages >= Self.pages { requested = true }
        if requested || syncRequested { wake() }
    }

    /// Starts the thread, or signals it. The caller holds `condition`.
    private func wake() {
        guard !stopping else { return }
        if !threadStarted {
            threadStarted = true
            let thread = Thread { [self] in work() }
            thread.name = "zenml-run WAL checkpoint"
            thread.start()
        } else {
            condition.signal()
        }
    }

    /// Has the thread end, without waiting for it, and syncs the WAL, once the store's connections
    /// are closed. A checkpoint under way is interrupted, or, in its syncs, left to finish (6 ms at
    /// the end of a cached 500-step run), or to be cut short when the process exits. Either is
    /// safe: the WAL stays the record of what a checkpoint copies until one completes. Closing
    /// checkpointed nothing, so the sync here is what puts this command's commits on disk when it
    /// ends, as a checkpoint on close would have; the thread synced most of them as they came.
    func stop() {
        condition.lock()
        stopping = true
        if let busyConnection { sqlite3_interrupt(busyConnection) }
        condition.broadcast()
        condition.unlock()
        let wal = open(path + "-wal", O_RDONLY | O_CLOEXEC)
        if wal >= 0 {
            fsync(wal)
            close(wal)
        }
    }

    /// Makes `connection` leave checkpoints to this thread: a commit that leaves the WAL at
    /// ``pages`` or more asks for one (in place of SQLite's automatic checkpoint), and closing
    /// checkpoints nothing. Its commits also ask for syncs (see ``committed(walPages:)``).
    func manage(_ connection: OpaquePointer?) {
        guard let connection else { return }
        _ = czenml_sqlite_skip_checkpoint_on_close(UnsafeMutableRawPointer(connection))
        sqlite3_wal_hook(
            connection,
            { context, _, _, pages in
                if let context { Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(walPages: pages) }
                return SQLITE_OK
            },
            Unmanaged.passUnretained(self).toOpaque())
    }

    private func work() {
        var connection: OpaquePointer?
        if sqlite3_open_v2(path, &connection, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let connection {
            _ = czenml_sqlite_skip_checkpoint_on_close(UnsafeMutableRawPointer(connection))
            // A connection finds the WAL at its first read; until then it has none to checkpoint.
            _ = sqlite3_exec(connection, "SELECT count(*) FROM sqlite_master", nil, nil, nil)
            sqlite3_busy_timeout(connection, Self.restartWait)
            let wal = open(path + "-wal", O_RDONLY | O_CLOEXEC)
            defer { if wal >= 0 { close(wal) } }
            condition.lock()
            while !stopping {
                // A checkpoint goes first (a command may end before a sync would): it syncs the
                // WAL before copying it, which stands for a sync asked for meanwhile.
                if requested {
                    requested = false
                    syncRequested = false
                    busyConnection = connection
                    condition.unlock()
                    checkpoint(connection)
                    condition.lock()
                    busyConnection = nil
                    openingCheckpoint = false
                    condition.broadcast()
                } else if syncRequested {
                    syncRequested = false
                    condition.unlock()
                    let synced = wal >= 0 && fdatasync(wal) == 0
                    condition.lock()
                    if synced { syncs += 1 }
                } else {
                    condition.wait()
                }
            }
            condition.unlock()
        }
        sqlite3_close_v2(connection)
        // A thread that could not open its connection copied nothing: no write waits for it.
        condition.lock()
        openingCheckpoint = false
        condition.broadcast()
        condition.unlock()
    }

    /// How long the restart waits for a writer's transaction or a reader to end, in ms: while it
    /// waits for readers it holds writers back, so not long (200 ms stalled runs).
    private static let restartWait: CInt = 5

    /// Copies the WAL without blocking anyone, then has it start over.
    ///
    /// A WAL starts over only at a write that begins when every frame is copied; a copy that runs
    /// beside the writer rarely catches up with it, and a command often ends during one. By a
    /// workspace's 30th cached run of a chain the WAL had grown to 21 MB, which each command read
    /// when it opened the store (10 ms). So once the PASSIVE copy is done, a RESTART checkpoint
    /// copies what was committed meanwhile (holding writers back for that, a few pages) and waits
    /// briefly for readers to leave the WAL, so that the next commit starts it over. A command
    /// that opens the store finds no writer yet, so its restart nearly always succeeds.
    /// A failure (busy, interrupted) leaves the WAL as it was; the next request tries again.
    private func checkpoint(_ connection: OpaquePointer) {
        var frames: CInt = 0
        guard sqlite3_wal_checkpoint_v2(connection, "main", SQLITE_CHECKPOINT_PASSIVE, &frames, nil) == SQLITE_OK, frames > 0 else { return }
        _ = sqlite3_wal_checkpoint_v2(connection, "main", SQLITE_CHECKPOINT_RESTART, nil, nil)
    }
}
