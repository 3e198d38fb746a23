import Foundation

/// Strings for C calls that take an array of C strings (`argv`, a list of file names to try),
/// and text a C call wrote into a buffer.
public enum CStrings {
    /// `strings` as a NULL-terminated C array of C strings, alive during `body`.
    public static func withArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>?) throws -> R) rethrows -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { pointers.forEach { free($0) } }
        return try pointers.withUnsafeBufferPointer { try body($0.baseAddress) }
    }

    /// The same, for a parameter declared `const char *const *`.
    public static func withConstArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> R) rethrows -> R {
        try withArray(strings) { try body(UnsafeRawPointer($0)?.assumingMemoryBound(to: UnsafePointer<CChar>?.self)) }
    }

    /// The text up to the first NUL of a buffer a C call wrote into.
    public static func string(from buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
