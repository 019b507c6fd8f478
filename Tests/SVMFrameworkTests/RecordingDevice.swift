import Glibc
import SVMPluginKit
import Synchronization
import Testing

@testable import SVMFramework

/// A device for core tests without a plugin: allocate/copy work on host memory, binds are recorded.
final class RecordingDevice: OpenDevice, @unchecked Sendable {
    let memory: UnsafeMutableRawPointer
    let capacity: UInt64
    let state = Locked<(next: UInt64, binds: [(UInt64, [BindPiece])], zaps: Int, free: [UInt64: [UInt64]])>((0, [], 0, [:]))
    /// When set, every copy out of device memory fails with `EIO` (a broken device).
    let failCopiesOut = Atomic<Bool>(false)

    init(capacity: UInt64) {
        self.capacity = capacity
        memory = UnsafeMutableRawPointer.allocate(byteCount: Int(capacity), alignment: 4096)
    }

    func pagemapInfo() throws -> PagemapInfo { PagemapInfo(minPageSize: 4096, capacityBytes: capacity) }
    func close() {}
    func allocateDeviceMemory(size: UInt64) throws -> UInt64 {
        try state.withLock { state in
            if let offset = state.free[size]?.popLast() { return offset }
            guard state.next + size <= capacity else { throw PluginErrno.outOfMemory }
            defer { state.next += size }
            return state.next
        }
    }
    func freeDeviceMemory(offset: UInt64, size: UInt64) { state.withLock { $0.free[size, default: []].append(offset) } }
    func copyToDeviceMemory(offset: UInt64, from source: UnsafeRawPointer, size: UInt64) throws {
        memory.advanced(by: Int(offset)).copyMemory(from: source, byteCount: Int(size))
    }
    func copyFromDeviceMemory(offset: UInt64, to destination: UnsafeMutableRawPointer, size: UInt64) throws {
        if failCopiesOut.load(ordering: .relaxed) { throw PluginErrno.ioError }
        destination.copyMemory(from: memory.advanced(by: Int(offset)), byteCount: Int(size))
    }
    func bind(address: UInt64, size: UInt64, pieces: [BindPiece], access: BindAccess) throws {
        state.withLock { $0.binds.append((address, pieces)) }
    }
    func zap(address: UInt64, size: UInt64) throws { state.withLock { $0.zaps += 1 } }
}

