import CCurl
import Foundation
import ZenMLCore

/// One HTTP request. A body is sent from memory; a response body goes to memory or, with
/// `downloadPath`, straight into that file (only for a 2xx answer; error bodies stay in memory).
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: Data?
    public var downloadPath: String?
    /// With `downloadPath`: write the body at this offset of the existing file (a range request).
    public var downloadOffset: Int64?

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: Data? = nil, downloadPath: String? = nil, downloadOffset: Int64? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.downloadPath = downloadPath
        self.downloadOffset = downloadOffset
    }
}

/// An HTTP answer, whatever its status.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names in lower case; a repeated header keeps its last value.
    public var headers: [String: String]
    public var body: Data
    /// How many times the request was sent: more than 1 when earlier answers were worth a retry.
    public var attempts: Int = 1

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A request that got no HTTP answer.
public struct HTTPTransportError: Error, CustomStringConvertible, Sendable {
    /// The URL without its query (queries can carry upload ids, never credentials, but are long).
    public var url: String
    public var message: String
    public var curlCode: Int32
    /// How many times the request was sent before giving up.
    public var attempts: Int = 1

    public var description: String {
        "cannot reach \(url): \(message)" + (attempts > 1 ? " (gave up after \(attempts) attempts; check the network and the server, then run again)" : "")
    }

    /// Dropped connections, timeouts and resets are worth another try; a bad URL is not.
    var isRetryable: Bool {
        [CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING,
         CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_COULDNT_RESOLVE_HOST, CURLE_SSL_CONNECT_ERROR]
            .map { Int32($0.rawValue) }.contains(curlCode)
    }
}

/// The HTTP stack of the remote stores, on libcurl.
///
/// Why libcurl: it is a system library on every Linux machine (and the one FoundationNetworking
/// itself wraps), it brings TLS with the system's CA store, HTTP/2, keep-alive connection reuse
/// and proxies, and it streams bodies to files without buffering them. AsyncHTTPClient would give
/// the same on SwiftNIO, at the price of building NIO, NIO-SSL and BoringSSL a second time
/// (minutes of CI per build), and URLSession on Linux cannot stream an upload from a file range
/// or reuse connections predictably.
///
/// libcurl is not linked but opened at the first request (``loadLibcurl()``): resolving it and the
/// ~30 libraries it needs cost every zenml-run process ~11 ms at start, and most runs use no bucket.
///
/// Transfers are blocking `curl_easy_perform` calls, so they run on this client's own threads,
/// never on Swift's cooperative pool; each thread keeps one easy handle, whose connection cache
/// keeps connections to the server open across requests. The number of threads bounds the
/// transfers in flight; more requests wait in a queue. Callers await results through continuations.
public final class HTTPClient: @unchecked Sendable {
    /// The process-wide client: ``transfers(_:)`` threads.
    public static let shared = HTTPClient(concurrency: transfers())

    /// How many transfers run at once: `ZENML_TRANSFERS` (1 to 64), default 8.
    public static func transfers(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        max(1, min(64, Int(environment["ZENML_TRANSFERS"] ?? "") ?? 8))
    }

    /// How many requests run at once.
    public let concurrency: Int
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var head = 0

    private struct Job {
        var request: HTTPRequest
        var continuation: CheckedContinuation<HTTPResponse, Error>
    }

    public init(concurrency: Int) {
        self.concurrency = concurrency
        for index in 0..<concurrency {
            let thread = Thread { [self] in self.work() }
            thread.name = "zenml-http-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Loads libcurl (once per process; later calls only check) and initializes it.
    /// - Throws: ``ObjectStoreError/missingLibcurl(reason:)`` when it cannot be loaded.
    public static func loadLibcurl() throws {
        if let reason = zc_load() { throw ObjectStoreError.missingLibcurl(reason: String(cString: reason)) }
    }

    /// What ``loadLibcurl()`` does, with other file names to try (tests use names that do not exist).
    static func loadLibcurl(candidates: [String]) throws {
        var error = [CChar](repeating: 0, count: 1024)
        let status = CStrings.withConstArray(candidates) { zc_load_from($0, candidates.count, &error, error.count) }
        if status != 0 { throw ObjectStoreError.missingLibcurl(reason: CStrings.string(from: error)) }
    }

    /// Sends a request; retries dropped connections and 408/429/5xx answers with exponential
    /// backoff (4 retries, 0.25 s doubling, with jitter) and returns the last answer, whose
    /// `attempts` (or the error's) says how often it was sent.
    ///
    /// Only for requests that may be sent twice: a retried upload of a whole object or part
    /// replaces what it wrote. (GCS resumable chunks are not: ``GCSObjectStore`` asks the server
    /// what it kept instead.)
    public func send(_ request: HTTPRequest, retries: Int = 4) async throws -> HTTPResponse {
        var delay = 0.25
        var attempt = 0
        while true {
            do {
                var response = try await sendOnce(request)
                if attempt < retries && isTransient(response.status) {
                    attempt += 1
                    try await Task.sleep(nanoseconds: UInt64(delay * Double.random(in: 0.5...1.5) * 1e9))
                    delay *= 2
                    continue
                }
                response.attempts = attempt + 1
                return response
            } catch var error as HTTPTransportError where error.isRetryable {
                guard attempt < retries else {
                    error.attempts = attempt + 1
                    throw error
                }
                attempt += 1
                try await Task.sleep(nanoseconds: UInt64(delay * Double.random(in: 0.5...1.5) * 1e9))
                delay *= 2
            }
        }
    }

    /// One attempt, no retries.
    public func sendOnce(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Self.loadLibcurl()
        return try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            queue.append(Job(request: request, continuation: continuation))
            condition.signal()
            condition.unlock()
        }
    }

    private func work() {
        // Made at the first job: a job is queued only once libcurl is loaded.
        var easyHandle: UnsafeMutableRawPointer?
        while true {
            condition.lock()
            while head == queue.count { condition.wait() }
            let job = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job.continuation.resume(with: Result {
                if easyHandle == nil { easyHandle = zc_curl_easy_init() }
                guard let handle = easyHandle else {
                    throw HTTPTransportError(url: String(job.request.url.prefix { $0 != "?" }), message: "libcurl could not make a handle (out of memory)", curlCode: Int32(CURLE_OUT_OF_MEMORY.rawValue))
                }
                return try Self.perform(job.request, on: handle)
            })
        }
    }

    private static func perform(_ request: HTTPRequest, on handle: UnsafeMutableRawPointer) throws -> HTTPResponse {
        var list: UnsafeMutablePointer<curl_slist>?
        // No `Expect: 100-continue` (a round trip per upload), and no default form content type.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            list = zc_curl_slist_append(list, line)
        }
        defer { zc_curl_slist_free_all(list) }
        var transfer = zc_transfer()
        defer { zc_transfer_free(&transfer) }
        let code: Int32 = request.method.withCString { method in
            request.url.withCString { url in
                withOptionalCString(request.downloadPath) { downloadPath in
                    withOptionalBytes(request.body) { body, length in
                        transfer.method = method
                        transfer.url = url
                        transfer.headers = list
                        transfer.body = body
                        transfer.body_length = length
                        transfer.download_path = downloadPath
                        transfer.download_offset = request.downloadOffset ?? -1
                        return zc_perform(handle, &transfer)
                    }
                }
            }
        }
        let shortURL = String(request.url.prefix { $0 != "?" })
        if transfer.write_failed != 0 {
            throw HTTPTransportError(url: shortURL, message: "cannot write \(request.downloadPath ?? "the response") (disk full?)", curlCode: -1)
        }
        if code != 0 {
            let message = withUnsafeBytes(of: transfer.error) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw HTTPTransportError(
                url: shortURL, message: message.isEmpty ? String(cString: zc_curl_easy_strerror(CURLcode(UInt32(code)))) : message, curlCode: code)
        }
        var headers: [String: String] = [:]
        if let text = transfer.header_text {
            for line in String(cString: text).split(whereSeparator: \.isNewline) {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let body = transfer.response.map { Data(bytes: $0, count: transfer.response_length) } ?? Data()
        return HTTPResponse(status: Int(transfer.status), headers: headers, body: body)
    }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

private func withOptionalBytes<R>(_ data: Data?, _ body: (UnsafePointer<UInt8>?, Int) -> R) -> R {
    guard let data else { return body(nil, 0) }
    return data.withUnsafeBytes { raw in
        body(raw.bindMemory(to: UInt8.self).baseAddress, raw.count)
    }
}

extension HTTPRequest {
    /// The same request, writing its body at `offset` of the download file.
    func with(offset: Int64) -> HTTPRequest {
        var copy = self
        copy.downloadOffset = offset
        return copy
    }
}
