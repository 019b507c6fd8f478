import Glibc

/// Maps `size` bytes of private anonymous memory at an address aligned to `alignment` (a
/// power of two, at least a page), so that 2 MiB ranges line up with huge pages and chunk
/// boundaries. Over-maps by `alignment` and unmaps the excess at both ends, so the result is
/// released with a plain `munmap(address, size)`. `nil` with `errno` set when mmap fails.
public func mapAnonymousAligned(
    size requested: Int, alignment: Int, protection: Int32 = PROT_READ | PROT_WRITE, flags: Int32 = MAP_PRIVATE
) -> UnsafeMutableRawPointer? {
    // Whole pages: the excess is unmapped from the page after the last one (munmap of an
    // address inside a page fails, and the excess would stay mapped).
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let size = (requested + page - 1) / page * page
    guard let raw = mmap(nil, size + alignment, protection, flags | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
        return nil
    }
    let start = UInt(bitPattern: raw)
    let aligned = (start + UInt(alignment) - 1) & ~UInt(alignment - 1)
    if aligned > start { munmap(raw, Int(aligned - start)) }
    let tail = aligned + UInt(size)
    let end = start + UInt(size + alignment)
    if end > tail { munmap(UnsafeMutableRawPointer(bitPattern: tail), Int(end - tail)) }
    return UnsafeMutableRawPointer(bitPattern: aligned)
}
