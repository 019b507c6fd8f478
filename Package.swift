// swift-tools-version:6.1
import PackageDescription

// The three plugins of this repository are dynamic libraries that the host finds and
// loads with dlopen exactly like an external plugin: they depend on SVMPluginKit, the C ABI
// and C shims only, never on SVMFramework.
let package = Package(
    name: "SVMFramework",
    products: [
        .library(name: "SVMFramework", targets: ["SVMFramework"]),
        .library(name: "SVMPluginKit", targets: ["SVMPluginKit"]),
        .library(name: "SimDevice", type: .dynamic, targets: ["SimDevice"]),
        .library(name: "XeDevice", type: .dynamic, targets: ["XeDevice"]),
        .library(name: "P2PFabric", type: .dynamic, targets: ["P2PFabric"]),
        // A plugin written in plain C against the ABI header: the test fixture and the
        // complete example of the "Writing a plugin" article.
        .library(name: "ExampleCPlugin", type: .dynamic, targets: ["ExampleCPlugin"]),
        // The same in Swift with SVMPluginKit: the article's Swift example.
        .library(name: "ExampleSwiftPlugin", type: .dynamic, targets: ["ExampleSwiftPlugin"]),
        .executable(name: "svm-cli", targets: ["svm-cli"]),
        // A fixed sequence of device faults for counting instructions under callgrind
        // (scripts/instructions.sh).
        .executable(name: "svm-fault-probe", targets: ["svm-fault-probe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The simulation clock's event heap.
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        // Latency histograms of fault service.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // The versioned C plugin ABI: the only contract between host and plugins.
        .target(name: "CSVMPluginABI"),
        // Prefixed C shims for Linux facilities Swift cannot reach directly.
        .target(name: "CSVMPlatform", linkerSettings: [.linkedLibrary("dl")]),
        // Only the framework links it: it defines mprotect, which plugins must not carry.
        .target(name: "CSVMInterpose"),
        .systemLibrary(
            name: "CLibDRM", pkgConfig: "libdrm",
            providers: [.apt(["libdrm-dev"])]),
        .systemLibrary(
            name: "CPCIAccess", pkgConfig: "pciaccess",
            providers: [.apt(["libpciaccess-dev"])]),
        .target(name: "SVMPluginKit", dependencies: ["CSVMPluginABI"]),
        .target(
            name: "SVMFramework",
            dependencies: [
                "CSVMPluginABI", "CSVMPlatform", "CSVMInterpose", "SVMPluginKit",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .target(
            name: "SimDevice", dependencies: ["SVMPluginKit", "CSVMPlatform"],
            path: "Sources/Plugins/SimDevice"),
        .target(
            name: "XeDevice", dependencies: ["SVMPluginKit", "CLibDRM", "CPCIAccess"],
            path: "Sources/Plugins/XeDevice"),
        .target(
            name: "P2PFabric", dependencies: ["SVMPluginKit"],
            path: "Sources/Plugins/P2PFabric"),
        .target(
            name: "ExampleCPlugin", dependencies: ["CSVMPluginABI"],
            path: "Tests/Fixtures/ExampleCPlugin", publicHeadersPath: "."),
        .target(
            name: "ExampleSwiftPlugin", dependencies: ["SVMPluginKit"],
            path: "Tests/Fixtures/ExampleSwiftPlugin"),
        .executableTarget(
            name: "svm-cli",
            dependencies: [
                "SVMFramework",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "svm-fault-probe", dependencies: ["SVMFramework"]),
        .target(
            name: "SVMTestSupport", dependencies: ["SVMFramework", "SVMPluginKit"],
            path: "Tests/SVMTestSupport"),
        // C++'s new and delete, for the tests of malloc'd memory.
        .target(name: "CSVMTestAllocators", path: "Tests/Fixtures/TestAllocators"),
        .testTarget(
            name: "SVMFrameworkTests",
            dependencies: ["SVMFramework", "SVMPluginKit", "SVMTestSupport", "CSVMTestAllocators"]),
        .testTarget(
            name: "SVMCLITests", dependencies: ["SVMTestSupport", "SVMFramework"]),
    ]
)
