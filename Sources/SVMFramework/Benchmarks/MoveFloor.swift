import Glibc

/// The floor of a migration that moves pages instead of copying them: a bare `UFFDIO_MOVE`
/// of one chunk between two areas registered with one userfaultfd, the source populated and
/// the destination empty, with no framework around it. A device fault that migrates by
/// moving cannot be faster than this, so ``FaultBenchmark`` reports its faults as multiples
/// of it, measured in the same run.
///
/// Each move carries a different chunk (as each measured fault does), after a round trip
/// of every chunk that is not timed: the destination's page tables then exist, as the
/// device memory's do after the fault benchmark's warm-up round.
struct MoveFloor {
    /// Bytes per move: the chunk size.
    let bytes: Int
    /// Moves timed.
    let count: Int

    /// The nanoseconds of each move, timed with `clock_gettime` around the ioctl as the
    /// faults are, all in a row.
    ///
    /// - Throws: ``BenchmarkError`` when userfaultfd or `UFFDIO_MOVE` is unavailable, the
    ///   areas cannot be mapped or registered, or a move does not complete.
    func times() throws -> [Int] {
        let session = try prepare()
        let times = try (0..<count).map { try session.time(chunk: $0) }
        try session.verify()
        return times
    }

    /// The areas, registered and with a round trip of every chunk done, for moves timed one
    /// at a time: ``FaultBenchmark`` times one before each fault, so that the floor and the
    /// faults meet the same machine (on a shared one its speed drifts within seconds).
    func prepare() throws -> Session {
        // Nothing touches a missing page of the areas, so no fault is raised; nobody has to
        // read the descriptor.
        let (uffd, source, destination) = try Self.moveSetUp("move floor", bytes: bytes, count: count)
        let size = bytes * count
        do {
            try uffd.register(UInt(source.address), length: size, modes: .missing)
            try uffd.register(UInt(destination.address), length: size, modes: .missing)
        } catch {
            throw BenchmarkError(message: "move floor: \(error)")
        }
        let session = Session(uffd: uffd, source: source, destination: destination, bytes: bytes, count: count)
        for chunk in 0..<count {
            try session.move(to: destination.address(chunk: chunk, of: bytes), from: source.address(chunk: chunk, of: bytes))
            try session.move(to: source.address(chunk: chunk, of: bytes), from: destination.address(chunk: chunk, of: bytes))
        }
        return session
    }

    /// Prepared areas (see ``prepare()``); each chunk is moved once.
    final class Session {
        let uffd: UserFaultFD
        let source: BenchmarkBuffer
        let destination: BenchmarkBuffer
        let bytes: Int
        let count: Int

        fileprivate init(uffd: UserFaultFD, source: BenchmarkBuffer, destination: BenchmarkBuffer, bytes: Int, count: Int) {
            self.uffd = uffd
            self.source = source
            self.destination = destination
            self.bytes = bytes
            self.count = count
        }

        /// Moves chunk `chunk` (below `count`, each once) from the source to the destination;
        /// its nanoseconds.
        func time(chunk: Int) throws -> Int {
            let (to, from) = (destination.address(chunk: chunk, of: bytes), source.address(chunk: chunk, of: bytes))
            let start = FaultBenchmark.now()
            try move(to: to, from: from)
            return FaultBenchmark.now() - start
        }

        /// Checks that every chunk moved arrived with its bytes.
        func verify() throws {
            // The pages are present at the destination now: reading them raises no fault.
            for chunk in 0..<count {
                let byte = destination.base.load(fromByteOffset: chunk * bytes + bytes - 1, as: UInt8.self)
                guard byte == BenchmarkBuffer.pattern else {
                    throw BenchmarkError(message: "move floor: chunk \(chunk) arrived as \(byte), not \(BenchmarkBuffer.pattern)")
                }
            }
        }

        fileprivate func move(to destination: UInt, from source: UInt) throws {
            let outcome: UserFaultFD.RangeOutcome
            do {
                outcome = try uffd.move(to: destination, from: source, length: bytes)
            } catch {
                throw BenchmarkError(message: "move floor: \(error)")
            }
            guard outcome == .completed else {
                throw BenchmarkError(message: "move floor: UFFDIO_MOVE of \(bytes) bytes at 0x\(String(destination, radix: 16)) ended \(outcome)")
            }
        }
    }

    /// What both floors start from: a userfaultfd that can move pages (no event feature:
    /// without the unmap event, the areas' munmap raises none), and `count` chunks of `bytes`
    /// in a source, populated before any registration (a touch of a registered missing page
    /// would wait for a handler), and in an empty destination.
    static func moveSetUp(_ label: String, bytes: Int, count: Int) throws -> (UserFaultFD, source: BenchmarkBuffer, destination: BenchmarkBuffer) {
        let uffd: UserFaultFD
        do {
            uffd = try UserFaultFD(required: [], optional: [.move])
        } catch {
            throw BenchmarkError(message: "\(label): \(error)")
        }
        guard uffd.supportsMove else {
            throw BenchmarkError(message: "\(label): this kernel has no UFFDIO_MOVE (Linux 6.8+)")
        }
        let source = try BenchmarkBuffer(size: bytes * count, alignment: bytes)
        let destination = try BenchmarkBuffer(size: bytes * count, alignment: bytes)
        source.populate()
        return (uffd, source, destination)
    }
}
