import Foundation
import ZenMLCore

/// A semantic version `MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]` (missing parts are 0).
public struct SemanticVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    public var prerelease: [String]
    let text: String

    public init?(_ text: String) {
        var core = Substring(text)
        if let plus = core.firstIndex(of: "+") { core = core[..<plus] }
        var prerelease: [String] = []
        if let dash = core.firstIndex(of: "-") {
            prerelease = core[core.index(after: dash)...].split(separator: ".").map(String.init)
            guard !prerelease.isEmpty else { return nil }
            core = core[..<dash]
        }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count) else { return nil }
        var numbers: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.allSatisfy(\.isASCII), let number = Int(part), number >= 0 else { return nil }
            numbers.append(number)
        }
        while numbers.count < 3 { numbers.append(0) }
        (major, minor, patch) = (numbers[0], numbers[1], numbers[2])
        self.prerelease = prerelease
        self.text = text
    }

    public var description: String { text }

    public static func == (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) == (rhs.major, rhs.minor, rhs.patch) && lhs.prerelease == rhs.prerelease
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major); hasher.combine(minor); hasher.combine(patch); hasher.combine(prerelease)
    }

    /// semver 2.0.0 precedence: a prerelease sorts before its release.
    public static func < (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        if (lhs.major, lhs.minor, lhs.patch) != (rhs.major, rhs.minor, rhs.patch) {
            return (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }
        if lhs.prerelease.isEmpty || rhs.prerelease.isEmpty { return !lhs.prerelease.isEmpty && rhs.prerelease.isEmpty }
        for (left, right) in zip(lhs.prerelease, rhs.prerelease) where left != right {
            switch (Int(left), Int(right)) {
            case let (l?, r?): return l < r
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return left < right
            }
        }
        return lhs.prerelease.count < rhs.prerelease.count
    }
}

/// A set of acceptable versions: `1.2.3` (exactly), `^1.2` (compatible: same major, or same
/// minor below 1.0), `~1.2` (same minor), `*`, or comparators `>=1.0,<2` (comma or space separated).
/// Prereleases match only when asked for by an exact version.
public struct VersionRange: Sendable, Hashable, CustomStringConvertible {
    enum Comparator: Hashable, Sendable {
        case equal(SemanticVersion), greater(SemanticVersion), greaterOrEqual(SemanticVersion)
        case less(SemanticVersion), lessOrEqual(SemanticVersion)
    }

    let comparators: [Comparator]
    public let description: String

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        description = trimmed
        if trimmed == "*" || trimmed == "latest" { comparators = []; return }
        if trimmed.hasPrefix("^") || trimmed.hasPrefix("~") {
            let body = String(trimmed.dropFirst())
            guard let low = SemanticVersion(body) else { return nil }
            let given = body.split(separator: "-")[0].split(separator: ".").count
            let high: SemanticVersion?
            if trimmed.hasPrefix("^") {
                if low.major > 0 || given == 1 { high = SemanticVersion("\(low.major + 1).0.0-0") }
                else if low.minor > 0 || given == 2 { high = SemanticVersion("0.\(low.minor + 1).0-0") }
                else { high = SemanticVersion("0.0.\(low.patch + 1)-0") }
            } else {
                high = given == 1 ? SemanticVersion("\(low.major + 1).0.0-0") : SemanticVersion("\(low.major).\(low.minor + 1).0-0")
            }
            guard let high else { return nil }
            comparators = [.greaterOrEqual(low), .less(high)]
            return
        }
        var parsed: [Comparator] = []
        for part in trimmed.split(whereSeparator: { $0 == "," || $0 == " " }) {
            let operators = [">=", "<=", ">", "<", "="]
            let op = operators.first { part.hasPrefix($0) } ?? ""
            guard let version = SemanticVersion(String(part.dropFirst(op.count))) else { return nil }
            switch op {
            case ">=": parsed.append(.greaterOrEqual(version))
            case "<=": parsed.append(.lessOrEqual(version))
            case ">": parsed.append(.greater(version))
            case "<": parsed.append(.less(version))
            default: parsed.append(.equal(version))
            }
        }
        guard !parsed.isEmpty else { return nil }
        comparators = parsed
    }

    /// Whether `version` is in the range.
    public func contains(_ version: SemanticVersion) -> Bool {
        let exact = comparators.contains { if case .equal(let v) = $0 { return v == version } else { return false } }
        if !version.prerelease.isEmpty && !exact { return false }
        return comparators.allSatisfy { comparator in
            switch comparator {
            case .equal(let v): return version == v
            case .greater(let v): return version > v
            case .greaterOrEqual(let v): return version >= v
            case .less(let v): return version < v
            case .lessOrEqual(let v): return version <= v
            }
        }
    }

    /// The highest of `versions` in the range.
    public func best(of versions: [String]) -> String? {
        versions.compactMap { text in SemanticVersion(text).map { (text, $0) } }
            .filter { contains($0.1) }
            .max { $0.1 < $1.1 }?.0
    }
}

/// What a pipeline's `uses:` names: a local folder, or a bundle in a registry by version, range or digest.
public enum BundleReference: Sendable, Hashable, CustomStringConvertible {
    case path(String)
    case version(name: String, range: VersionRange)
    case digest(name: String, digest: Digest)

    /// Parses `uses:`. Anything with a `/`, or starting with `.`, is a path; `NAME@…` is a
    /// registry reference; a bare name is a path (for compatibility with `uses: mybundle`).
    public init(_ text: String) throws {
        guard let at = text.firstIndex(of: "@"), !text.contains("/"), !text.hasPrefix(".") else {
            self = .path(text)
            return
        }
        let name = String(text[..<at])
        let rest = String(text[text.index(after: at)...])
        guard BundleReference.isValidName(name) else {
            throw BundleError.reference("'\(text)': '\(name)' is not a bundle name (lowercase letters, digits, '-', '_', '.')")
        }
        if rest.hasPrefix("sha256:") {
            guard let digest = Digest(rest) else { throw BundleError.reference("'\(text)': the digest must be sha256: and 64 lowercase hex digits") }
            self = .digest(name: name, digest: digest)
            return
        }
        guard let range = VersionRange(rest) else {
            throw BundleError.reference("'\(text)': '\(rest)' is not a version or range (examples: 1.2.0, ^1.2, ~1.2.3, >=1.0,<2, *)")
        }
        self = .version(name: name, range: range)
    }

    /// Bundle names are used as folder names in registries: keep them to a safe alphabet.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, CharacterSet.alphanumerics.contains(first), name.utf8.count <= 128 else { return false }
        return name.unicodeScalars.allSatisfy { ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || "-_.".unicodeScalars.contains($0) }
            && !name.contains("..")
    }

    public var name: String? {
        switch self {
        case .path: return nil
        case .version(let name, _), .digest(let name, _): return name
        }
    }

    public var description: String {
        switch self {
        case .path(let path): return path
        case .version(let name, let range): return "\(name)@\(range)"
        case .digest(let name, let digest): return "\(name)@\(digest)"
        }
    }
}
