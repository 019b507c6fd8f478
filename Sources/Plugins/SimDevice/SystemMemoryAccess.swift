import CSVMPlatform
import SVMPluginKit

#if canImport(Glibc)
import Glibc
#endif

/// How a simulated device reaches system memory: like a DMA engine, never through the CPU.
///
/// A system leaf names a CPU virtual address that the CPU may have unmapped since the bind,
/// or that is a missing page of the CPU mirror's userfaultfd. Dereferencing it would crash
/// the process; `process_vm_readv` / `process_vm_writev` on the process itself fail with
/// `EFAULT` instead, which the device turns into a device fault, as an IOMMU fault would
/// be. A missing page of a mirror that serves kernel-mode faults is the exception: the
/// call waits while the mirror fills it (bringing device-resident data home), so it is
/// made without the page-table lock (see ``SimDevicePageTable``).
enum SystemMemoryAccess {
    /// Copies up to `length` bytes at CPU address `address` into `buffer`; returns the bytes
    /// copied, 0 when the first page cannot be reached (a device fault).
    ///
    /// - Throws: `PluginErrno.ioError` for a failure other than an unreachable page.
    static func read(
        _ address: UInt64, into buffer: UnsafeMutableRawPointer, length: UInt64
    ) throws(PluginErrno) -> UInt64 {
        try outcome(svm_process_vm_read(buffer, address, Int(length)))
    }

    /// Copies up to `length` bytes of `buffer` to CPU address `address`; returns the bytes
    /// copied, 0 when the first page cannot be reached (a device fault).
    ///
    /// - Throws: `PluginErrno.ioError` for a failure other than an unreachable page.
    static func write(
        _ address: UInt64, from buffer: UnsafeRawPointer, length: UInt64
    ) throws(PluginErrno) -> UInt64 {
        try outcome(svm_process_vm_write(address, buffer, Int(length)))
    }

    private static func outcome(_ status: Int) throws(PluginErrno) -> UInt64 {
        if status >= 0 { return UInt64(status) }
        // Unmapped, PROT_NONE, read-only for a write, or a missing userfaultfd page.
        if status == -Int(EFAULT) { return 0 }
        throw .ioError
    }
}
