import Foundation
import Testing

@testable import SVMFramework

/// Reading the kernel's free page reporting order (``FreePageReporting``) from a directory
/// laid out as `/sys/module/page_reporting/parameters`.
struct FreePageReportingTests {
    func order(file contents: String?) throws -> Int? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("page-reporting-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        if let contents {
            try contents.write(to: directory.appendingPathComponent("page_reporting_order"), atomically: true, encoding: .utf8)
        }
        return FreePageReporting.reportedOrder(parametersAt: directory.path)
    }

    @Test("An order the allocator has is reported; none registered (-1), above the largest, garbage or no file are not")
    func orders() throws {
        #expect(try order(file: "9\n") == 9)
        #expect(try order(file: "0\n") == 0)
        #expect(try order(file: "10\n") == 10)
        #expect(try order(file: "4294967295\n") == nil)
        #expect(try order(file: "11\n") == nil)
        #expect(try order(file: "nine\n") == nil)
        #expect(try order(file: "") == nil)
        #expect(try order(file: nil) == nil)
    }
}
