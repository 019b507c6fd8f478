import Glibc
import SVMFramework
import SVMTestSupport
import Testing

@Suite("/proc/self/maps")
struct ProcessMapsTests {
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    @Test("An anonymous mapping appears with its exact bounds and permissions")
    func anonymousMapping() throws {
        // PROT_NONE guard pages on both sides keep the kernel from merging it with neighbours.
        let base = try map(pages: 5, protection: PROT_NONE, flags: MAP_PRIVATE | MAP_ANONYMOUS)
        defer { munmap(UnsafeMutableRawPointer(bitPattern: base), 5 * pageSize) }
        let start = base + UInt(pageSize)
        #expect(mprotect(UnsafeMutableRawPointer(bitPattern: start), 3 * pageSize, PROT_READ | PROT_WRITE) == 0)

        let maps = try ProcessMaps.read()
        let area = try #require(maps.findVMA(containing: start + UInt(pageSize) + 17))
        #expect(area.start == start)
        #expect(area.end == start + UInt(3 * pageSize))
        #expect(area.permissions == [.read, .write])
        #expect(area.kind == .anonymousPrivate)
        #expect(area.inode == 0 && area.offset == 0 && area.path.isEmpty)

        let guardPage = try #require(maps.findVMA(containing: base))
        #expect(guardPage.permissions.isEmpty && guardPage.end == start)
        #expect(maps.areas(overlapping: base..<(start + 1)).map(\.start) == [guardPage.start, start])
    }

    @Test("MAP_SHARED anonymous memory is shared")
    func sharedMapping() throws {
        let start = try map(pages: 2, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS)
        defer { munmap(UnsafeMutableRawPointer(bitPattern: start), 2 * pageSize) }
        let area = try #require(try ProcessMaps.read().findVMA(containing: start))
        #expect(area.permissions == [.read, .write, .shared])
        #expect(area.kind == .shared)
    }

    @Test("A file mapping shows its path, offset and inode")
    func fileMapping() throws {
        let directory = try TemporaryDirectory("svm-maps")
        let path = directory.file("mapped file.bin")  // a space: the path is the rest of the line
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        try #require(ftruncate(descriptor, off_t(2 * pageSize)) == 0)
        var info = stat()
        try #require(fstat(descriptor, &info) == 0)

        let address = mmap(nil, pageSize, PROT_READ, MAP_PRIVATE, descriptor, off_t(pageSize))
        try #require(address != nil && address != UnsafeMutableRawPointer(bitPattern: -1))
        defer { munmap(address, pageSize) }
        let area = try #require(try ProcessMaps.read().findVMA(containing: UInt(bitPattern: address)))
        #expect(area.path == path)
        #expect(area.offset == UInt64(pageSize))
        #expect(area.inode == UInt64(info.st_ino))
        #expect(area.permissions == [.read])
        #expect(area.kind == .fileBacked)
    }

    @Test("malloc'd memory is anonymous private")
    func heap() throws {
        let pointer = try #require(malloc(64))
        defer { free(pointer) }
        let area = try #require(try ProcessMaps.read().findVMA(containing: UInt(bitPattern: pointer)))
        #expect(area.kind == .anonymousPrivate)
    }

    @Test("Parsing: special areas, spaces and deletions in paths, find_vma in gaps, bad lines")
    func parsing() throws {
        let text = """
            55d0a0000000-55d0a0021000 rw-p 00000000 00:00 0                          [heap]
            7f0000000000-7f0000002000 r-xp 00001000 fd:01 1234                       /usr/lib/a b.so (deleted)
            7f0000004000-7f0000005000 rw-s 00000000 00:01 77                         /dev/zero (deleted)
            7f0000005000-7f0000006000 rw-p 00000000 00:00 0                          [anon:arena]
            7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
            7ffc00100000-7ffc00102000 r-xp 00000000 00:00 0                          [vdso]
            7ffc00200000-7ffc00201000 ---p 00000000 00:00 0

            """
        let maps = try ProcessMaps(parsing: text)
        #expect(maps.areas.map(\.kind)
            == [.anonymousPrivate, .fileBacked, .shared, .anonymousPrivate, .stack, .special, .anonymousPrivate])
        let library = maps.areas[1]
        #expect(library.path == "/usr/lib/a b.so (deleted)")
        #expect(library.offset == 0x1000 && library.inode == 1234)
        #expect(library.deviceMajor == 0xfd && library.deviceMinor == 1)
        #expect(library.permissions == [.read, .execute] && library.length == 0x2000)

        // In the gap after the library: no containing area, and find_vma gives the next one.
        #expect(maps.findVMA(containing: 0x7f00_0000_3000) == nil)
        #expect(maps.firstArea(endingAbove: 0x7f00_0000_3000)?.start == 0x7f00_0000_4000)
        #expect(maps.firstArea(endingAbove: 0x7ffc_0020_1000) == nil)
        #expect(maps.findVMA(containing: 0x7f00_0000_1fff)?.start == 0x7f00_0000_0000)
        #expect(maps.areas(overlapping: 0x7f00_0000_1000..<0x7f00_0000_4001).count == 2)

        #expect(throws: ProcessMapsError.malformedLine(number: 2, line: "7f00-7e00 rw-p 0 00:00 0")) {
            try ProcessMaps(parsing: "55d0a0000000-55d0a0021000 rw-p 00000000 00:00 0\n7f00-7e00 rw-p 0 00:00 0\n")
        }
        #expect(throws: ProcessMapsError.self) { try ProcessMaps(parsing: "1000-2000 rwzp 0 00:00 0") }
    }

    @Test("An unreadable maps file names the file and the errno")
    func unreadable() {
        #expect(throws: ProcessMapsError.unreadable(path: "/nonexistent/maps", errno: ENOENT)) {
            try ProcessMaps.read(path: "/nonexistent/maps")
        }
        #expect(ProcessMapsError.unreadable(path: "/x", errno: ENOENT).description
            == "cannot read /x: ENOENT (No such file or directory)")
    }

    private func map(pages: Int, protection: Int32, flags: Int32) throws -> UInt {
        let address = mmap(nil, pages * pageSize, protection, flags, -1, 0)
        try #require(address != nil && address != UnsafeMutableRawPointer(bitPattern: -1))
        return UInt(bitPattern: address)
    }
}
