import Foundation

/// What a finished child process left.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
}

/// Runs programs for tests: the C compiler, svm-cli.
public enum ProcessRunner {
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil
    ) throws -> ProcessOutput {
        // Output goes to files, not pipes: Foundation's pipe reads trap on EINTR.
        let folder = try TemporaryDirectory("svm-process")
        let outPath = folder.file("stdout")
        let errPath = folder.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let error = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer {
            try? output.close()
            try? error.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = output
        process.standardError = error
        try process.run()
        process.waitUntilExit()
        return ProcessOutput(
            status: process.terminationStatus,
            standardOutput: try String(contentsOfFile: outPath, encoding: .utf8),
            standardError: try String(contentsOfFile: errPath, encoding: .utf8))
    }

    /// Runs the built svm-cli with `arguments`; the environment has no SVM_PLUGIN_PATH
    /// unless `environment` adds one.
    public static func svmCLI(_ arguments: [String], environment extra: [String: String] = [:]) throws
        -> ProcessOutput
    {
        var environment = ProcessInfo.processInfo.environment
        environment["SVM_PLUGIN_PATH"] = nil
        environment["SVM_BUILTIN_PLUGIN_DIR"] = nil
        environment.merge(extra) { $1 }
        return try run(PackagePaths.product("svm-cli"), arguments, environment: environment)
    }
}

public struct CompilerFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Builds variants of the example C plugin, the way an external plugin author would: with
/// the system C compiler and nothing but the ABI header.
public enum CPluginCompiler {
    public static let exampleSource = PackagePaths.fixture("ExampleCPlugin/example_device.c")

    /// Compiles `source` with `defines` (e.g. `EXAMPLE_NAME="Other"`) into `output`.
    public static func compile(
        _ source: String = exampleSource, defines: [String] = [], output: String
    ) throws {
        let arguments = ["-shared", "-fPIC", "-std=c11", "-I", PackagePaths.abiInclude]
            + defines.map { "-D" + $0 } + [source, "-o", output]
        let result = try ProcessRunner.run("/usr/bin/env", ["cc"] + arguments)
        guard result.status == 0 else {
            throw CompilerFailure(description: "cc failed (\(result.status)): \(result.standardError)")
        }
    }
}
