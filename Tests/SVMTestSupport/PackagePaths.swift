import Foundation

/// Where the package's sources and build products are, for tests.
public enum PackagePaths {
    /// The package root, found from this file's path.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The build folder holding the test binary, the plugins and svm-cli.
    public static let buildProducts: String = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // The test runner may live inside a `.xctest` bundle folder.
        while url.pathExtension == "xctest" || url.lastPathComponent == "Contents" {
            url.deleteLastPathComponent()
        }
        return url.path
    }()

    /// The ABI header's folder, for compiling C plugins.
    public static var abiInclude: String { root + "/Sources/CSVMPluginABI/include" }

    public static func fixture(_ relativePath: String) -> String { root + "/Tests/Fixtures/" + relativePath }

    public static func product(_ name: String) -> String { buildProducts + "/" + name }
}
