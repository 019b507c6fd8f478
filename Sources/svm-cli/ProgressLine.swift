import Foundation

/// A one-line progress indicator on standard error, redrawn in place; silent when off.
final class ProgressLine {
    private let enabled: Bool
    private var shown = -1

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ fraction: Double) {
        let percent = Int(fraction * 100)
        guard enabled, percent != shown else { return }
        shown = percent
        FileHandle.standardError.write(Data("\rrunning… \(percent)%".utf8))
    }

    func finish() {
        guard enabled, shown >= 0 else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
