/// What both move-based floors (``MoveFloor``, ``CPUFaultFloor``) work on: a userfaultfd that
/// can move pages (no event feature: without the unmap event, the areas' munmap raises
/// none), and `count` chunks of `bytes` in a source, populated before any registration (a
/// touch of a registered missing page would wait for a handler), and in an empty
/// destination. Registering them is each floor's own business.
///
/// A floor can also go on from where another left its chunks (``init(_:after:)``), as the
/// faults it is measured against go on from where earlier faults left theirs.
struct FloorAreas: Sendable {
    let uffd: UserFaultFD
    let source: BenchmarkBuffer
    let destination: BenchmarkBuffer
    /// Bytes per chunk.
    let bytes: Int
    /// Chunks in each area.
    let count: Int

    /// - Throws: ``BenchmarkError``, starting with `label`, when userfaultfd or `UFFDIO_MOVE`
    ///   is unavailable or the areas cannot be mapped.
    init(_ label: String, bytes: Int, count: Int) throws {
        do {
            uffd = try UserFaultFD(required: [], optional: [.move, .threadID])
        } catch {
            throw BenchmarkError(message: "\(label): \(error)")
        }
        guard uffd.supportsMove else {
            throw BenchmarkError(message: "\(label): this kernel has no UFFDIO_MOVE (Linux 6.8+)")
        }
        source = try BenchmarkBuffer(size: bytes * count, alignment: bytes)
        destination = try BenchmarkBuffer(size: bytes * count, alignment: bytes)
        source.populate()
        self.bytes = bytes
        self.count = count
    }

    /// Areas whose source is `previous`'s destination, with the chunks `previous`'s floor
    /// moved there, and whose destination is new and empty, on `previous`'s userfaultfd.
    /// Nothing is populated: the chunks' pages keep the history the earlier floor gave them.
    ///
    /// - Throws: ``BenchmarkError``, starting with `label`, when the destination cannot be
    ///   mapped.
    init(_ label: String, after previous: FloorAreas) throws {
        do {
            destination = try BenchmarkBuffer(size: previous.bytes * previous.count, alignment: previous.bytes)
        } catch {
            throw BenchmarkError(message: "\(label): \(error)")
        }
        uffd = previous.uffd
        source = previous.destination
        bytes = previous.bytes
        count = previous.count
    }

    /// The address of chunk `chunk` in the source.
    func source(chunk: Int) -> UInt { source.address(chunk: chunk, of: bytes) }

    /// The address of chunk `chunk` in the destination.
    func destination(chunk: Int) -> UInt { destination.address(chunk: chunk, of: bytes) }
}
