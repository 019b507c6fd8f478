/// The shape of an SVM space: notifier size, range chunk sizes, and the threshold under
/// which a chunk's CPU pages must all be present.
public struct SVMConfiguration: Sendable, Hashable {
    /// The size of one notifier interval. Default 512 MiB, as the xe driver uses.
    public var notifierSize: UInt64
    /// Range sizes to try, largest first; powers of two, descending, ending at 4 KiB.
    /// Default 2 MiB, 64 KiB, 4 KiB: the GPU page sizes of Xe.
    public var chunkSizes: [UInt64]
    /// A chunk of at most this many bytes is used only if all its CPU pages are present;
    /// otherwise a smaller chunk is tried. 0 disables the check. Default 64 KiB, as xe uses
    /// on discrete GPUs (`check_pages_threshold = SZ_64K`).
    public var checkPagesThreshold: UInt64

    public static let pageSize: UInt64 = 4096

    public init(
        notifierSize: UInt64 = 512 << 20, chunkSizes: [UInt64] = [2 << 20, 64 << 10, 4 << 10],
        checkPagesThreshold: UInt64 = 64 << 10
    ) throws(SVMConfigurationError) {
        guard notifierSize.nonzeroBitCount == 1, notifierSize >= Self.pageSize else {
            throw .invalidNotifierSize(notifierSize)
        }
        guard let last = chunkSizes.last, last == Self.pageSize,
            chunkSizes.allSatisfy({ $0.nonzeroBitCount == 1 && $0 <= notifierSize }),
            zip(chunkSizes, chunkSizes.dropFirst()).allSatisfy({ $0 > $1 })
        else { throw .invalidChunkSizes(chunkSizes) }
        self.notifierSize = notifierSize
        self.chunkSizes = chunkSizes
        self.checkPagesThreshold = checkPagesThreshold
    }

    /// The defaults: 512 MiB notifiers; 2 MiB, 64 KiB and 4 KiB chunks; 64 KiB threshold.
    public static let standard = try! SVMConfiguration()
}

/// A configuration that cannot describe an SVM space.
public enum SVMConfigurationError: Error, Hashable, CustomStringConvertible {
    case invalidNotifierSize(UInt64)
    case invalidChunkSizes([UInt64])

    public var description: String {
        switch self {
        case .invalidNotifierSize(let size):
            "notifier size \(size) is not a power of two of at least 4096 bytes"
        case .invalidChunkSizes(let sizes):
            "chunk sizes \(sizes) must be powers of two, strictly descending, no larger than the notifier, ending at 4096"
        }
    }
}
