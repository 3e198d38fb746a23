import Foundation

/// What a create-only write did.
public enum CreateOutcome: Sendable, Equatable {
    /// The server accepted a write that carried a create-only precondition. Whether it honoured
    /// the precondition cannot be told from the answer: the GCS emulators ignore
    /// `ifGenerationMatch`, so callers that need certainty read the object back.
    case created
    /// The precondition failed: an object already has this key (HTTP 412).
    case exists
    /// The server does not do conditional writes (OpenStack Swift's s3api answers 501); nothing was written.
    case unsupported
}

/// Object stores that can write an object only if its key is free: GCS `ifGenerationMatch=0`,
/// S3 `If-None-Match: *`.
public protocol CreateOnlyObjectStore: ObjectStore {
    /// Stores `data` under `key` unless an object is there already. Verified like `put`.
    func create(_ key: String, data: Data) async throws -> CreateOutcome
}

/// Transient answers worth another try (408, 429, 5xx but 501). For a conditional write, a retried
/// create that had in fact succeeded comes back as ``CreateOutcome/exists``; callers that read the
/// object back see it is theirs.
func isTransient(_ status: Int) -> Bool { status == 408 || status == 429 || (status >= 500 && status != 501) }
