// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "aetrain",
    // MARK: Public products
    products: [
        .executable(name: "aetrain", targets: ["aetrain"]),
        .library(name: "AETrainCore", targets: ["AETrainCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: System libraries (C), one per library, apt provider named
        .systemLibrary(
            name: "CMPI",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]
        ),

        // Element-wise kernels in C, where Swift's loop vectorizer gives up (sqrt, division).
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),

        // JPEG decoding and PNG encoding; both libraries report errors by longjmp, kept in C.
        .target(
            name: "CImageIO",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]
        ),

        // Signal handlers and the dead-peer watchdog thread.
        .target(name: "CProcessControl"),

        // MARK: Implementation
        // The run engine, the models, kernels, optimizer, data and outputs. Never imports MPI:
        // it talks to a `Communicator`.
        .target(
            name: "AETrainCore",
            dependencies: ["COpenBLAS", "CKernels", "CImageIO", "CProcessControl"],
            exclude: ["Data/Resources/make_lfw_faces.py"],
            resources: [.copy("Data/Resources/lfw_faces_25x25.npy")]
        ),
        // The MPI implementation of `Communicator`.
        .target(name: "AETrainMPI", dependencies: ["AETrainCore", "CMPI", "CProcessControl"]),
        // Command-line layer only.
        .executableTarget(
            name: "aetrain",
            dependencies: [
                "AETrainCore", "AETrainMPI", "CProcessControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        // Test-only: counts heap allocations by interposing malloc & co.
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(name: "AETrainCoreTests", dependencies: ["AETrainCore", "CAllocationCounter"]),
        .testTarget(name: "EndToEndTests", dependencies: ["AETrainCore"]),
    ],
    swiftLanguageModes: [.v5]
)
