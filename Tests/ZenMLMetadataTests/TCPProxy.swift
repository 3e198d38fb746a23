import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on 127.0.0.1 in front of the MariaDB server that can cut a connection right after
/// the client sent `COMMIT`: the server commits, the client never hears of it. That is the one
/// failure a store cannot tell apart from a rollback, so it is worth a deterministic test.
final class CommitCuttingProxy: @unchecked Sendable {
    let port: Int
    private let target: Int
    private let listener: Int32
    private let lock = NSLock()
    private var armed = false
    private var refusing = false
    private var cuts = 0
    private var sockets: [Int32] = []

    /// The `COM_QUERY "COMMIT"` packet: length 7, sequence 0, command 3, then the text.
    private static let commitPacket: [UInt8] = [7, 0, 0, 0, 3] + Array("COMMIT".utf8)

    init(targetPort: Int) throws {
        target = targetPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket() failed") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 16) == 0 else { throw ProxyError("bind/listen failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [weak self] in self?.acceptLoop() }
        thread.start()
    }

    struct ProxyError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The next `COMMIT` through the proxy cuts its connection (once).
    func armCommitCut() { lock.withLock { armed = true } }

    /// From now on, new connections are closed at once (the server looks unreachable).
    func refuseNewConnections() { lock.withLock { refusing = true } }

    /// How many connections were cut.
    var cutCount: Int { lock.withLock { cuts } }

    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        for socket in lock.withLock({ sockets }) { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            if lock.withLock({ refusing }) {
                Glibc.close(client)
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target)
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if connected != 0 {
                Glibc.close(client)
                Glibc.close(server)
                continue
            }
            lock.withLock { sockets += [client, server] }
            let state = PairState()
            Thread { [weak self] in self?.pump(from: client, to: server, watchCommits: true, pair: (client, server), state: state) }.start()
            Thread { [weak self] in self?.pump(from: server, to: client, watchCommits: false, pair: (client, server), state: state) }.start()
        }
    }

    /// One proxied connection: whether the server's replies are being swallowed, and how many of
    /// its two pumps still run (the last one closes both sockets).
    private final class PairState: @unchecked Sendable {
        private let lock = NSLock()
        private var swallowing = false
        private var running = 2
        var swallowReplies: Bool {
            get { lock.withLock { swallowing } }
            set { lock.withLock { swallowing = newValue } }
        }
        /// True for the pump that stops last.
        func pumpStopped() -> Bool { lock.withLock { running -= 1; return running == 0 } }
    }

    private func pump(from source: Int32, to destination: Int32, watchCommits: Bool, pair: (Int32, Int32), state: PairState) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(source, &buffer, buffer.count)
            if count <= 0 { break }
            let chunk = Array(buffer[0..<count])
            let cut = watchCommits && chunk.starts(with: Self.commitPacket) && lock.withLock { () -> Bool in
                guard armed else { return false }
                armed = false
                cuts += 1
                return true
            }
            // The reply to the COMMIT (and anything after it) never reaches the client.
            if cut { state.swallowReplies = true }
            if !watchCommits && state.swallowReplies { continue }
            var written = 0
            while written < count {
                let result = chunk[written...].withUnsafeBytes { write(destination, $0.baseAddress, count - written) }
                if result <= 0 { break }
                written += result
            }
            if cut {
                Thread.sleep(forTimeInterval: 0.3)  // the server commits meanwhile
                break
            }
        }
        shutdown(pair.0, Int32(SHUT_RDWR))
        shutdown(pair.1, Int32(SHUT_RDWR))
        if state.pumpStopped() {
            lock.withLock { sockets.removeAll { $0 == pair.0 || $0 == pair.1 } }
            Glibc.close(pair.0)
            Glibc.close(pair.1)
        }
    }
}
