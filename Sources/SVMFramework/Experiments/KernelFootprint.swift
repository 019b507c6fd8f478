import SVMPluginKit

/// The SVM memory a kernel reads and writes, as far as the kernel itself says (a gather's
/// table has no size in it: the caller names the table).
struct KernelFootprint {
    var reads: [AddressInterval] = []
    var writes: [AddressInterval] = []

    init(_ kernel: DeviceKernel) {
        func interval(_ start: UInt64, _ size: UInt64) -> [AddressInterval] {
            size > 0 ? [AddressInterval(start: start, end: start + size)] : []
        }
        switch kernel {
        case .fill(let destination, let size, _), .write(let destination, let size, _):
            writes = interval(destination, size)
        case .copy(let destination, let source, let size):
            reads = interval(source, size)
            writes = interval(destination, size)
        case .increment(let destination, let size, _):
            reads = interval(destination, size)
            writes = reads
        case .read(let source, let size, _):
            reads = interval(source, size)
        case .triad(let a, let b, let c, let size, _):
            reads = interval(b, size) + interval(c, size)
            writes = interval(a, size)
        case .gather(let destination, let indices, _, let size):
            reads = interval(indices, size)
            writes = interval(destination, size)
        }
    }

    var all: [AddressInterval] { reads + writes }
}
