import Glibc
import SVMTestSupport
import Testing

@testable import SVMFramework

/// Moving pages without the kernel's hole mode (see ``PageMover``): pages with data arrive
/// whole, holes stay holes, refusals stop the move where they happen.
@Suite("Page mover") struct PageMoverTests {
    let pageMap = PageMap()
    let page = UInt64(MappedBuffer.pageSize)

    /// A source with data on the pages `filled` of `pages`, and a registered, empty destination.
    func setUp(pages: Int, filled: [Int]) throws -> (UserFaultFD, MappedBuffer, MappedBuffer)? {
        let uffd = try UserFaultFD()
        guard uffd.supportsMove else { return nil }
        let source = MappedBuffer(pages: pages)
        let destination = MappedBuffer(pages: pages)
        for index in filled { memset(source.base + index * Int(page), Int32(index + 1), Int(page)) }
        try uffd.register(UInt(destination.address), length: destination.size, modes: .missing)
        return (uffd, source, destination)
    }

    @Test("The page map tells pages with data from holes")
    func pageMapRuns() throws {
        let buffer = MappedBuffer(pages: 8)
        for index in [1, 2, 5] { buffer.bytes[index * Int(page)] = 1 }
        let runs = pageMap.populatedRuns(AddressInterval(start: buffer.address, end: buffer.address + 8 * page))
        #expect(runs == [
            AddressInterval(start: buffer.address + page, end: buffer.address + 3 * page),
            AddressInterval(start: buffer.address + 5 * page, end: buffer.address + 6 * page),
        ])
    }

    @Test("Pages with data move to the same offsets; holes stay holes")
    func movesAroundHoles() throws {
        guard let (uffd, source, destination) = try setUp(pages: 16, filled: [0, 3, 4, 5, 9, 15]) else { return }
        defer { try? uffd.unregister(UInt(destination.address), length: destination.size) }
        let mover = PageMover(faults: uffd, pageMap: pageMap)
        let outcome = mover.move(to: destination.address, from: source.address, length: 16 * page, wake: false)
        #expect(outcome == PageMover.Outcome(done: 16 * page, stop: nil, metHoles: true))
        let moved = pageMap.populatedRuns(AddressInterval(start: destination.address, end: destination.address + 16 * page))
        #expect(moved == [0..<1, 3..<6, 9..<10, 15..<16].map {
            AddressInterval(start: destination.address + UInt64($0.lowerBound) * page, end: destination.address + UInt64($0.upperBound) * page)
        })
        for index in [0, 3, 4, 5, 9, 15] {
            #expect(destination.bytes[index * Int(page) + 100] == UInt8(index + 1))
        }
        #expect(pageMap.populatedRuns(AddressInterval(start: source.address, end: source.address + 16 * page)) == [])
    }

    @Test("A page already at the destination stops the move there")
    func refusalStopsAtThePage() throws {
        guard let (uffd, source, destination) = try setUp(pages: 4, filled: [0, 1, 2, 3]) else { return }
        defer { try? uffd.unregister(UInt(destination.address), length: destination.size) }
        let taken = [UInt8](repeating: 0xEE, count: Int(page))
        #expect(try uffd.copy(to: UInt(destination.address + 2 * page), from: taken, length: Int(page), wake: false) == .completed)
        let mover = PageMover(faults: uffd, pageMap: pageMap)
        let outcome = mover.move(to: destination.address, from: source.address, length: 4 * page, wake: false)
        #expect(outcome.done == 2 * page)
        #expect(outcome.stop == .pageRefused(.alreadyPresent))
        #expect(destination.bytes[2 * Int(page)] == 0xEE, "the page that was there stays")
        #expect(source.bytes[2 * Int(page)] == 3, "the refused page stays at the source")
    }

    @Test("Data without holes moves in one ioctl and reports no hole")
    func wholeDataMovesAtOnce() throws {
        guard let (uffd, source, destination) = try setUp(pages: 8, filled: Array(0..<8)) else { return }
        defer { try? uffd.unregister(UInt(destination.address), length: destination.size) }
        let mover = PageMover(faults: uffd, pageMap: pageMap)
        let outcome = mover.move(to: destination.address, from: source.address, length: 8 * page, wake: false)
        #expect(outcome == PageMover.Outcome(done: 8 * page, stop: nil, metHoles: false))
        for index in 0..<8 { #expect(destination.bytes[index * Int(page) + 100] == UInt8(index + 1)) }
    }
}
