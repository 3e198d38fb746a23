// swift-tools-version:5.9
// statistics: a standard step in Swift. The SDK targets are links into the repository's Sources/
// (the host hashes and packs what they point to), so this package needs nothing downloaded.
import PackageDescription

let package = Package(
    name: "statistics",
    targets: [
        .target(name: "CZenMLTFRecord", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "ZenMLTFRecord", dependencies: ["CZenMLTFRecord"]),
        .target(name: "ZenMLStep", dependencies: ["ZenMLTFRecord"]),
        .executableTarget(name: "statistics", dependencies: ["ZenMLStep"]),
    ]
)
