// swift-tools-version:6.0
import PackageDescription

/// The metadata store benchmark: times zenml-run's own store API (SQLite and MySQL/MariaDB) on
/// a large generated store. Built on its own (bench/metadata/run.sh), not part of the test suite.
let package = Package(
    name: "metadata-bench",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "zenml-run", path: "../..")],
    targets: [
        .executableTarget(
            name: "metadata-bench",
            // ZenMLMetadata is not a product of its own; the engine's library product carries it.
            dependencies: [.product(name: "ZenMLEngine", package: "zenml-run")],
            path: "Sources"
        )
    ]
)
