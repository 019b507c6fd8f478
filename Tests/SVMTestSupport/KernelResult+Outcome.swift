import SVMPluginKit

extension KernelResult {
    /// How the kernel ended without what it did (the activity counters): for tests about
    /// status, faults and bytes.
    public var outcome: KernelResult {
        var result = self
        result.activity = KernelActivity()
        return result
    }
}
