/// An artifact in a store: a directory addressed by the Merkle digest of its content. A core
/// value because both sides of a worker's report use it: the node that published it and the
/// host that records it.
public struct StoredArtifact: Sendable, Hashable, Codable {
    public var digest: Digest
    /// Where the artifact lives (a local path, or a URL for remote stores).
    public var uri: String
    public var size: Int64
    public var fileCount: Int64

    public init(digest: Digest, uri: String, size: Int64, fileCount: Int64) {
        self.digest = digest
        self.uri = uri
        self.size = size
        self.fileCount = fileCount
    }
}
