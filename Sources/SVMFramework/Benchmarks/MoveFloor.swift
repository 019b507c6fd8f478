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
    /// faults are.
    ///
    /// - Throws: ``BenchmarkError`` when userfaultfd or `UFFDIO_MOVE` is unavailable, the
    ///   areas cannot be mapped or registered, or a move does not complete.
    func times() throws -> [Int] {
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
        for chunk in 0..<count {
            try move(uffd, to: destination.address(chunk: chunk, of: bytes), from: source.address(chunk: chunk, of: bytes))
            try move(uffd, to: source.address(chunk: chunk, of: bytes), from: destination.address(chunk: chunk, of: bytes))
        }
        var times: [Int] = []
        times.reserveCapacity(count)
        for chunk in 0..<count {
            let start = FaultBenchmark.now()
            try move(uffd, to: destination.address(chunk: chunk, of: bytes), from: source.address(chunk: chunk, of: bytes))
            times.append(FaultBenchmark.now() - start)
        }
        // The pages are present at the destination now: reading them raises no fault.
        for chunk in 0..<count {
            let byte = destination.base.load(fromByteOffset: chunk * bytes + bytes - 1, as: UInt8.self)
            guard byte == BenchmarkBuffer.pattern else {
                throw BenchmarkError(message: "move floor: chunk \(chunk) arrived as \(byte), not \(BenchmarkBuffer.pattern)")
            }
        }
        return times
    }

    private func move(_ uffd: UserFaultFD, to destination: UInt, from source: UInt) throws {
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
