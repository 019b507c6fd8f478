#if canImport(Glibc)
import Glibc
#endif

/// The process's virtual memory areas as `/proc/self/maps` lists them: the user-space view
/// of the kernel's VMA tree, and the mirror's `find_vma`.
///
/// A snapshot: the kernel builds the file a page at a time, so a mapping that changes while
/// it is read may be missing or appear twice at a page boundary. Read it again after the
/// address space changes; never cache it across an unmap event.
public struct ProcessMaps: Sendable {
    /// The areas in address order, as the kernel prints them; they never overlap.
    public let areas: [VirtualMemoryArea]

    /// Parses the text of a maps file.
    public init(parsing text: String) throws(ProcessMapsError) {
        var areas: [VirtualMemoryArea] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.isEmpty {
            guard let area = VirtualMemoryArea(line: line) else {
                throw .malformedLine(number: index + 1, line: String(line))
            }
            areas.append(area)
        }
        self.areas = areas
    }

    /// Reads and parses a maps file: the calling process's by default.
    public static func read(path: String = "/proc/self/maps") throws(ProcessMapsError) -> ProcessMaps {
        try ProcessMaps(parsing: readText(path))
    }

    /// The kernel's `find_vma`: the first area that ends above `address`. It contains
    /// `address` or, when `address` lies in a gap, is the next area above it.
    /// - Complexity: O(log *n*).
    public func firstArea(endingAbove address: UInt) -> VirtualMemoryArea? {
        var low = 0
        var high = areas.count
        while low < high {
            let middle = (low + high) / 2
            if areas[middle].end > address { high = middle } else { low = middle + 1 }
        }
        return low < areas.count ? areas[low] : nil
    }

    /// The area that contains `address`, or `nil` when it lies in no mapping.
    /// - Complexity: O(log *n*).
    public func findVMA(containing address: UInt) -> VirtualMemoryArea? {
        firstArea(endingAbove: address).flatMap { $0.contains(address) ? $0 : nil }
    }

    /// The areas that overlap `range`, in address order; gaps between them are unmapped.
    /// - Complexity: O(log *n* + *k*) for *k* areas returned.
    public func areas(overlapping range: Range<UInt>) -> ArraySlice<VirtualMemoryArea> {
        guard !range.isEmpty, let first = firstArea(endingAbove: range.lowerBound),
            let start = areas.firstIndex(of: first)
        else { return [] }
        var end = start
        while end < areas.count && areas[end].start < range.upperBound { end += 1 }
        return areas[start..<end]
    }

    /// The whole file, read with `read(2)` until end of file (`stat` reports size 0 for it).
    private static func readText(_ path: String) throws(ProcessMapsError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(path: path, errno: errno) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        // The kernel fills at most a page per read; 64 KiB keeps the number of reads low.
        let chunk = 64 << 10
        while true {
            let oldCount = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let count = bytes.withUnsafeMutableBytes { buffer in
                Glibc.read(descriptor, buffer.baseAddress! + oldCount, chunk)
            }
            if count < 0 {
                let code = errno
                bytes.removeLast(chunk)
                if code == EINTR { continue }
                throw .unreadable(path: path, errno: code)
            }
            bytes.removeLast(chunk - count)
            if count == 0 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One virtual memory area (the kernel's `vm_area_struct`), as one line of the maps file:
/// `start-end perms offset major:minor inode path`.
public struct VirtualMemoryArea: Hashable, Sendable, CustomStringConvertible {
    /// The `rwxp`/`rwxs` column.
    public struct Permissions: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        public static let read = Permissions(rawValue: 1 << 0)
        public static let write = Permissions(rawValue: 1 << 1)
        public static let execute = Permissions(rawValue: 1 << 2)
        /// `s`: `MAP_SHARED`; without it (`p`) the mapping is private (copy-on-write).
        public static let shared = Permissions(rawValue: 1 << 3)
    }

    /// What backs the area, which decides whether the mirror may take it over.
    public enum Kind: Hashable, Sendable {
        /// Private anonymous memory: `mmap(MAP_PRIVATE | MAP_ANONYMOUS)`, `[heap]`, named
        /// anonymous memory (`[anon:name]`) and thread stacks (which the kernel does not
        /// label). The only kind the mirror registers and migrates.
        case anonymousPrivate
        /// `MAP_SHARED`, anonymous (shmem) or file: other mappings see the same pages, so
        /// migrating them away from one mapping would lose coherence.
        case shared
        /// A private mapping of a file (libraries, `mmap` of a file): userfaultfd refuses
        /// missing-fault registration on it.
        case fileBacked
        /// The main thread's `[stack]`: anonymous, but it grows down on demand, so its start
        /// moves, and the thread that serves faults may be the one running on it.
        case stack
        /// Kernel-provided areas: `[vdso]`, `[vvar]`, `[vsyscall]`, `[uprobes]`, ...
        case special
    }

    /// First address of the area.
    public let start: UInt
    /// First address after the area.
    public let end: UInt
    public let permissions: Permissions
    /// Offset into the backing file, in bytes (0 for anonymous memory).
    public let offset: UInt64
    public let deviceMajor: UInt32
    public let deviceMinor: UInt32
    /// The backing file's inode; 0 for anonymous and special areas.
    public let inode: UInt64
    /// The file (with `" (deleted)"` when unlinked), `[heap]`, `[stack]`, `[vdso]`, ... or
    /// empty for anonymous memory.
    public let path: String

    public init(
        start: UInt, end: UInt, permissions: Permissions, offset: UInt64 = 0,
        deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0, inode: UInt64 = 0, path: String = ""
    ) {
        self.start = start
        self.end = end
        self.permissions = permissions
        self.offset = offset
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.inode = inode
        self.path = path
    }

    /// Size in bytes.
    public var length: Int { Int(end - start) }

    public func contains(_ address: UInt) -> Bool { start <= address && address < end }

    public var kind: Kind {
        if permissions.contains(.shared) { return .shared }
        if path == "[stack]" { return .stack }
        if inode != 0 { return .fileBacked }
        if path.isEmpty || path == "[heap]" || path.hasPrefix("[anon:") { return .anonymousPrivate }
        return .special
    }

    public var description: String {
        func flag(_ permission: Permissions, _ letter: String) -> String {
            permissions.contains(permission) ? letter : "-"
        }
        let perms = flag(.read, "r") + flag(.write, "w") + flag(.execute, "x")
            + (permissions.contains(.shared) ? "s" : "p")
        let range = String(start, radix: 16) + "-" + String(end, radix: 16)
        return [range, perms, String(offset, radix: 16), "\(deviceMajor):\(deviceMinor)", "\(inode)", path]
            .joined(separator: " ")
    }

    /// Parses one line; `nil` if it is not one the kernel prints.
    init?(line: Substring) {
        var rest = line[...]
        func field() -> Substring? {
            rest = rest.drop { $0 == " " }
            let value = rest.prefix { $0 != " " }
            rest = rest[value.endIndex...]
            return value.isEmpty ? nil : value
        }
        guard let range = field(), let perms = field(), let offsetText = field(),
            let device = field(), let inodeText = field()
        else { return nil }
        let bounds = range.split(separator: "-")
        let numbers = device.split(separator: ":")
        guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
            start < end, numbers.count == 2, let major = UInt32(numbers[0], radix: 16),
            let minor = UInt32(numbers[1], radix: 16), let offset = UInt64(offsetText, radix: 16),
            let inode = UInt64(inodeText), let permissions = Self.permissions(perms)
        else { return nil }
        // The path is the rest after the padding; it may itself contain spaces.
        self.init(
            start: start, end: end, permissions: permissions, offset: offset, deviceMajor: major,
            deviceMinor: minor, inode: inode, path: String(rest.drop { $0 == " " }))
    }

    private static func permissions(_ text: Substring) -> Permissions? {
        let letters = Array(text.utf8)
        guard letters.count == 4 else { return nil }
        var permissions: Permissions = []
        for (letter, expected, permission) in [
            (letters[0], UInt8(ascii: "r"), Permissions.read), (letters[1], UInt8(ascii: "w"), .write),
            (letters[2], UInt8(ascii: "x"), .execute),
        ] {
            if letter == expected { permissions.insert(permission) } else if letter != UInt8(ascii: "-") { return nil }
        }
        switch letters[3] {
        case UInt8(ascii: "s"): permissions.insert(.shared)
        case UInt8(ascii: "p"): break
        default: return nil
        }
        return permissions
    }
}

/// The maps file could not be read or parsed.
public enum ProcessMapsError: Error, Hashable, Sendable, CustomStringConvertible {
    case unreadable(path: String, errno: Int32)
    case malformedLine(number: Int, line: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let code):
            "cannot read \(path): \(UserFaultFDError.describe(errno: code))"
        case .malformedLine(let number, let line):
            "line \(number) of the maps file is not 'start-end perms offset dev inode path': \(line)"
        }
    }
}
