// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "zenml-run",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "zenml-run", targets: ["zenml-run"]),
        .library(name: "ZenMLEngine", targets: ["ZenMLEngine"]),
        .library(name: "ZenMLTFRecord", targets: ["ZenMLTFRecord"]),
        .library(name: "ZenMLStep", targets: ["ZenMLStep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        /** JSON values, canonical JSON, digests and file-system helpers shared by every layer. */
        .target(
            name: "ZenMLCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        /** The step contract, version 1: bundle manifests, requests, responses and their validation. */
        .target(name: "ZenMLContract", dependencies: ["ZenMLCore", "Yams"]),
        /** Pipeline YAML files, their validation (with file:line) and the step DAG. */
        .target(name: "ZenMLPipeline", dependencies: ["ZenMLCore", "ZenMLContract", "Yams"]),
        /** Cache keys: bundle digests, external data digests (with a stat cache) and the step action key. */
        .target(name: "ZenMLCache", dependencies: ["ZenMLCore", "ZenMLContract", "ZenMLBundles"]),
        /** Bundle archives (deterministic tar: the bundle digest), safe unpacking, registries, lock files, signatures. */
        .target(
            name: "ZenMLBundles",
            dependencies: ["ZenMLCore", "ZenMLContract", "ZenMLObjectStore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        /** Content-addressed artifact stores (local folder; gs:// and s3:// with a local read-through cache). */
        .target(name: "ZenMLArtifacts", dependencies: ["ZenMLCore", "CZenMLSystem", "ZenMLObjectStore"]),
        /** HTTP on libcurl and object store clients (GCS JSON API, S3 with SigV4) for remote artifact stores. */
        .target(
            name: "ZenMLObjectStore",
            dependencies: [
                "ZenMLCore", "CCurl", "CZlib", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        /** libcurl (`<curl/curl.h>`, libcurl4-openssl-dev): TLS, HTTP/2, connection reuse; see HTTPClient for why.
            Opened with dlopen at first use, not linked: see Sources/CCurl/include/CCurl.h. */
        .target(name: "CCurl", dependencies: ["CZenMLSystem"]),
        /** zlib (`<zlib.h>`), for the CRC32 part checksums of S3 multipart uploads. */
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        /** The metadata store on ML Metadata's schema (SQLite, MySQL/MariaDB). */
        .target(
            name: "ZenMLMetadata",
            dependencies: [
                "ZenMLCore", "CMariaDB", "CZenMLSQLite", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        /** The one SQLite call Swift cannot make (`sqlite3_db_config` is variadic), on the libsqlite3 GRDB links. */
        .target(name: "CZenMLSQLite", dependencies: [.product(name: "GRDBSQLite", package: "GRDB.swift")]),
        /** The MariaDB Connector/C client library (`<mysql.h>`, libmariadb-dev), for the MySQL metadata store.
            Opened with dlopen at first use, not linked: see Sources/CMariaDB/include/CMariaDB.h. */
        .target(name: "CMariaDB", dependencies: ["CZenMLSystem"]),
        /** posix_spawn with a new process group, pidfd_open, pipe2, memfd, syncfs, dlopen: what Foundation cannot do. */
        .target(name: "CZenMLSystem", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        /** Runs one step process under the contract: clean environment, limits, process groups. */
        .target(name: "ZenMLExecutor", dependencies: ["ZenMLCore", "ZenMLContract", "CZenMLSystem"]),
        /** The engine: schedules the DAG, consults the cache, runs steps and records everything. */
        .target(
            name: "ZenMLEngine",
            dependencies: [
                "ZenMLCore", "ZenMLContract", "ZenMLPipeline", "ZenMLCache",
                "ZenMLArtifacts", "ZenMLMetadata", "ZenMLExecutor", "ZenMLTFRecord", "ZenMLObjectStore", "ZenMLBundles",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        /** The `zenml-run` commands: a thin shell over the engine. */
        .target(
            name: "ZenMLCommands",
            dependencies: [
                "ZenMLEngine", "ZenMLCore", "ZenMLContract", "ZenMLPipeline", "ZenMLMetadata", "ZenMLTFRecord", "ZenMLExecutor", "ZenMLBundles",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "zenml-run", dependencies: ["ZenMLCommands"]),

        /** CRC32C (SSE4.2 / ARMv8 CRC instructions with a portable fallback) and zlib access for TFRecord. */
        .target(name: "CZenMLTFRecord", linkerSettings: [.linkedLibrary("z")]),
        /** TFRecord files and tf.train.Example records, byte-compatible with TensorFlow. */
        .target(name: "ZenMLTFRecord", dependencies: ["CZenMLTFRecord"]),
        /** The Swift step SDK: read the request, write the response, TFRecords; nothing else to build. */
        .target(name: "ZenMLStep", dependencies: ["ZenMLTFRecord"]),

        /** Benchmark driver for bench/remote (publish/fetch through RemoteArtifactStore). */
        .executableTarget(name: "remote-store-bench", dependencies: ["ZenMLArtifacts", "ZenMLObjectStore", "ZenMLCore"], path: "bench/remote/Sources"),

        .testTarget(name: "ZenMLCoreTests", dependencies: ["ZenMLCore"]),
        .testTarget(name: "ZenMLContractTests", dependencies: ["ZenMLContract"]),
        .testTarget(name: "ZenMLPipelineTests", dependencies: ["ZenMLPipeline"]),
        .testTarget(name: "ZenMLCacheTests", dependencies: ["ZenMLCache", "ZenMLBundles"]),
        .testTarget(name: "ZenMLBundlesTests", dependencies: ["ZenMLBundles", "ZenMLObjectStore"]),
        .testTarget(name: "ZenMLArtifactsTests", dependencies: ["ZenMLArtifacts"]),
        .testTarget(
            name: "ZenMLObjectStoreTests",
            dependencies: ["ZenMLObjectStore", "ZenMLArtifacts", "ZenMLCore", .product(name: "_CryptoExtras", package: "swift-crypto")]
        ),
        .testTarget(name: "ZenMLMetadataTests", dependencies: ["ZenMLMetadata", "ZenMLCore", "CMariaDB"]),
        .testTarget(name: "ZenMLExecutorTests", dependencies: ["ZenMLExecutor"]),
        .testTarget(name: "ZenMLEngineTests", dependencies: ["ZenMLEngine", "ZenMLContract"]),
        .testTarget(name: "ZenMLEndToEndTests", dependencies: ["ZenMLCore"]),
        .testTarget(name: "ZenMLTFRecordTests", dependencies: ["ZenMLTFRecord"]),
        .testTarget(name: "ZenMLStepTests", dependencies: ["ZenMLStep"]),
    ]
)
