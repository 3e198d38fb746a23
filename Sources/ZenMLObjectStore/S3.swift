import Crypto
import Foundation
import ZenMLCore

/// AWS credentials. `description` never shows the secret.
public struct S3Credentials: Sendable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "S3Credentials(\(accessKeyID), secret hidden)" }

    /// From `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else from the profile
    /// `AWS_PROFILE` (default `default`) of `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Credentials {
        if let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty {
            guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw ObjectStoreError.missingCredentials(service: "S3", variable: "AWS_SECRET_ACCESS_KEY", detail: "AWS_ACCESS_KEY_ID is set without it")
            }
            return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? home + "/.aws/credentials"
        let profile = environment["AWS_PROFILE"] ?? "default"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ObjectStoreError.missingCredentials(
                service: "S3", variable: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                detail: "or write them to profile [\(profile)] of \(file)")
        }
        var section = ""
        var values: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.hasPrefix(";") || line.isEmpty { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard section == profile, let equals = line.firstIndex(of: "=") else { continue }
            values[line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()] =
                line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard let key = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else {
            throw ObjectStoreError.missingCredentials(
                service: "S3", variable: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                detail: "profile [\(profile)] of \(file) has no aws_access_key_id/aws_secret_access_key; choose another with AWS_PROFILE")
        }
        return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: values["aws_session_token"])
    }
}

/// AWS Signature Version 4 for header-signed requests.
public struct SigV4Signer: Sendable {
    public var credentials: S3Credentials
    public var region: String
    public var service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The `Authorization` header for a request. `headers` must hold every header to sign
    /// (`host`, `x-amz-date`, and for S3 `x-amz-content-sha256`); `path` is already URI-encoded
    /// and `query` holds decoded names and values.
    public func authorization(method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String, date: Date) -> String {
        let (amzDate, day) = Self.timestamps(date)
        let encoded: [(String, String)] = query.map { (percentEncode($0.0), percentEncode($0.1)) }
        let sortedQuery = encoded.sorted { (left: (String, String), right: (String, String)) -> Bool in
            left.0 == right.0 ? left.1 < right.1 : left.0 < right.0
        }
        let canonicalQuery = sortedQuery.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
        var normalized: [(String, String)] = []
        for (name, value) in headers {
            let collapsed = value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            normalized.append((name.lowercased(), collapsed))
        }
        normalized.sort { $0.0 < $1.0 }
        let canonicalHeaders = normalized.map { "\($0.0):\($0.1)\n" }.joined()
        let signedHeaders = normalized.map(\.0).joined(separator: ";")
        let canonicalRequest = [method, path.isEmpty ? "/" : path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(SHA256.hash(data: Data(canonicalRequest.utf8)))].joined(separator: "\n")
        var key = SymmetricKey(data: Data(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// `20150830T123600Z` and `20150830`, in UTC.
    public static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        let day = String(format: "%04d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
        return (day + String(format: "T%02d%02d%02dZ", Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec)), day)
    }
}

/// A bucket on S3 or an S3-compatible server (path-style addressing when an endpoint is given).
public struct S3ObjectStore: ObjectStore {
    public let bucket: String
    public let region: String
    /// `http(s)://host:port` of an S3-compatible server; `nil` for AWS.
    public let endpoint: String?
    public let settings: TransferSettings
    /// Keys per ListObjectsV2 page (the server's default, 1000, when `nil`); tests lower it to page.
    var listPageSize: Int?
    private let signer: SigV4Signer
    private let client: HTTPClient

    public init(bucket: String, region: String = "us-east-1", endpoint: String? = nil, credentials: S3Credentials,
                settings: TransferSettings = .fromEnvironment(), client: HTTPClient = .shared) {
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.settings = settings
        self.signer = SigV4Signer(credentials: credentials, region: region)
        self.client = client
    }

    public var bucketURL: String { "s3://\(bucket)" }

    private var origin: (base: String, host: String, pathPrefix: String) {
        if let endpoint {
            let host = endpoint.components(separatedBy: "://").last.map { String($0.prefix { $0 != "/" }) } ?? endpoint
            return (endpoint, host, "/" + bucket)
        }
        let host = "\(bucket).s3.\(region).amazonaws.com"
        return ("https://" + host, host, "")
    }

    /// Builds and signs a request for `key` (empty for the bucket itself).
    func request(_ method: String, key: String, query: [(String, String)] = [], headers extra: [(String, String)] = [],
                 body: Data? = nil, downloadPath: String? = nil) -> HTTPRequest {
        let (base, host, pathPrefix) = origin
        let path = pathPrefix + (key.isEmpty ? (pathPrefix.isEmpty ? "/" : "") : "/" + percentEncode(key, keepSlash: true))
        let date = Date()
        // Bodies are integrity-checked by Content-MD5 (the server rejects a mismatch), so the
        // payload itself is not hashed a second time for the signature.
        let payloadHash = body == nil ? hex(SHA256.hash(data: Data())) : "UNSIGNED-PAYLOAD"
        var headers: [(String, String)] = [("host", host), ("x-amz-date", SigV4Signer.timestamps(date).amzDate), ("x-amz-content-sha256", payloadHash)]
        if let token = signer.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        headers += extra
        let authorization = signer.authorization(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash, date: date)
        let queryText = query.map { percentEncode($0.0) + ($0.1.isEmpty && $0.0 == "uploads" ? "" : "=" + percentEncode($0.1)) }.joined(separator: "&")
        return HTTPRequest(
            method: method, url: base + path + (queryText.isEmpty ? "" : "?" + queryText),
            headers: headers.filter { $0.0 != "host" }.map { (name: $0.0, value: $0.1) } + [(name: "Authorization", value: authorization)],
            body: body, downloadPath: downloadPath)
    }

    private func check(_ response: HTTPResponse, _ operation: String, _ key: String, accept: Set<Int> = [200]) throws {
        guard !accept.contains(response.status) else { return }
        let detail = errorDetail(response)
        if response.status == 403 && (detail.contains("SignatureDoesNotMatch") || detail.contains("InvalidAccessKeyId") || detail.contains("AccessDenied")) {
            throw ObjectStoreError.badCredentials(
                service: "S3 (\(endpoint ?? "AWS"))", variable: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)", detail: detail)
        }
        throw ObjectStoreError.server(operation: operation, url: "\(bucketURL)/\(key)", status: response.status, detail: detail)
    }

    /// Creates the bucket (tests and benchmarks); an existing bucket of ours is fine.
    public func createBucket() async throws {
        let response = try await client.send(request("PUT", key: "", headers: [("content-type", "application/xml")], body: Data()))
        if response.status == 409 && errorDetail(response).contains("BucketAlreadyOwnedByYou") { return }
        try check(response, "create the bucket", "", accept: [200])
    }

    public func put(_ key: String, data: Data) async throws -> ObjectInfo {
        let md5 = Data(Insecure.MD5.hash(data: data))
        let response = try await client.send(request(
            "PUT", key: key, headers: [("content-md5", md5.base64EncodedString()), ("content-type", "application/octet-stream")], body: data))
        try check(response, "upload", key)
        let etag = response.header("etag")?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? ""
        guard etag == hex(md5) else {
            throw ObjectStoreError.checksumMismatch(url: "\(bucketURL)/\(key)", detail: "ETag \(etag), expected MD5 \(hex(md5))")
        }
        return ObjectInfo(key: key, size: Int64(data.count), md5: etag, etag: etag)
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

    /// A multipart upload of every part, not completed. The file is read once: each part is
    /// hashed (the file's SHA-256, in order, and the part's MD5) just before it is sent from a
    /// mapping of the file, while up to `client.concurrency` earlier parts are on the wire.
    public func stage(_ key: String, file path: String) async throws -> any StagedUpload {
        let (descriptor, size) = try fileSize(path)
        defer { close(descriptor) }
        // Declaring CRC32 part checksums, as the AWS CLI does, lets the server check each part and
        // combine part checksums at completion; without it moto, for one, reads the whole object
        // again to checksum it (about 40% of a 1 GiB publish there).
        let created = try await client.send(request(
            "POST", key: key, query: [("uploads", "")],
            headers: [("content-type", "application/octet-stream"), ("x-amz-checksum-algorithm", "CRC32")], body: Data()))
        try check(created, "start a multipart upload of", key)
        guard let uploadID = xmlValue("UploadId", in: created.text) else {
            throw ObjectStoreError.server(operation: "start a multipart upload of", url: "\(bucketURL)/\(key)", status: created.status, detail: "no UploadId in the answer")
        }
        let partSize = max(settings.partSize, 5 << 20)
        let count = max(1, Int((size + partSize - 1) / partSize))
        var parts: [S3StagedUpload.Part] = []
        var checksummed = false
        var sha256 = SHA256()
        do {
            let file = try FileMapping(descriptor: descriptor, size: size, path: path)
            // The mapping must outlive every part request, also those still running when one fails.
            defer { withExtendedLifetime(file) {} }
            checksummed = try await withThrowingTaskGroup(of: Bool.self) { group in
                var echoed = true
                var running = 0
                for number in 1...count {
                    let offset = Int64(number - 1) * partSize
                    let length = min(partSize, size - offset)
                    let (md5, crc32) = hashPart(file.bytes(offset: offset, length: length), into: &sha256)
                    let part = S3StagedUpload.Part(md5: md5, crc32: crc32)
                    parts.append(part)
                    if running >= client.concurrency, let answered = try await group.next() {
                        echoed = echoed && answered
                        running -= 1
                    }
                    let chunk = file.slice(offset: offset, length: length)
                    group.addTask { try await uploadPart(key, uploadID: uploadID, number: number, chunk: chunk, part: part) }
                    running += 1
                }
                for try await answered in group { echoed = echoed && answered }
                return echoed
            }
            // Every byte was hashed and sent from the mapping: a file that shrank meanwhile sent zeros.
            try file.checkUnchangedForUpload(descriptor: descriptor)
        } catch {
            _ = try? await client.send(request("DELETE", key: key, query: [("uploadId", uploadID)]), retries: 1)
            throw error
        }
        guard let digest = ZenMLCore.Digest(hex: hex(sha256.finalize())) else { preconditionFailure("a SHA-256 has 64 hex digits") }
        return S3StagedUpload(store: self, key: key, uploadID: uploadID, size: size, sha256: digest, parts: parts, checksummed: checksummed)
    }

    /// Sends one part; returns whether the server checked its CRC32 (it echoes it).
    private func uploadPart(_ key: String, uploadID: String, number: Int, chunk: Data, part: S3StagedUpload.Part) async throws -> Bool {
        let md5 = part.md5
        // Content-MD5 makes the server refuse a part that arrives damaged (or changed after it
        // was hashed); the ETag it answers confirms what it stored.
        let response = try await client.send(request(
            "PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
            headers: [
                ("content-md5", md5.base64EncodedString()), ("content-type", "application/octet-stream"),
                ("x-amz-checksum-crc32", part.crc32Base64),
            ], body: chunk))
        try check(response, "upload part \(number) of", key)
        let etag = response.header("etag")?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? ""
        guard etag == hex(md5) else {
            throw ObjectStoreError.checksumMismatch(url: "\(bucketURL)/\(key)", detail: "part \(number) has ETag \(etag), expected MD5 \(hex(md5))")
        }
        guard let crc32 = response.header("x-amz-checksum-crc32") else { return false }
        guard crc32 == part.crc32Base64 else {
            throw ObjectStoreError.checksumMismatch(url: "\(bucketURL)/\(key)", detail: "part \(number) has CRC32 \(crc32), expected \(part.crc32Base64)")
        }
        return true
    }

    fileprivate func complete(_ upload: S3StagedUpload) async throws -> ObjectInfo {
        let key = upload.key
        let count = upload.parts.count
        let body = "<CompleteMultipartUpload>"
            + upload.parts.enumerated().map {
                // Part checksums are listed only to a server that checked them (Swift's s3api
                // refuses the element).
                "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\"\(hex($0.element.md5))\"</ETag>"
                    + (upload.checksummed ? "<ChecksumCRC32>\($0.element.crc32Base64)</ChecksumCRC32>" : "") + "</Part>"
            }.joined()
            + "</CompleteMultipartUpload>"
        do {
            let completed = try await client.send(request("POST", key: key, query: [("uploadId", upload.uploadID)], headers: [("content-type", "application/xml")], body: Data(body.utf8)))
            // S3 can answer 200 with an error document after a long wait.
            if completed.status == 200 && completed.text.contains("<Error>") {
                throw ObjectStoreError.server(operation: "complete the upload of", url: "\(bucketURL)/\(key)", status: 200, detail: errorDetail(completed))
            }
            try check(completed, "complete the upload of", key)
        } catch {
            await abort(upload)
            throw error
        }
        let expected = hex(Insecure.MD5.hash(data: upload.parts.reduce(into: Data()) { $0.append($1.md5) })) + "-\(count)"
        guard let info = try await head(key), info.size == upload.size, info.etag == expected else {
            throw ObjectStoreError.checksumMismatch(url: "\(bucketURL)/\(key)", detail: "after the multipart upload the object is not \(upload.size) bytes with ETag \(expected)")
        }
        return info
    }

    fileprivate func abort(_ upload: S3StagedUpload) async {
        _ = try? await client.send(request("DELETE", key: upload.key, query: [("uploadId", upload.uploadID)]), retries: 1)
    }

    public func get(_ key: String, to path: String, expectedSize: Int64?) async throws -> ObjectInfo? {
        if let expectedSize, expectedSize >= settings.multipartThreshold {
            let partSize = max(settings.partSize, 1 << 20)
            let found = try await rangedDownload(path: path, size: expectedSize, partSize: partSize, concurrency: client.concurrency, url: "\(bucketURL)/\(key)") { offset, length in
                try await client.send(request("GET", key: key, headers: [("range", "bytes=\(offset)-\(offset + length - 1)")], downloadPath: path).with(offset: offset))
            }
            return found ? ObjectInfo(key: key, size: expectedSize, md5: nil, etag: nil) : nil
        }
        let response = try await client.send(request("GET", key: key, downloadPath: path))
        if response.status == 404 { return nil }
        try check(response, "download", key)
        let size = Int64(response.header("content-length") ?? "") ?? -1
        let info = Self.info(key, response, size: size)
        var status = stat()
        guard stat(path, &status) == 0, size < 0 || Int64(status.st_size) == size else {
            throw ObjectStoreError.checksumMismatch(url: "\(bucketURL)/\(key)", detail: "the download is not \(size) bytes long")
        }
        return info
    }

    public func data(_ key: String) async throws -> Data? {
        let response = try await client.send(request("GET", key: key))
        if response.status == 404 { return nil }
        try check(response, "download", key)
        return response.body
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        let response = try await client.send(request("HEAD", key: key))
        if response.status == 404 { return nil }
        if response.status == 403 {
            throw ObjectStoreError.badCredentials(service: "S3 (\(endpoint ?? "AWS"))", variable: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)", detail: "HEAD \(bucketURL)/\(key) got 403")
        }
        try check(response, "look up", key)
        return Self.info(key, response, size: Int64(response.header("content-length") ?? "") ?? 0)
    }

    private static func info(_ key: String, _ response: HTTPResponse, size: Int64) -> ObjectInfo {
        let etag = response.header("etag")?.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return ObjectInfo(key: key, size: size, md5: etag.flatMap { $0.contains("-") ? nil : $0 }, etag: etag)
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        var objects: [ObjectInfo] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let listPageSize { query.append(("max-keys", String(listPageSize))) }
            if let token { query.append(("continuation-token", token)) }
            let response = try await client.send(request("GET", key: "", query: query))
            try check(response, "list", prefix + "*")
            let text = response.text
            var rest = text[...]
            while let start = rest.range(of: "<Contents>"), let end = rest.range(of: "</Contents>", range: start.upperBound..<rest.endIndex) {
                let item = rest[start.upperBound..<end.lowerBound]
                if let key = xmlValues("Key", in: item).first {
                    let etag = xmlValues("ETag", in: item).first?.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    objects.append(ObjectInfo(key: key, size: Int64(xmlValues("Size", in: item).first ?? "") ?? 0,
                                              md5: etag.flatMap { $0.contains("-") ? nil : $0 }, etag: etag))
                }
                rest = rest[end.upperBound...]
            }
            token = xmlValue("IsTruncated", in: text) == "true" ? xmlValue("NextContinuationToken", in: text) : nil
        } while token != nil
        return objects
    }

    public func delete(_ key: String) async throws {
        let response = try await client.send(request("DELETE", key: key))
        try check(response, "delete", key, accept: [200, 204, 404])
    }
}

/// A multipart upload with every part sent and checked, not completed: invisible until `commit`.
struct S3StagedUpload: StagedUpload {
    let store: S3ObjectStore
    let key: String
    let uploadID: String
    let size: Int64
    let sha256: ZenMLCore.Digest
    /// Every part's checksums, in order.
    let parts: [Part]
    /// Whether the server checked and echoed every part's CRC32.
    let checksummed: Bool

    struct Part: Sendable {
        var md5: Data
        var crc32: UInt32
        /// As S3 headers and completion documents carry it: the big-endian bytes in base64.
        var crc32Base64: String { withUnsafeBytes(of: crc32.bigEndian) { Data($0) }.base64EncodedString() }
    }

    func commit() async throws -> ObjectInfo { try await store.complete(self) }
    func abort() async { await store.abort(self) }
}

extension S3ObjectStore: CreateOnlyObjectStore {
    /// A PUT with `If-None-Match: *` (S3 answers 412 if the object exists, 409 while another
    /// conditional write of the key is in flight; OpenStack Swift's s3api answers 501).
    /// Kept apart from `put` so the create-only path stays small and the upload path can change freely.
    public func create(_ key: String, data: Data) async throws -> CreateOutcome {
        let md5 = Data(Insecure.MD5.hash(data: data))
        var attempt = 0
        while true {
            let response = try await client.send(request(
                "PUT", key: key,
                headers: [("content-md5", md5.base64EncodedString()), ("content-type", "application/octet-stream"), ("if-none-match", "*")],
                body: data), retries: 0)
            if response.status == 412 { return .exists }
            if response.status == 501 { return .unsupported }
            if (response.status == 409 || isTransient(response.status)) && attempt < 3 {
                attempt += 1
                try await Task.sleep(nanoseconds: UInt64(250_000_000 << attempt))
                continue
            }
            try check(response, "create", key)
            let etag = response.header("etag")?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? ""
            guard etag == hex(md5) else {
                throw ObjectStoreError.checksumMismatch(url: "\(bucketURL)/\(key)", detail: "ETag \(etag), expected MD5 \(hex(md5))")
            }
            return .created
        }
    }
}
