import CSVMPlatform

/// The CPUs the calling thread may run on (`sched_getaffinity`), and running code on one of
/// them alone.
///
/// What it is for: on a virtual machine, waking a thread on another CPU that sleeps costs an
/// interrupt to a halted virtual CPU, 50–100 µs on this project's 2-core VMs against about
/// 5 µs for the same wake on one CPU (a bare userfaultfd round trip, measured). Every CPU
/// fault userfaultfd serves is two such wakes, so pinning a benchmark to one CPU shows what
/// the framework costs apart from the machine's wake-ups.
public enum CPUAffinity {
    /// Why the calling thread's CPUs could not be read or set.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The CPUs the calling thread may run on now, lowest first.
    public static func allowed() throws(Failure) -> [Int] {
        let mask = try saved()
        return cpus(in: mask)
    }

    /// The CPUs thread `tid` of this process may run on now, lowest first.
    public static func allowed(thread tid: Int32) throws(Failure) -> [Int] {
        var mask = [UInt8](repeating: 0, count: svm_affinity_mask_size())
        let status = mask.withUnsafeMutableBytes { svm_affinity_save_thread(tid, $0.baseAddress) }
        guard status == 0 else { throw Failure(description: "cannot read the CPUs thread \(tid) may run on: errno \(-status)") }
        return cpus(in: mask)
    }

    /// Runs `body` with the calling thread on `cpu` alone, then gives it back the CPUs it
    /// had. Threads started meanwhile (a context's fault handler, a plugin's workers) inherit
    /// the one CPU and keep it.
    /// - Throws: ``Failure`` when `cpu` is not one of ``allowed()``.
    public static func pinned<T>(to cpu: Int, _ body: () throws -> T) throws -> T {
        let mask = try saved()
        let allowed = cpus(in: mask)
        guard allowed.contains(cpu) else {
            throw Failure(description: "CPU \(cpu) is not one this process may run on (\(describe(allowed)))")
        }
        let status = svm_affinity_pin(Int32(cpu))
        guard status == 0 else { throw Failure(description: "cannot run on CPU \(cpu) alone: errno \(-status)") }
        defer { _ = mask.withUnsafeBytes { svm_affinity_restore($0.baseAddress) } }
        return try body()
    }

    /// `0-3, 6` for `[0, 1, 2, 3, 6]`.
    public static func describe(_ cpus: [Int]) -> String {
        guard !cpus.isEmpty else { return "none" }
        var parts: [String] = []
        var start = cpus[0]
        var end = start
        for cpu in cpus.dropFirst() {
            if cpu == end + 1 { end = cpu; continue }
            parts.append(start == end ? "\(start)" : "\(start)-\(end)")
            start = cpu
            end = cpu
        }
        parts.append(start == end ? "\(start)" : "\(start)-\(end)")
        return parts.joined(separator: ", ")
    }

    private static func saved() throws(Failure) -> [UInt8] {
        var mask = [UInt8](repeating: 0, count: svm_affinity_mask_size())
        let status = mask.withUnsafeMutableBytes { svm_affinity_save($0.baseAddress) }
        guard status == 0 else { throw Failure(description: "cannot read the CPUs this thread may run on: errno \(-status)") }
        return mask
    }

    private static func cpus(in mask: [UInt8]) -> [Int] {
        mask.withUnsafeBytes { bytes in
            let count = Int(svm_affinity_cpus(bytes.baseAddress, nil, 0))
            var cpus = [Int32](repeating: 0, count: count)
            _ = cpus.withUnsafeMutableBufferPointer { svm_affinity_cpus(bytes.baseAddress, $0.baseAddress, Int32(count)) }
            return cpus.map(Int.init)
        }
    }
}
