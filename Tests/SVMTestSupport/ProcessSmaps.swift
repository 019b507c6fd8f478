import Foundation

/// The lines of `/proc/self/smaps` that describe the mapping containing `address`, its
/// header first; `nil` when no mapping contains it.
public func smapsLines(ofMappingContaining address: UInt64) -> [Substring]? {
    // Read to the end: /proc files report a size of 0.
    guard let smaps = FileHandle(forReadingAtPath: "/proc/self/smaps")?.readDataToEndOfFile() else { return nil }
    let lines = String(decoding: smaps, as: UTF8.self).split(separator: "\n")
    /// A mapping's header: "start-end perms offset dev inode [path]".
    func bounds(_ line: Substring) -> (low: UInt64, high: UInt64)? {
        let parts = line.prefix { $0 != " " }.split(separator: "-")
        guard parts.count == 2, let low = UInt64(parts[0], radix: 16), let high = UInt64(parts[1], radix: 16) else { return nil }
        return (low, high)
    }
    guard let start = lines.firstIndex(where: { bounds($0).map { $0.low <= address && address < $0.high } ?? false })
    else { return nil }
    let end = lines[(start + 1)...].firstIndex { bounds($0) != nil } ?? lines.endIndex
    return Array(lines[start..<end])
}
