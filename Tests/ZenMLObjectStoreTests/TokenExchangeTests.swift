import Foundation
import XCTest
import _CryptoExtras
@testable import ZenMLObjectStore

/// The service-account flow over HTTP: a local stand-in for Google's token endpoint (Python's
/// http.server; no Google service is reachable from tests) checks the JWT-bearer grant and the
/// JWT's claims, hands out a token, and serves one object only to requests bearing that token.
final class TokenExchangeTests: XCTestCase {
    static let server = #"""
        import base64, json, sys, urllib.parse
        from http.server import BaseHTTPRequestHandler, HTTPServer
        grants = 0
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
            def do_POST(self):
                global grants
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                header, claims, signature = form["assertion"][0].split(".")
                claims = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
                if form["grant_type"] != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or claims["iss"] != "runner@test.iam.gserviceaccount.com" \
                        or "devstorage" not in claims["scope"] or not signature:
                    return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                grants += 1
                self.reply(200, {"access_token": "ya29.token-%d" % grants, "expires_in": 3600, "token_type": "Bearer"})
            def do_GET(self):
                if self.path == "/grants": return self.reply(200, {"grants": grants})
                if self.headers.get("Authorization") != "Bearer ya29.token-1":
                    return self.reply(401, {"error": {"code": 401, "message": "Invalid Credentials"}})
                self.reply(200, {"name": "k", "size": "3", "md5Hash": "kAFQmDzST7DWlj99KOF/cg==", "generation": "1"})
        server = HTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    func testServiceAccountKeyIsExchangedForATokenOnce() async throws {
        let directory = try Servers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.server.write(toFile: directory + "/server.py", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", directory + "/server.py"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        // SIGKILL: the server inherits a signal mask from Foundation's Process in which SIGTERM does not end it.
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let port = try XCTUnwrap(Int(String(decoding: pipe.fileHandleForReading.availableDataLine(), as: UTF8.self)))
        let endpoint = "http://127.0.0.1:\(port)"

        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        func keyFile(_ email: String) throws -> String {
            let path = directory + "/\(email.prefix(6)).json"
            let json: [String: Any] = ["type": "service_account", "client_email": email, "private_key": key.pemRepresentation, "token_uri": endpoint + "/token"]
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            return path
        }
        let store = try GCSObjectStore.fromEnvironment(
            bucket: "b", environment: ["GOOGLE_APPLICATION_CREDENTIALS": try keyFile("runner@test.iam.gserviceaccount.com"), "STORAGE_EMULATOR_HOST": endpoint])
        for _ in 0..<3 {
            let info = try await store.head("k")
            XCTAssertEqual(info?.size, 3)
        }
        let grants = try await HTTPClient.shared.send(HTTPRequest(method: "GET", url: endpoint + "/grants"))
        XCTAssertEqual(grants.text, #"{"grants": 1}"#, "the token is reused until it expires")

        let refused = try GCSObjectStore.fromEnvironment(
            bucket: "b", environment: ["GOOGLE_APPLICATION_CREDENTIALS": try keyFile("intruder@test.iam.gserviceaccount.com"), "STORAGE_EMULATOR_HOST": endpoint])
        do {
            _ = try await refused.head("k")
            XCTFail("a refused key must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("check GOOGLE_APPLICATION_CREDENTIALS") && "\(error)".contains("Invalid JWT Signature"), "\(error)")
            XCTAssertFalse("\(error)".contains("PRIVATE KEY"), "no key material in messages")
        }
        let wrongToken = GCSObjectStore(bucket: "b", endpoint: endpoint, credentials: .token("stale"))
        do {
            _ = try await wrongToken.head("k")
            XCTFail("a wrong token must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("check GOOGLE_APPLICATION_CREDENTIALS (or ZENML_GCS_TOKEN)"), "\(error)")
            XCTAssertFalse("\(error)".contains("stale"), "no token in messages")
        }
    }
}

private extension FileHandle {
    /// Bytes up to the first newline (the server prints its port, then nothing until it exits).
    func availableDataLine() -> Data {
        var line = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { return line }
            line.append(byte)
        }
    }
}
