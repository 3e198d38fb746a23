// swift-tools-version:6.0
// The Swift runner of the TFRecord benchmark (bench/tfrecord/README.md). It depends on the main
// package by path and uses only its ZenMLTFRecord library. Build it in release:
//   swift build -c release --package-path bench/tfrecord/swift --scratch-path bench/tfrecord/swift/.build
import PackageDescription

let package = Package(
    name: "TFRecordBench",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "zenml-run", path: "../../..")],
    targets: [
        .executableTarget(
            name: "TFRecordBench",
            dependencies: [.product(name: "ZenMLTFRecord", package: "zenml-run")]
        )
    ]
)
