import Crypto
import _CryptoExtras
import Foundation
import XCTest
import ZenMLCore
@testable import ZenMLObjectStore

final class SigV4Tests: XCTestCase {
    /// AWS's test suite, `get-vanilla` (aws-sig-v4-test-suite).
    func testGetVanillaVector() {
        let signer = SigV4Signer(
            credentials: S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1", service: "service")
        let date = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z
        XCTAssertEqual(SigV4Signer.timestamps(date).amzDate, "20150830T123600Z")
        let authorization = signer.authorization(
            method: "GET", path: "/", query: [], headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: hex(SHA256.hash(data: Data())), date: date)
        XCTAssertEqual(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    /// The S3 documentation's "GET Object" example (Signature Version 4, header-based auth).
    func testS3GetObjectExample() {
        let signer = SigV4Signer(
            credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 20130524T000000Z
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let authorization = signer.authorization(
            method: "GET", path: "/test.txt", query: [],
            headers: [("host", "examplebucket.s3.amazonaws.com"), ("range", "bytes=0-9"), ("x-amz-content-sha256", empty), ("x-amz-date", "20130524T000000Z")],
            payloadHash: empty, date: date)
        XCTAssertEqual(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    /// The S3 documentation's "GET Bucket (List Objects)" example: query parameters are sorted and encoded.
    func testS3ListObjectsExample() {
        let signer = SigV4Signer(
            credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_369_353_600)
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let authorization = signer.authorization(
            method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")],
            headers: [("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", empty), ("x-amz-date", "20130524T000000Z")],
            payloadHash: empty, date: date)
        XCTAssertTrue(authorization.hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"), authorization)
    }
}

final class CredentialTests: XCTestCase {
    func testMissingS3CredentialsNameTheVariables() throws {
        let home = try Servers.temporaryDirectory()
        XCTAssertThrowsError(try S3Credentials.fromEnvironment(["HOME": home])) { error in
            XCTAssertTrue("\(error)".contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), "\(error)")
        }
        XCTAssertThrowsError(try S3Credentials.fromEnvironment(["HOME": home, "AWS_ACCESS_KEY_ID": "AKID"])) { error in
            XCTAssertTrue("\(error)".contains("set AWS_SECRET_ACCESS_KEY"), "\(error)")
        }
    }

    func testS3CredentialsFileProfiles() throws {
        let home = try Servers.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n\n[team]\naws_access_key_id=A2\naws_secret_access_key=S2\naws_session_token = T2\n"
            .write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        let first = try S3Credentials.fromEnvironment(["HOME": home])
        XCTAssertEqual([first.accessKeyID, first.secretAccessKey], ["A1", "S1"])
        let team = try S3Credentials.fromEnvironment(["HOME": home, "AWS_PROFILE": "team"])
        XCTAssertEqual([team.accessKeyID, team.secretAccessKey, team.sessionToken], ["A2", "S2", "T2"])
        XCTAssertFalse("\(team)".contains("S2"), "the secret is never printed")
        XCTAssertThrowsError(try S3Credentials.fromEnvironment(["HOME": home, "AWS_PROFILE": "nope"])) { error in
            XCTAssertTrue("\(error)".contains("AWS_PROFILE"), "\(error)")
        }
    }

    func testMissingOrBadGCSCredentialsNameTheVariable() throws {
        XCTAssertThrowsError(try GCSCredentials.fromEnvironment([:])) { error in
            XCTAssertTrue("\(error)".contains("set GOOGLE_APPLICATION_CREDENTIALS"), "\(error)")
        }
        let directory = try Servers.temporaryDirectory()
        try "{\"type\": \"authorized_user\"}".write(toFile: directory + "/key.json", atomically: true, encoding: .utf8)
        for path in [directory + "/absent.json", directory + "/key.json"] {
            XCTAssertThrowsError(try GCSCredentials.fromEnvironment(["GOOGLE_APPLICATION_CREDENTIALS": path])) { error in
                XCTAssertTrue("\(error)".contains("check GOOGLE_APPLICATION_CREDENTIALS"), "\(error)")
            }
        }
        guard case .token("abc") = try GCSCredentials.fromEnvironment(["ZENML_GCS_TOKEN": "abc"]) else { return XCTFail("token not used") }
    }

    /// The service-account JWT is RS256 over `header.claims`, verifiable with the key's public half.
    func testServiceAccountAssertionIsAVerifiableRS256JWT() throws {
        let key = try _RSA_SigningPrivateKey()
        let account = GCSCredentials.ServiceAccount(
            clientEmail: "runner@project.iam.gserviceaccount.com", privateKeyPEM: key.pemRepresentation, tokenURI: "https://oauth2.example/token", path: "key.json")
        let jwt = try account.assertion(now: Date(timeIntervalSince1970: 1_700_000_000))
        let parts = jwt.split(separator: ".").map(String.init)
        XCTAssertEqual(parts.count, 3)
        func decode(_ text: String) -> Data? {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            return Data(base64Encoded: base64)
        }
        let claims = try XCTUnwrap(try JSONSerialization.jsonObject(with: XCTUnwrap(decode(parts[1]))) as? [String: Any])
        XCTAssertEqual(claims["iss"] as? String, "runner@project.iam.gserviceaccount.com")
        XCTAssertEqual(claims["aud"] as? String, "https://oauth2.example/token")
        XCTAssertEqual(claims["exp"] as? Int, 1_700_003_600)
        XCTAssertTrue(try key.verify(signature: XCTUnwrap(decode(parts[2])), for: Data((parts[0] + "." + parts[1]).utf8)))
        XCTAssertFalse(try key.verify(signature: XCTUnwrap(decode(parts[2])), for: Data((parts[0] + "." + parts[1] + "x").utf8)))
    }
}

/// Upload, download, list and delete against each server.
final class ObjectStoreRoundTripTests: XCTestCase {
    func roundTrip(_ store: some ObjectStore, largeSize: Int) async throws {
        let directory = try Servers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // 0 bytes, small, and one over the multipart/resumable threshold.
        for (name, size) in [("empty", 0), ("small", 1000), ("large", largeSize)] {
            let data = Servers.randomData(size)
            try data.write(to: URL(fileURLWithPath: "\(directory)/\(name).in"))
            let uploaded = try await store.put("dir/\(name)", file: "\(directory)/\(name).in")
            XCTAssertEqual(uploaded.size, Int64(size))
            let info = try await store.get("dir/\(name)", to: "\(directory)/\(name).out")
            XCTAssertEqual(info?.size, Int64(size), name)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).out")), data, name)
            let head = try await store.head("dir/\(name)")
            XCTAssertEqual(head?.size, Int64(size), name)
            // With the size known, a large object comes down as parallel range requests.
            let ranged = try await store.get("dir/\(name)", to: "\(directory)/\(name).ranged", expectedSize: Int64(size))
            XCTAssertEqual(ranged?.size, Int64(size), name)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).ranged")), data, name)
        }
        let absent = try await store.get("dir/absent", to: "\(directory)/absent", expectedSize: 100 << 20)
        XCTAssertNil(absent)
        try await store.put("dir/sub/odd name+é.txt", data: Data("x".utf8))
        let keys = try await store.list(prefix: "dir/").map(\.key).sorted()
        XCTAssertEqual(keys, ["dir/empty", "dir/large", "dir/small", "dir/sub/odd name+é.txt"])
        let text = try await store.data("dir/sub/odd name+é.txt")
        XCTAssertEqual(text, Data("x".utf8))
        try await store.delete("dir/small")
        let gone = try await store.head("dir/small")
        XCTAssertNil(gone)
        let missing = try await store.get("dir/small", to: "\(directory)/missing")
        XCTAssertNil(missing)
        try await store.delete("dir/small")  // deleting twice is fine
        try await stagedUploads(store, size: largeSize, in: directory)
    }

    /// A staged upload is invisible until committed, gone when aborted, and hashes what it sent.
    func stagedUploads(_ store: some ObjectStore, size: Int, in directory: String) async throws {
        let data = Servers.randomData(size)
        let path = "\(directory)/staged.in"
        try data.write(to: URL(fileURLWithPath: path))
        let dropped = try await store.stage("staged/dropped", file: path)
        XCTAssertEqual(dropped.sha256, ZenMLCore.Digest.of(data))
        XCTAssertEqual(dropped.size, Int64(size))
        var seen = try await store.head("staged/dropped")
        XCTAssertNil(seen, "all bytes sent, nothing visible before commit")
        await dropped.abort()
        seen = try await store.head("staged/dropped")
        XCTAssertNil(seen, "nothing visible after abort")
        let kept = try await store.stage("staged/kept", file: path)
        seen = try await store.head("staged/kept")
        XCTAssertNil(seen)
        let info = try await kept.commit()
        XCTAssertEqual(info.size, Int64(size))
        _ = try await store.get("staged/kept", to: "\(directory)/staged.out")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/staged.out")), data)
        let keys = try await store.list(prefix: "staged/").map(\.key)
        XCTAssertEqual(keys, ["staged/kept"])
    }

    func testGCSEmulator() async throws {
        let store = try await Servers.gcs(settings: TransferSettings(multipartThreshold: 1 << 20, partSize: 512 << 10))
        try await roundTrip(store, largeSize: (1 << 20) + 300_000)
    }

    func testMoto() async throws {
        let store = try await Servers.moto(settings: TransferSettings(multipartThreshold: 6 << 20, partSize: 5 << 20))
        try await roundTrip(store, largeSize: (11 << 20) + 12345)
        let head = try await store.head("dir/large")
        XCTAssertEqual(head?.etag?.hasSuffix("-3"), true, "went up as a 3-part multipart upload: \(String(describing: head))")
    }

    func testSwiftS3VerifiesSignatures() async throws {
        let store = try await Servers.swift(settings: TransferSettings(multipartThreshold: 6 << 20, partSize: 5 << 20))
        try await roundTrip(store, largeSize: (11 << 20) + 12345)
        let wrong = S3ObjectStore(bucket: store.bucket, endpoint: store.endpoint, credentials: S3Credentials(accessKeyID: "test:tester", secretAccessKey: "wrong-secret-value"))
        do {
            _ = try await wrong.put("x", data: Data("x".utf8))
            XCTFail("a wrong secret must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), "\(error)")
            XCTAssertFalse("\(error)".contains("wrong-secret-value"), "no secret in messages: \(error)")
        }
    }

    func testManyParallelSmallUploadsAndPagedListing() async throws {
        var paged = try await Servers.swift()
        paged.listPageSize = 30  // 200 keys: 7 pages
        let store = paged
        let keys = (0..<200).map { "many/\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for key in keys { group.addTask { _ = try await store.put(key, data: Data(key.utf8)) } }
            try await group.waitForAll()
        }
        let listed = try await store.list(prefix: "many/")
        XCTAssertEqual(listed.count, 200)
        XCTAssertEqual(Set(listed.map(\.key)), Set(keys))
    }
}

/// A fresh 2048-bit RSA key, as a service account key file would hold.
private struct _RSA_SigningPrivateKey {
    let key: _RSA.Signing.PrivateKey
    init() throws { key = try _RSA.Signing.PrivateKey(keySize: .bits2048) }
    var pemRepresentation: String { key.pemRepresentation }
    func verify(signature: Data, for data: Data) throws -> Bool {
        key.publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: data, padding: .insecurePKCS1v1_5)
    }
}
