import enum Crypto.Curve25519
import Foundation
import ZenMLCore

/// An Ed25519 signature of a bundle digest, as stored with a published bundle.
public struct BundleSignature: Codable, Sendable, Hashable {
    /// The signer's public key, `ed25519:<base64 of the 32 raw bytes>`.
    public var publicKey: String
    /// The signature of ``BundleSigning/message(for:)``, base64.
    public var signature: String

    public init(publicKey: String, signature: String) {
        self.publicKey = publicKey
        self.signature = signature
    }

    enum CodingKeys: String, CodingKey {
        case publicKey = "public_key"
        case signature
    }
}

/// Ed25519 keys and signatures of bundle digests (swift-crypto's `Curve25519.Signing`).
///
/// Key files are one line of text: a private key `zenml-ed25519-private:<base64>` (keep it
/// secret, mode 0600), a public key `ed25519:<base64>`. A key's id is the first 12 hex digits of
/// the SHA-256 of its raw bytes.
public enum BundleSigning {
    static let privatePrefix = "zenml-ed25519-private:"
    static let publicPrefix = "ed25519:"

    /// What is signed: a domain separator and the digest, so a signature means exactly "this bundle".
    public static func message(for digest: Digest) -> Data {
        Data("zenml-bundle-signature-v1\n\(digest.description)\n".utf8)
    }

    /// Makes a new key pair and writes `<path>` (private, 0600) and `<path>.pub`. Returns the public key text.
    public static func generateKey(at path: String) throws -> String {
        if try FileStatus.of(path) != nil || FileStatus.of(path + ".pub") != nil {
            throw BundleError.signature("\(path) or \(path).pub already exists; choose another file name (keys are never overwritten)")
        }
        let key = Curve25519.Signing.PrivateKey()
        let publicText = publicPrefix + key.publicKey.rawRepresentation.base64EncodedString()
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw FileSystemError.posix(path: path, operation: "create", errno: errno) }
        let privateText = Data((privatePrefix + key.rawRepresentation.base64EncodedString() + "\n").utf8)
        defer { close(descriptor) }
        try privateText.withUnsafeBytes { try writeAll(descriptor, $0, path: path) }
        try FileTree.writeAtomically(Data((publicText + "\n").utf8), to: path + ".pub")
        return publicText
    }

    /// Reads a private key file.
    public static func loadPrivateKey(_ path: String) throws -> Curve25519.Signing.PrivateKey {
        let text = String(decoding: try FileTree.read(path), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix(privatePrefix), let raw = Data(base64Encoded: String(text.dropFirst(privatePrefix.count))),
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else {
            throw BundleError.signature("\(path) is not a zenml-run private key; make one with 'zenml-run bundle keygen \(path)'")
        }
        return key
    }

    /// Parses public key text (`ed25519:<base64>`), or reads it from a file.
    public static func publicKey(_ textOrPath: String) throws -> String {
        var text = textOrPath.trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.hasPrefix(publicPrefix), let data = try? FileTree.read(textOrPath) {
            text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard text.hasPrefix(publicPrefix), let raw = Data(base64Encoded: String(text.dropFirst(publicPrefix.count))),
            (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil
        else {
            throw BundleError.signature("'\(textOrPath)' is not an Ed25519 public key (a .pub file written by 'zenml-run bundle keygen', or ed25519:<base64>)")
        }
        return text
    }

    /// The short id of a public key.
    public static func keyID(_ publicKey: String) -> String {
        let raw = Data(base64Encoded: String(publicKey.dropFirst(publicPrefix.count))) ?? Data(publicKey.utf8)
        return Digest.of(raw).short
    }

    /// Signs a bundle digest.
    public static func sign(_ digest: Digest, with key: Curve25519.Signing.PrivateKey) throws -> BundleSignature {
        let signature = try key.signature(for: message(for: digest))
        return BundleSignature(
            publicKey: publicPrefix + key.publicKey.rawRepresentation.base64EncodedString(),
            signature: signature.base64EncodedString())
    }

    /// Whether a signature is valid for a digest.
    public static func isValid(_ signature: BundleSignature, for digest: Digest) -> Bool {
        guard signature.publicKey.hasPrefix(publicPrefix),
            let raw = Data(base64Encoded: String(signature.publicKey.dropFirst(publicPrefix.count))),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw),
            let bytes = Data(base64Encoded: signature.signature)
        else { return false }
        return key.isValidSignature(bytes, for: message(for: digest))
    }
}

/// Which signatures a bundle needs before it is used: the workspace's and the registry's rules together.
public struct TrustPolicy: Sendable, Equatable {
    /// Whether a bundle must carry a valid signature by one of ``trustedKeys``.
    public var requireSignatures: Bool
    /// Public keys (`ed25519:<base64>`).
    public var trustedKeys: [String]

    public init(requireSignatures: Bool = false, trustedKeys: [String] = []) {
        self.requireSignatures = requireSignatures
        self.trustedKeys = trustedKeys
    }

    /// Both policies at once: signatures are needed if either asks, by a key either trusts.
    public func merged(with other: TrustPolicy) -> TrustPolicy {
        TrustPolicy(requireSignatures: requireSignatures || other.requireSignatures, trustedKeys: Array(Set(trustedKeys + other.trustedKeys)).sorted())
    }

    /// Checks a bundle's signatures; throws a message that says what to do when they do not satisfy the policy.
    /// A signature by a trusted key that does not verify is always refused: it means tampering.
    public func check(_ signatures: [BundleSignature], digest: Digest, bundle: String) throws {
        let trusted = Set(trustedKeys)
        for signature in signatures where trusted.contains(signature.publicKey) && !BundleSigning.isValid(signature, for: digest) {
            throw BundleError.signature(
                "bundle \(bundle) (\(digest)) carries a signature by trusted key \(BundleSigning.keyID(signature.publicKey)) that does not match its content: the bundle or its signature was altered; do not use it, ask its publisher to publish and sign it again")
        }
        guard requireSignatures else { return }
        if trusted.isEmpty {
            throw BundleError.signature("signatures are required but no key is trusted; add the publisher's public key with 'zenml-run config trust add KEYFILE.pub'")
        }
        if signatures.contains(where: { trusted.contains($0.publicKey) && BundleSigning.isValid($0, for: digest) }) { return }
        if signatures.isEmpty {
            throw BundleError.signature(
                "bundle \(bundle) (\(digest)) is not signed, and signatures are required; ask its publisher to run 'zenml-run bundle sign' with their key, or trust it explicitly")
        }
        let keys = signatures.map { BundleSigning.keyID($0.publicKey) }.joined(separator: ", ")
        throw BundleError.signature(
            "bundle \(bundle) (\(digest)) is signed only by untrusted keys (\(keys)); if you trust the signer, add their public key with 'zenml-run config trust add KEYFILE.pub'")
    }
}
