import Foundation

/// A failed file-system operation, with the path and the system's reason.
public enum FileSystemError: Error, CustomStringConvertible, Sendable {
    case posix(path: String, operation: String, errno: Int32)
    case notFound(path: String)
    case unsupportedFileType(path: String)

    public var description: String {
        switch self {
        case .posix(let path, let operation, let code):
            return "cannot \(operation) '\(path)': \(String(cString: strerror(code)))"
        case .notFound(let path):
            return "'\(path)' does not exist"
        case .unsupportedFileType(let path):
            return "'\(path)' is neither a regular file, a directory nor a symbolic link"
        }
    }
}
