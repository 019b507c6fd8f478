import ArgumentParser
import Foundation

/// Runs the CLI with the documented exit codes: 0 success, 1 the operation failed,
/// 2 bad usage (ArgumentParser's own default for usage errors is 64).
@main
enum SVMCLIMain {
    static func main() {
        do {
            var command = try SVMCLI.parseAsRoot()
            try command.run()
        } catch {
            let code = SVMCLI.exitCode(for: error)
            let message = SVMCLI.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            exit(code == .validationFailure ? 2 : 1)
        }
    }
}
