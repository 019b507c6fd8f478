import Glibc

/// The process's locked memory in KiB (`VmLck` of `/proc/self/status`).
public func lockedMemoryKiB() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [UInt8](repeating: 0, count: 256)
    while line.withUnsafeMutableBufferPointer({ fgets(UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), Int32($0.count), file) }) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }, as: UTF8.self)
        if text.hasPrefix("VmLck:") { return Int(text.dropFirst(6).filter(\.isNumber)) ?? 0 }
    }
    return 0
}

/// Whether `mlock` really locks memory in this process: ThreadSanitizer's `mlock` does
/// nothing and returns 0 (it keeps its shadow memory unlocked), and `RLIMIT_MEMLOCK` may
/// forbid it. Probed once on a page of its own.
public let mlockLocksMemory: Bool = {
    guard let page = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), page != MAP_FAILED else { return false }
    defer { munmap(page, 4096) }
    let before = lockedMemoryKiB()
    guard mlock(page, 4096) == 0 else { return false }
    defer { munlock(page, 4096) }
    return lockedMemoryKiB() > before
}()
