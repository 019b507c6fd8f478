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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read before waiting so that a full pipe cannot block the child.
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessOutput(
            status: process.terminationStatus,
            standardOutput: String(decoding: outData, as: UTF8.self),
            standardError: String(decoding: errData, as: UTF8.self))
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
