import CSVMPlatform
import Glibc
import Synchronization

/// The calling process's address space, as the SVM space mirrors it: `find_vma` through the
/// kernel's `PROCMAP_QUERY` ioctl (Linux 6.11; one ioctl, no text to parse) or, on an older
/// kernel, by reading `/proc/self/maps`; page presence through `mincore`.
public final class ProcessAddressSpace: CPUAddressSpace {
    /// An open `/proc/self/maps` for the ioctl; -1 after the kernel refused it.
    private let mapsDescriptor: Int32
    /// Whether the ioctl works here; cleared on the first `ENOTTY`/`EINVAL`.
    private let queryWorks: Atomic<Bool>

    public init(privateMemory: PrivateMemory = .process) {
        self.privateMemory = privateMemory
        mapsDescriptor = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        queryWorks = Atomic(mapsDescriptor >= 0)
    }

    deinit { if mapsDescriptor >= 0 { close(mapsDescriptor) } }

    /// Whether `find_vma` is one ioctl (`PROCMAP_QUERY`) rather than a parse of the maps file.
    public var usesMapQuery: Bool { queryWorks.load(ordering: .relaxed) }

    /// Memory of the framework's and the plugins' own, which is not the program's.
    private let privateMemory: PrivateMemory

    /// The mapping containing `address`, cut to the program's part of it: `nil` on private
    /// memory (``PrivateMemory``) as on unmapped memory.
    public func mapping(containing address: UInt64) -> CPUMapping? {
        guard let area = area(containing: address) else { return nil }
        return programMapping(of: area, around: address)
    }

    /// One `PROCMAP_QUERY` for both: a second one for the heap check took a tenth of a
    /// first 4 KiB fault's time (512 first faults: 3.83 -> 3.46 ms, `bench fault --cpu 1`).
    public func mappingForNewRange(containing address: UInt64) -> (mapping: CPUMapping, allocatorHeap: Bool)? {
        guard let area = area(containing: address), let mapping = programMapping(of: area, around: address) else { return nil }
        return (mapping, AllocatorHeaps.contains(address, in: area))
    }

    /// `area` as a mapping, cut to the program's part of it around `address`.
    private func programMapping(of area: VirtualMemoryArea, around address: UInt64) -> CPUMapping? {
        var mapping = CPUMapping(area)
        guard let programPart = privateMemory.programPart(of: mapping.interval, around: address) else { return nil }
        mapping.interval = programPart
        return mapping
    }

    /// How many times ``area(containing:)`` asked the kernel (for tests of the lookups that
    /// need not).
    let areaQueries = Atomic<Int>(0)

    /// The virtual memory area containing `address`, or `nil` when none does.
    public func area(containing address: UInt64) -> VirtualMemoryArea? {
        areaQueries.add(1, ordering: .relaxed)
        if queryWorks.load(ordering: .relaxed) {
            var info = svm_vma_info()
            switch svm_vma_query(mapsDescriptor, address, &info) {
            case 0: return VirtualMemoryArea(info)
            case -ENOENT: return nil
            case -ENOTTY, -EINVAL: queryWorks.store(false, ordering: .relaxed)
            default: break  // e.g. a name too long for the buffer: the file still answers
            }
        }
        return (try? ProcessMaps.read())?.findVMA(containing: UInt(address))
    }

    /// The runs of pages of `interval` that are not present, in order; empty when all are
    /// (or when part of the interval is not mapped: the caller finds out otherwise).
    public func missingRuns(_ interval: AddressInterval) -> [AddressInterval] { runs(of: interval, present: false) }

    /// The runs of pages of `interval` that are present, in order; empty when none is (or
    /// when part of the interval is not mapped).
    public func presentRuns(_ interval: AddressInterval) -> [AddressInterval] { runs(of: interval, present: true) }

    private func runs(of interval: AddressInterval, present wanted: Bool) -> [AddressInterval] {
        withResidency(interval) { present in
            var runs: [AddressInterval] = []
            var page = 0
            while page < present.count {
                guard (present[page] & 1 != 0) == wanted else { page += 1; continue }
                let first = page
                while page < present.count && (present[page] & 1 != 0) == wanted { page += 1 }
                runs.append(AddressInterval(start: interval.start + UInt64(first) * 4096, end: interval.start + UInt64(page) * 4096))
            }
            return runs
        } ?? []
    }

    public func pagesPresent(_ interval: AddressInterval) -> Bool {
        withResidency(interval) { present in present.allSatisfy { $0 & 1 != 0 } } ?? false
    }

    /// `mincore` of `interval`, one byte per page, given to `body`; `nil` when it fails
    /// (part of the interval is not mapped).
    private func withResidency<T>(_ interval: AddressInterval, _ body: (UnsafeMutableBufferPointer<UInt8>) -> T) -> T? {
        let pages = Int(interval.size / 4096)
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: pages) { present in
            guard svm_vma_resident(interval.start, interval.size, present.baseAddress!) == 0 else { return nil }
            return body(present)
        }
    }
}

extension VirtualMemoryArea {
    init(_ info: svm_vma_info) {
        var permissions: Permissions = []
        if info.flags & UInt64(SVM_VMA_READABLE) != 0 { permissions.insert(.read) }
        if info.flags & UInt64(SVM_VMA_WRITABLE) != 0 { permissions.insert(.write) }
        if info.flags & UInt64(SVM_VMA_EXECUTABLE) != 0 { permissions.insert(.execute) }
        if info.flags & UInt64(SVM_VMA_SHARED) != 0 { permissions.insert(.shared) }
        let name = withUnsafeBytes(of: info.name) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        self.init(
            start: UInt(info.start), end: UInt(info.end), permissions: permissions,
            deviceMajor: info.dev_major, deviceMinor: info.dev_minor, inode: info.inode, path: name)
    }
}

extension CPUMapping {
    /// The mirror's view of an area: only private anonymous memory may migrate.
    public init(_ area: VirtualMemoryArea) {
        self.init(
            interval: AddressInterval(start: UInt64(area.start), end: UInt64(area.end)),
            readable: area.permissions.contains(.read), writable: area.permissions.contains(.write),
            shared: area.permissions.contains(.shared), anonymous: area.kind == .anonymousPrivate)
    }
}
