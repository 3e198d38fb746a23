// swift-tools-version:5.9
// report: the quickstart's Swift step. The SDK targets are links into the repository's Sources/
// (the host hashes and packs what they point to), so this package needs nothing downloaded.
import PackageDescription

let package = Package(
    name: "report",
    targets: [
        .target(name: "CZenMLTFRecord", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "ZenMLTFRecord", dependencies: ["CZenMLTFRecord"]),
        .target(name: "ZenMLStep", dependencies: ["ZenMLTFRecord"]),
        .executableTarget(name: "report", dependencies: ["ZenMLStep"]),
    ]
)
