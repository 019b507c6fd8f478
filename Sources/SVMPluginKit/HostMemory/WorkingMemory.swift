#if canImport(Glibc)
import Glibc
#endif

/// Host memory a plugin or the framework keeps for itself (simulated VRAM, bounce buffers,
/// staging slots): private anonymous memory in a mapping of its own that the program's
/// memory can never share.
///
/// Why: adjacent anonymous mappings with the same flags merge into one VMA, and an SVM range
/// may cover any part of the VMA a device faulted in. Were a bounce buffer to share a VMA
/// with the program's memory, a range could take its pages to device memory, and a device
/// touching the bounce buffer under its page-table lock would fault into the mirror's
/// handler, which needs that lock to zap: a deadlock. `MADV_DONTDUMP` gives the mapping a
/// flag the program's memory does not have (and keeps it out of core dumps), so it never
/// merges with it (``keepApartFromProgramMemory(_:size:)``). A device may still fault on it
/// through a stray pointer: a plugin declares it to the host as well
/// (``HostServices/mapPrivateMemory(size:reserve:)``), which then makes no range over it.
///
/// - Parameters:
///   - size: bytes, a multiple of the page size.
///   - reserve: false maps with `MAP_NORESERVE` (pages cost RAM only once touched).
/// - Returns: the mapping, released with `munmap(address, size)`; `nil` with `errno` set
///   when `mmap` fails.
public func mapWorkingMemory(size: Int, reserve: Bool = true) -> UnsafeMutableRawPointer? {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | (reserve ? 0 : MAP_NORESERVE)
    guard let address = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0), address != MAP_FAILED else {
        return nil
    }
    keepApartFromProgramMemory(address, size: size)
    return address
}

/// Makes `size` bytes at `address` working memory: a VMA flag (`MADV_DONTDUMP`) the
/// program's anonymous memory lacks, so the mapping never merges with it. For working memory
/// mapped otherwise than by ``mapWorkingMemory(size:reserve:)`` (aligned, for one).
public func keepApartFromProgramMemory(_ address: UnsafeMutableRawPointer, size: Int) {
    _ = madvise(address, size, MADV_DONTDUMP)
}

extension HostServices {
    /// ``mapWorkingMemory(size:reserve:)`` declared to the host as the plugin's own
    /// (``addPrivateMemory(address:size:)``), so that no device fault through a stray pointer
    /// makes an SVM range over it. From a host older than ABI 1.5, which cannot be told, the
    /// memory is only kept apart from the program's.
    ///
    /// - Returns: the mapping, released with ``unmapPrivateMemory(_:size:)``; `nil` when
    ///   `mmap` fails or the host refuses the declaration.
    public func mapPrivateMemory(size: Int, reserve: Bool = true) -> UnsafeMutableRawPointer? {
        guard let address = mapWorkingMemory(size: size, reserve: reserve) else { return nil }
        do {
            try addPrivateMemory(address: UInt64(UInt(bitPattern: address)), size: UInt64(size))
        } catch .notSupported {
            // An older host: nothing to tell it.
        } catch {
            munmap(address, size)
            return nil
        }
        return address
    }

    /// Withdraws the declaration of memory ``mapPrivateMemory(size:reserve:)`` mapped, then
    /// unmaps it.
    public func unmapPrivateMemory(_ address: UnsafeMutableRawPointer, size: Int) {
        try? removePrivateMemory(address: UInt64(UInt(bitPattern: address)), size: UInt64(size))
        munmap(address, size)
    }
}
