import _CryptoExtras
import Crypto
import Foundation
import ZenMLCore

/// Where GCS access tokens come from.
public enum GCSCredentials: Sendable {
    /// A ready OAuth access token (from `ZENML_GCS_TOKEN` or `GOOGLE_OAUTH_ACCESS_TOKEN`).
    case token(String)
    /// A service account key: a signed JWT is exchanged for tokens at its token URI.
    case serviceAccount(ServiceAccount)
    /// No authentication (an emulator).
    case none

    public struct ServiceAccount: Sendable {
        public var clientEmail: String
        public var privateKeyPEM: String
        public var tokenURI: String
        /// The file it came from, for messages.
        public var path: String
    }

    /// `ZENML_GCS_TOKEN`, `GOOGLE_OAUTH_ACCESS_TOKEN`, then `GOOGLE_APPLICATION_CREDENTIALS`;
    /// none at all is accepted only with `STORAGE_EMULATOR_HOST` (emulators do not check).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GCSCredentials {
        for variable in ["ZENML_GCS_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN"] {
            if let token = environment[variable], !token.isEmpty { return .token(token) }
        }
        if let path = environment["GOOGLE_APPLICATION_CREDENTIALS"], !path.isEmpty {
            return .serviceAccount(try loadServiceAccount(path))
        }
        if environment["STORAGE_EMULATOR_HOST"] != nil { return .none }
        throw ObjectStoreError.missingCredentials(
            service: "Google Cloud Storage", variable: "GOOGLE_APPLICATION_CREDENTIALS",
            detail: "to a service account key file, or put an access token in ZENML_GCS_TOKEN")
    }

    static func loadServiceAccount(_ path: String) throws -> ServiceAccount {
        let bad = { (why: String) in
            ObjectStoreError.badCredentials(service: "Google Cloud Storage", variable: "GOOGLE_APPLICATION_CREDENTIALS", detail: "\(path): \(why)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw bad("no such readable file") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw bad("not a JSON key file") }
        guard object["type"] as? String == "service_account", let email = object["client_email"] as? String,
              let key = object["private_key"] as? String else {
            throw bad("not a service account key (needs type service_account, client_email, private_key)")
        }
        return ServiceAccount(clientEmail: email, privateKeyPEM: key, tokenURI: object["token_uri"] as? String ?? "https://oauth2.googleapis.com/token", path: path)
    }
}

extension GCSCredentials.ServiceAccount {
    /// The RS256-signed JWT that asks the token URI for a read-write storage token.
    public func assertion(now: Date = Date()) throws -> String {
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        } catch {
            throw ObjectStoreError.badCredentials(service: "Google Cloud Storage", variable: "GOOGLE_APPLICATION_CREDENTIALS", detail: "\(path): the private_key is not a usable RSA key")
        }
        let issued = Int(now.timeIntervalSince1970)
        let header = #"{"alg":"RS256","typ":"JWT"}"#
        let claims: [String: Any] = [
            "iss": clientEmail, "scope": "https://www.googleapis.com/auth/devstorage.read_write",
            "aud": tokenURI, "iat": issued, "exp": issued + 3600,
        ]
        let claimData = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        let signingInput = base64URL(Data(header.utf8)) + "." + base64URL(claimData)
        let signature = try key.signature(for: SHA256.hash(data: Data(signingInput.utf8)), padding: .insecurePKCS1v1_5)
        return signingInput + "." + base64URL(signature.rawRepresentation)
    }
}

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// Access tokens, fetched once and renewed a minute before they expire.
actor GCSTokenSource {
    let credentials: GCSCredentials
    let client: HTTPClient
    private var cached: (token: String, expires: Date)?

    init(credentials: GCSCredentials, client: HTTPClient) {
        self.credentials = credentials
        self.client = client
    }

    func authorization() async throws -> String? {
        switch credentials {
        case .none: return nil
        case .token(let token): return "Bearer " + token
        case .serviceAccount(let account):
            if let cached, cached.expires > Date().addingTimeInterval(60) { return "Bearer " + cached.token }
            let body = "grant_type=" + percentEncode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + (try account.assertion())
            let response = try await client.send(HTTPRequest(
                method: "POST", url: account.tokenURI, headers: [(name: "Content-Type", value: "application/x-www-form-urlencoded")], body: Data(body.utf8)))
            guard response.status == 200, let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
                  let token = object["access_token"] as? String else {
                let reason = (try? JSONSerialization.jsonObject(with: response.body) as? [String: Any])?["error_description"] as? String ?? "HTTP \(response.status)"
                throw ObjectStoreError.badCredentials(
                    service: "Google Cloud Storage", variable: "GOOGLE_APPLICATION_CREDENTIALS", detail: "\(account.path) was refused by \(account.tokenURI): \(reason)")
            }
            let lifetime = (object["expires_in"] as? Int).map(TimeInterval.init) ?? 3600
            cached = (token, Date().addingTimeInterval(lifetime))
            return "Bearer " + token
        }
    }
}

/// A bucket on Google Cloud Storage's JSON API, or on an emulator (`STORAGE_EMULATOR_HOST`).
public struct GCSObjectStore: ObjectStore {
    public let bucket: String
    /// `https://storage.googleapis.com` or the emulator's origin.
    public let endpoint: String
    public let settings: TransferSettings
    private let tokens: GCSTokenSource
    private let client: HTTPClient

    public init(bucket: String, endpoint: String? = nil, credentials: GCSCredentials,
                settings: TransferSettings = .fromEnvironment(), client: HTTPClient = .shared) {
        self.bucket = bucket
        var base = endpoint ?? "https://storage.googleapis.com"
        if !base.contains("://") { base = "http://" + base }
        self.endpoint = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.settings = settings
        self.tokens = GCSTokenSource(credentials: credentials, client: client)
        self.client = client
    }

    /// A store for `bucket` configured from the environment (emulator host, credentials).
    public static func fromEnvironment(bucket: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                                       settings: TransferSettings = .fromEnvironment()) throws -> GCSObjectStore {
        GCSObjectStore(bucket: bucket, endpoint: environment["STORAGE_EMULATOR_HOST"], credentials: try GCSCredentials.fromEnvironment(environment), settings: settings)
    }

    public var bucketURL: String { "gs://\(bucket)" }

    private func objectURL(_ key: String) -> String { "\(endpoint)/storage/v1/b/\(percentEncode(bucket))/o/\(percentEncode(key))" }

    private func send(_ method: String, _ url: String, headers: [(name: String, value: String)] = [], body: Data? = nil, downloadPath: String? = nil) async throws -> HTTPResponse {
        var headers = headers
        if let authorization = try await tokens.authorization() { headers.append((name: "Authorization", value: authorization)) }
        return try await client.send(HTTPRequest(method: method, url: url, headers: headers, body: body, downloadPath: downloadPath))
    }

    private func check(_ response: HTTPResponse, _ operation: String, _ key: String, accept: Set<Int> = [200]) throws {
        guard !accept.contains(response.status) else { return }
        if response.status == 401 || response.status == 403 {
            throw ObjectStoreError.badCredentials(
                service: "Google Cloud Storage", variable: "GOOGLE_APPLICATION_CREDENTIALS (or ZENML_GCS_TOKEN)",
                detail: "\(operation) \(bucketURL)/\(key): HTTP \(response.status) \(errorDetail(response))")
        }
        throw ObjectStoreError.server(operation: operation, url: "\(bucketURL)/\(key)", status: response.status, detail: errorDetail(response))
    }

    private struct Resource: Decodable {
        var name: String
        var size: String?
        var md5Hash: String?
        var generation: String?
    }

    private func info(_ resource: Resource) -> ObjectInfo {
        ObjectInfo(key: resource.name, size: Int64(resource.size ?? "") ?? 0,
                   md5: resource.md5Hash.flatMap { Data(base64Encoded: $0) }.map { hex($0) }, etag: resource.generation)
    }

    /// Creates the bucket (tests and benchmarks); an existing one is fine.
    public func createBucket(project: String = "test") async throws {
        let response = try await send("POST", "\(endpoint)/storage/v1/b?project=\(percentEncode(project))",
                                      headers: [(name: "Content-Type", value: "application/json")], body: try JSONSerialization.data(withJSONObject: ["name": bucket]))
        try check(response, "create the bucket", "", accept: [200, 409])
    }

    private func verified(_ response: HTTPResponse, key: String, size: Int64, md5: Data) throws -> ObjectInfo {
        guard let resource = try? JSONDecoder().decode(Resource.self, from: response.body) else {
            throw ObjectStoreError.server(operation: "upload", url: "\(bucketURL)/\(key)", status: response.status, detail: "the answer is not an object resource")
        }
        let info = info(resource)
        guard info.size == size, info.md5 == hex(md5) else {
            throw ObjectStoreError.checksumMismatch(
                url: "\(bucketURL)/\(key)", detail: "stored \(info.size) bytes with MD5 \(info.md5 ?? "none"), sent \(size) bytes with MD5 \(hex(md5))")
        }
        return info
    }

    /// The body of a multipart upload: the object's metadata (name and MD5, which GCS checks
    /// before it stores the object) and its bytes, the boundary between them, and the MD5.
    func multipartBody(_ key: String, data: Data) throws -> (body: Data, boundary: String, md5: Data) {
        let md5 = Data(Insecure.MD5.hash(data: data))
        let boundary = "zenml-" + hex((0..<16).map { _ in UInt8.random(in: 0...255) })
        let metadata = try JSONSerialization.data(withJSONObject: ["name": key, "md5Hash": md5.base64EncodedString()], options: [.sortedKeys])
        var body = Data("--\(boundary)\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".utf8)
        body.append(metadata)
        body.append(Data("\r\n--\(boundary)\r\nContent-Type: application/octet-stream\r\n\r\n".utf8))
        body.append(data)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        return (body, boundary, md5)
    }

    /// A multipart upload (metadata and media in one request): the metadata carries the MD5, which
    /// GCS checks before it stores the object. (Also the only form the emulator accepts for 0 bytes.)
    public func put(_ key: String, data: Data) async throws -> ObjectInfo {
        let (body, boundary, md5) = try multipartBody(key, data: data)
        let response = try await send(
            "POST", "\(endpoint)/upload/storage/v1/b/\(percentEncode(bucket))/o?uploadType=multipart",
            headers: [(name: "Content-Type", value: "multipart/related; boundary=\(boundary)")], body: body)
        try check(response, "upload", key)
        return try verified(response, key: key, size: Int64(data.count), md5: md5)
    }

    public func put(_ key: String, file path: String) async throws -> ObjectInfo {
        let (descriptor, size) = try fileSize(path)
        defer { close(descriptor) }
        if size < settings.multipartThreshold {
            return try await ByteBudget.shared.with(size) {
                try await put(key, data: try readChunk(descriptor, offset: 0, length: Int(size), path: path))
            }
        }
        return try await stage(key, file: path).commit()
    }

    /// A resumable upload of all chunks but the last, which ``StagedUpload/commit()`` sends: GCS
    /// creates the object only with the last byte. Chunks go one after the other (the protocol is
    /// sequential), each a multiple of 256 KiB but the last, hashed (the file's SHA-256 and MD5)
    /// from a mapping of the file just before it is first sent.
    ///
    /// The server may keep less of a chunk than was sent (its 308 answer's `Range` says how much),
    /// and a dropped connection leaves unknown how much arrived: the next chunk starts where the
    /// server says it has the bytes up to (asked with a status query after a failure), never where
    /// this side stopped sending. Resending blindly would duplicate or skip bytes.
    public func stage(_ key: String, file path: String) async throws -> any StagedUpload {
        let (descriptor, size) = try fileSize(path)
        defer { close(descriptor) }
        let started = try await send(
            "POST", "\(endpoint)/upload/storage/v1/b/\(percentEncode(bucket))/o?uploadType=resumable&name=\(percentEncode(key))",
            headers: [(name: "Content-Type", value: "application/json"), (name: "X-Upload-Content-Type", value: "application/octet-stream")],
            body: try JSONSerialization.data(withJSONObject: ["name": key]))
        try check(started, "start a resumable upload of", key)
        guard let session = started.header("location") else {
            throw ObjectStoreError.server(operation: "start a resumable upload of", url: "\(bucketURL)/\(key)", status: started.status, detail: "no Location header")
        }
        let chunkSize = max(256 << 10, settings.partSize / (256 << 10) * (256 << 10))
        var md5 = Insecure.MD5()
        var sha256 = SHA256()
        var hashed: Int64 = 0
        // The bytes the server has kept (all of them up to here, by its own answer).
        var offset: Int64 = 0
        let file = try FileMapping(descriptor: descriptor, size: size, path: path)
        do {
            var stalls = 0
            while true {
                let length = min(chunkSize, size - offset)
                if offset + length > hashed {
                    let bytes = file.bytes(offset: hashed, length: offset + length - hashed)
                    sha256.update(bufferPointer: bytes)
                    md5.update(bufferPointer: bytes)
                    hashed = offset + length
                }
                if offset + length == size { break }
                let response = try await sendChunk(
                    session, range: "bytes \(offset)-\(offset + length - 1)/*", offset: offset, body: file.slice(offset: offset, length: length), total: "*", stalls: stalls)
                guard response.status == 308 else {
                    try check(response, "upload a chunk of", key, accept: [])
                    throw ObjectStoreError.server(operation: "upload", url: "\(bucketURL)/\(key)", status: response.status, detail: "the resumable upload ended early")
                }
                let kept = try keptBytes(response, key: key)
                guard kept >= offset, kept <= offset + length else {
                    throw ObjectStoreError.server(
                        operation: "upload", url: "\(bucketURL)/\(key)", status: 308,
                        detail: "the server says it has the first \(kept) bytes, after bytes \(offset)-\(offset + length - 1) were sent")
                }
                stalls = try stalled(kept > offset, stalls, key: key, offset: offset)
                offset = kept
            }
            try file.checkUnchangedForUpload(descriptor: descriptor)
        } catch {
            _ = try? await send("DELETE", session)
            throw error
        }
        guard let digest = ZenMLCore.Digest(hex: hex(sha256.finalize())) else { preconditionFailure("a SHA-256 has 64 hex digits") }
        return GCSStagedUpload(store: self, key: key, session: session, file: file, lastOffset: offset, size: size, sha256: digest, md5: Data(md5.finalize()))
    }

    /// Rounds in a row in which the server kept no more of an upload, before it fails.
    static let chunkRetries = 4

    /// Sends a chunk once; without an answer, or with a transient one, waits (backing off by
    /// `stalls`) and asks the server what it has instead (a status query, `bytes */TOTAL`): a
    /// chunk is sent again only from where the server says it has the bytes up to.
    ///
    /// libcurl itself sends a request again when the reused connection it went out on turns out to
    /// be closed before any answer; if the server had kept part of the chunk, it refuses the copy
    /// (400, the start is not where it stands). Such a refusal is checked with a status query too,
    /// and the upload goes on if the server does have more than `offset` bytes.
    private func sendChunk(_ session: String, range: String, offset: Int64, body: Data, total: String, stalls: Int) async throws -> HTTPResponse {
        var headers = [(name: "Content-Range", value: range), (name: "Content-Type", value: "application/octet-stream")]
        if let authorization = try await tokens.authorization() { headers.append((name: "Authorization", value: authorization)) }
        do {
            var response = try await client.send(HTTPRequest(method: "PUT", url: session, headers: headers, body: body), retries: 0)
            response.attempts = stalls + 1
            if response.status == 400 {
                let status = try await send("PUT", session, headers: [(name: "Content-Range", value: "bytes */\(total)")], body: Data())
                if status.status == 308, let kept = try? keptBytes(status), kept > offset { return status }
                return response
            }
            if !isTransient(response.status) || stalls >= Self.chunkRetries { return response }
        } catch var error as HTTPTransportError {
            guard error.isRetryable && stalls < Self.chunkRetries else {
                error.attempts = stalls + 1
                throw error
            }
        }
        try await Task.sleep(nanoseconds: UInt64(0.25 * Double(1 << stalls) * Double.random(in: 0.5...1.5) * 1e9))
        return try await send("PUT", session, headers: [(name: "Content-Range", value: "bytes */\(total)")], body: Data())
    }

    /// Counts a round of an upload: `stalls` back to 0 when the server kept more, else one more
    /// (and the upload fails after ``chunkRetries``).
    private func stalled(_ progressed: Bool, _ stalls: Int, key: String, offset: Int64) throws -> Int {
        if progressed { return 0 }
        guard stalls < Self.chunkRetries else {
            throw ObjectStoreError.server(
                operation: "upload", url: "\(bucketURL)/\(key)", status: 308,
                detail: "the server kept nothing past byte \(offset) in \(stalls + 1) attempts; run again later")
        }
        return stalls + 1
    }

    /// How many bytes a 308 answer says the server has: its `Range: bytes=0-N` (none without one).
    /// `bytes=0-0` is read as none: the GCS emulator answers so for an empty upload, and GCS
    /// itself never keeps a single byte of a chunk (it keeps multiples of 256 KiB).
    private func keptBytes(_ response: HTTPResponse, key: String = "") throws -> Int64 {
        guard let range = response.header("range") else { return 0 }
        guard range.hasPrefix("bytes=0-"), let last = Int64(range.dropFirst("bytes=0-".count)) else {
            throw ObjectStoreError.server(operation: "upload", url: "\(bucketURL)/\(key)", status: response.status, detail: "unreadable Range '\(range)' in the answer")
        }
        return last == 0 ? 0 : last + 1
    }

    fileprivate func finish(_ upload: GCSStagedUpload) async throws -> ObjectInfo {
        var offset = upload.lastOffset
        let size = upload.size
        var stalls = 0
        var response: HTTPResponse
        // The last chunk creates the object; until an answer says so, the server may have kept only
        // part of it (308), or the connection may have dropped with the object created or not.
        while true {
            response = try await sendChunk(
                upload.session, range: size == 0 ? "bytes */0" : "bytes \(offset)-\(size - 1)/\(size)", offset: offset,
                body: upload.file.slice(offset: offset, length: size - offset), total: String(size), stalls: stalls)
            guard response.status == 308 else { break }
            let kept = try keptBytes(response, key: upload.key)
            guard kept >= offset, kept < max(size, 1) else {
                throw ObjectStoreError.server(
                    operation: "finish the upload of", url: "\(bucketURL)/\(upload.key)", status: 308,
                    detail: "the server says it has the first \(kept) bytes, after bytes \(offset)-\(size - 1) were sent")
            }
            stalls = try stalled(kept > offset, stalls, key: upload.key, offset: offset)
            offset = kept
        }
        // A status query about an upload that the lost answer had completed: GCS answers with the
        // object; the emulator has forgotten the session (404), so the object itself is checked.
        if response.status == 404, let info = try await head(upload.key), info.size == size, info.md5 == hex(upload.md5) {
            withExtendedLifetime(upload.file) {}
            return info
        }
        withExtendedLifetime(upload.file) {}
        try check(response, "finish the upload of", upload.key, accept: [200, 201])
        if upload.file.shrank {
            throw ObjectStoreError.unreadableFile(path: upload.file.path, reason: "it changed size while being uploaded (it was \(size) bytes); nothing was published")
        }
        return try verified(response, key: upload.key, size: size, md5: upload.md5)
    }

    fileprivate func cancel(_ upload: GCSStagedUpload) async {
        _ = try? await send("DELETE", upload.session)
    }

    public func get(_ key: String, to path: String, expectedSize: Int64?) async throws -> ObjectInfo? {
        if let expectedSize, expectedSize >= settings.multipartThreshold {
            let partSize = max(settings.partSize, 1 << 20)
            let url = objectURL(key) + "?alt=media"
            let found = try await rangedDownload(path: path, size: expectedSize, partSize: partSize, concurrency: client.concurrency, url: "\(bucketURL)/\(key)") { offset, length in
                var request = HTTPRequest(method: "GET", url: url, headers: [(name: "Range", value: "bytes=\(offset)-\(offset + length - 1)")], downloadPath: path, downloadOffset: offset)
                if let authorization = try await tokens.authorization() { request.headers.append((name: "Authorization", value: authorization)) }
                return try await client.send(request)
            }
            return found ? ObjectInfo(key: key, size: expectedSize, md5: nil, etag: nil) : nil
        }
        let response = try await send("GET", objectURL(key) + "?alt=media", downloadPath: path)
        if response.status == 404 { return nil }
        try check(response, "download", key)
        var status = stat()
        guard stat(path, &status) == 0 else { throw ObjectStoreError.unreadableFile(path: path, reason: "the download left no file") }
        if let expected = response.header("x-goog-stored-content-length").flatMap(Int64.init), expected != Int64(status.st_size) {
            throw ObjectStoreError.checksumMismatch(url: "\(bucketURL)/\(key)", detail: "downloaded \(status.st_size) of \(expected) bytes")
        }
        return ObjectInfo(key: key, size: Int64(status.st_size), md5: nil, etag: response.header("x-goog-generation"))
    }

    public func data(_ key: String) async throws -> Data? {
        let response = try await send("GET", objectURL(key) + "?alt=media")
        if response.status == 404 { return nil }
        try check(response, "download", key)
        return response.body
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        let response = try await send("GET", objectURL(key))
        if response.status == 404 { return nil }
        try check(response, "look up", key)
        guard let resource = try? JSONDecoder().decode(Resource.self, from: response.body) else {
            throw ObjectStoreError.server(operation: "look up", url: "\(bucketURL)/\(key)", status: response.status, detail: "the answer is not an object resource")
        }
        return info(resource)
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        struct Page: Decodable { var items: [Resource]?; var nextPageToken: String? }
        var objects: [ObjectInfo] = []
        var token: String?
        repeat {
            var url = "\(endpoint)/storage/v1/b/\(percentEncode(bucket))/o?prefix=\(percentEncode(prefix))"
            if let token { url += "&pageToken=" + percentEncode(token) }
            let response = try await send("GET", url)
            try check(response, "list", prefix + "*")
            let page = try JSONDecoder().decode(Page.self, from: response.body)
            objects += (page.items ?? []).map(info)
            token = page.nextPageToken
        } while token != nil
        return objects
    }

    public func delete(_ key: String) async throws {
        let response = try await send("DELETE", objectURL(key))
        try check(response, "delete", key, accept: [200, 204, 404])
    }
}

extension GCSObjectStore: CreateOnlyObjectStore {
    /// A multipart upload with `ifGenerationMatch=0` (GCS answers 412 if the object exists).
    /// Kept apart from `put` so the create-only path stays small and the upload path can change freely.
    public func create(_ key: String, data: Data) async throws -> CreateOutcome {
        let (body, boundary, md5) = try multipartBody(key, data: data)
        let url = "\(endpoint)/upload/storage/v1/b/\(percentEncode(bucket))/o?uploadType=multipart&ifGenerationMatch=0"
        var attempt = 0
        while true {
            var headers = [(name: "Content-Type", value: "multipart/related; boundary=\(boundary)")]
            if let authorization = try await tokens.authorization() { headers.append((name: "Authorization", value: authorization)) }
            let response = try await client.send(HTTPRequest(method: "POST", url: url, headers: headers, body: body), retries: 0)
            if response.status == 412 { return .exists }
            if response.status == 501 { return .unsupported }
            if isTransient(response.status) && attempt < 3 {
                attempt += 1
                try await Task.sleep(nanoseconds: UInt64(250_000_000 << attempt))
                continue
            }
            try check(response, "create", key)
            _ = try verified(response, key: key, size: Int64(data.count), md5: md5)
            return .created
        }
    }
}

/// A resumable upload with every chunk but the last sent: invisible until `commit` sends it.
struct GCSStagedUpload: StagedUpload {
    let store: GCSObjectStore
    let key: String
    let session: String
    /// The mapping the last chunk is sent from (kept alive until then).
    let file: FileMapping
    let lastOffset: Int64
    let size: Int64
    let sha256: ZenMLCore.Digest
    let md5: Data

    func commit() async throws -> ObjectInfo { try await store.finish(self) }
    func abort() async { await store.cancel(self) }
}
