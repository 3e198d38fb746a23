import Foundation
import XCTest

/// An HTTP proxy on 127.0.0.1 in front of a real object storage server (moto, the GCS emulator)
/// that injects the failures a real network and a busy server produce, on request, and counts
/// what it saw: attempts per rule and the most requests in flight at once.
///
/// Python's threading http.server, like the token endpoint of `TokenExchangeTests`: every
/// request is read whole, then a rule may answer instead of the server, cut the connection, or
/// forward only part of an upload. Rules match a method and a substring of the path and query,
/// and fire a given number of times.
final class FaultProxy: @unchecked Sendable {
    static let script = #"""
        import http.client, json, re, socket, sys, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        target = int(sys.argv[1])
        lock = threading.Lock()
        state = {"rules": [], "delay": 0.0}
        stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "hits": {}, "log": []}
        HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length", "host", "server", "date"}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            counted = False
            def log_message(self, *args): pass

            def done(self):
                # Counted out before the answer goes back: the client may send its next request
                # the moment it has the answer, and must not find this one still counted.
                if self.counted:
                    self.counted = False
                    with lock: stats["in_flight"] -= 1

            def answer(self, code, body=b"", headers=(), length=None):
                self.done()
                self.send_response(code)
                for name, value in headers: self.send_header(name, value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if self.command != "HEAD": self.wfile.write(body)

            def cut(self):
                self.done()
                self.close_connection = True
                try: self.wfile.flush()
                except OSError: pass
                self.connection.shutdown(socket.SHUT_RDWR)

            def forward(self, body, content_range=None):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                if content_range is not None: headers["Content-Range"] = content_range
                connection = http.client.HTTPConnection("127.0.0.1", target, timeout=60)
                connection.request(self.command, self.path, body=body if self.command not in ("GET", "HEAD") else None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                own = "127.0.0.1:%d" % self.server.server_address[1]
                out = [(k, v.replace("127.0.0.1:%d" % target, own) if k.lower() == "location" else v)
                       for k, v in response.getheaders() if k.lower() not in HOP]
                length = int(response.getheader("Content-Length") or len(data)) if self.command == "HEAD" else None
                return response.status, data, out, length

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/__proxy/"):
                    with lock:
                        if self.command == "PUT":
                            config = json.loads(body)
                            state["rules"] = config.get("rules", [])
                            state["delay"] = config.get("delay", 0.0)
                            stats.update(requests=0, max_in_flight=0, hits={}, log=[])
                        data = json.dumps(stats).encode()
                    return self.answer(200, data, [("Content-Type", "application/json")])
                self.counted = True
                with lock:
                    stats["requests"] += 1
                    stats["in_flight"] += 1
                    stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
                    headers = "".join("%s: %s\n" % item for item in self.headers.items())
                    rule = None
                    for index, candidate in enumerate(state["rules"]):
                        if candidate.get("method", self.command) != self.command or candidate.get("contains", "") not in self.path \
                                or candidate.get("header", "") not in headers:
                            continue
                        # Every request a rule matches, whether it fires or has run out: the attempts.
                        stats["hits"][str(index)] = stats["hits"].get(str(index), 0) + 1
                        if rule is None and candidate["times"] > 0:
                            candidate["times"] -= 1
                            rule = candidate
                    delay = state["delay"]
                    stats["log"].append("%s %s %s -> %s" % (self.command, self.path.split("?")[0][-40:], self.headers.get("Content-Range", ""),
                                                             rule["action"] if rule else "forward"))
                try:
                    if delay: time.sleep(delay)
                    action = rule["action"] if rule else "forward"
                    if action == "status":
                        return self.answer(rule["status"], b'{"error": {"code": %d, "message": "injected"}}' % rule["status"],
                                           [("Content-Type", "application/json")])
                    if action == "drop":
                        return self.cut()
                    if action in ("keep-part", "keep-part-and-drop"):
                        # The server gets only the first `keep` bytes of this resumable chunk.
                        start = int(re.match(r"bytes (\d+)-", self.headers["Content-Range"]).group(1))
                        keep = rule["keep"]
                        status, data, out, _ = self.forward(body[:keep], "bytes %d-%d/*" % (start, start + keep - 1))
                        if action == "keep-part-and-drop": return self.cut()
                        return self.answer(status, data, out)
                    status, data, out, length = self.forward(body)
                    if action == "drop-body":
                        # Headers announce the whole body; half of it comes, then the connection ends.
                        self.done()
                        self.send_response(status)
                        for name, value in out: self.send_header(name, value)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        return self.cut()
                    self.answer(status, data, out, length)
                finally:
                    self.done()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        ThreadingHTTPServer.daemon_threads = True
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    /// One injected failure: requests with `method` whose path and query contain `contains` (and
    /// whose headers contain `header`) get `action`, `times` times; later ones pass through.
    struct Rule: Encodable {
        enum Action: String, Encodable {
            /// Answer `status` instead of the server.
            case status
            /// Close the connection without an answer (the request never reaches the server).
            case drop
            /// Forward, then send only half of the answer's body and close the connection.
            case dropBody = "drop-body"
            /// Forward only the first `keep` bytes of a resumable chunk (adjusting its Content-Range).
            case keepPart = "keep-part"
            /// As `keepPart`, then close the connection without an answer.
            case keepPartAndDrop = "keep-part-and-drop"
        }
        var method: String
        var contains: String = ""
        var header: String = ""
        var action: Action
        var status: Int = 503
        var keep: Int = 0
        var times: Int
    }

    struct Stats: Decodable {
        var requests: Int
        var max_in_flight: Int
        var hits: [String: Int]
        /// Every request: method, the end of its path, its Content-Range, and what the proxy did.
        var log: [String]
    }

    let port: Int
    let process: Process
    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts a proxy in front of the server on `targetPort`.
    init(targetPort: Int) throws {
        let path = NSTemporaryDirectory() + "zenml-fault-proxy-\(UUID().uuidString).py"
        try Self.script.write(toFile: path, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", path, String(targetPort)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var line = Data()
        while true {
            let byte = pipe.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        try? FileManager.default.removeItem(atPath: path)  // read by Python before it printed the port
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            kill(process.processIdentifier, SIGKILL)
            throw Servers.Unavailable(description: "the fault proxy did not start (python3 missing?)")
        }
        self.port = port
    }

    deinit { stop() }

    func stop() {
        // SIGKILL: a child of Foundation's Process inherits a signal mask in which SIGTERM does not end it.
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Replaces the rules (and zeroes the counts); `delay` holds every request that long, so
    /// that parallel requests overlap.
    func set(_ rules: [Rule], delay: Double = 0) throws {
        struct Config: Encodable { var rules: [Rule]; var delay: Double }
        _ = try control("PUT", body: JSONEncoder().encode(Config(rules: rules, delay: delay)))
    }

    /// What the proxy saw since the rules were set.
    func stats() throws -> Stats { try JSONDecoder().decode(Stats.self, from: control("GET", body: nil)) }

    /// How many requests rule `index` matched (the ones it failed and the ones after).
    func hits(_ index: Int) throws -> Int { try stats().hits[String(index)] ?? 0 }

    /// Talks to the proxy with curl, not with the client under test.
    private func control(_ method: String, body: Data?) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["curl", "-sS", "-X", method, "--data-binary", "@-", "\(endpoint)/__proxy/control"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(body ?? Data())
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Servers.Unavailable(description: "the fault proxy does not answer") }
        return data
    }
}
