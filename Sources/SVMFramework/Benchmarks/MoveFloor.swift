import Glibc

/// The floor of a migration that moves pages instead of copying them: a bare `UFFDIO_MOVE`
/// of one chunk between two areas registered with one userfaultfd, the source populated and
/// the destination empty, with no framework around it. A device fault that migrates by
/// moving cannot be faster than this, so ``FaultBenchmark`` reports its faults as multiples
/// of it, measured in the same run.
///
/// Each move carries a different chunk (as each measured fault does), after a round trip
/// of every chunk that is not timed: the destination's page tables then exist, as the
/// device memory's do after the fault benchmark's warm-up round. ``FaultBenchmark`` makes
/// those round trips next to its warm-up faults, chunk by chunk (``Session/roundTrip(chunk:there:)``),
/// so that the floor's pages are as recently touched as the faults' pages when both are
/// timed.
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
        try session.roundTripEveryChunk()
        let times = try (0..<count).map { try session.time(chunk: $0) }
        try session.verify()
        return times
    }

    /// The areas, registered, for moves timed one at a time once every chunk has made its
    /// round trip (``Session/roundTrip(chunk:there:)``, there and back): ``FaultBenchmark``
    /// times them in blocks between blocks of faults, so that the floor and the faults meet
    /// the same machine (on a shared one its speed drifts within seconds).
    func prepare() throws -> Session {
        // Nothing touches a missing page of the areas, so no fault is raised; nobody has to
        // read the descriptor.
        let areas = try FloorAreas("move floor", bytes: bytes, count: count)
        let size = bytes * count
        do {
            try areas.uffd.register(UInt(areas.source.address), length: size, modes: .missing)
            try areas.uffd.register(UInt(areas.destination.address), length: size, modes: .missing)
        } catch {
            throw BenchmarkError(message: "move floor: \(error)")
        }
        return Session(areas: areas)
    }

    /// Prepared areas (see ``prepare()``); each chunk is moved once.
    final class Session {
        let areas: FloorAreas

        fileprivate init(areas: FloorAreas) { self.areas = areas }

        /// Half of chunk `chunk`'s untimed round trip: to the destination (`there`) or back
        /// to the source. Why a round trip: a move into a destination whose page tables do
        /// not exist yet allocates them, which the faults after a warm-up do not.
        func roundTrip(chunk: Int, there: Bool) throws {
            let (source, destination) = (areas.source(chunk: chunk), areas.destination(chunk: chunk))
            try there ? move(to: destination, from: source) : move(to: source, from: destination)
        }

        /// Every chunk's round trip, all of them there, then all back, with nothing alongside.
        func roundTripEveryChunk() throws {
            for there in [true, false] { for chunk in 0..<areas.count { try roundTrip(chunk: chunk, there: there) } }
        }

        /// Moves chunk `chunk` (below `count`, each once) from the source to the destination;
        /// its nanoseconds.
        func time(chunk: Int) throws -> Int {
            let (to, from) = (areas.destination(chunk: chunk), areas.source(chunk: chunk))
            let start = FaultBenchmark.now()
            try move(to: to, from: from)
            return FaultBenchmark.now() - start
        }

        /// Checks that every chunk moved arrived with its bytes.
        func verify() throws {
            // The pages are present at the destination now: reading them raises no fault.
            for chunk in 0..<areas.count {
                let byte = areas.destination.base.load(fromByteOffset: chunk * areas.bytes + areas.bytes - 1, as: UInt8.self)
                guard byte == BenchmarkBuffer.pattern else {
                    throw BenchmarkError(message: "move floor: chunk \(chunk) arrived as \(byte), not \(BenchmarkBuffer.pattern)")
                }
            }
        }

        fileprivate func move(to destination: UInt, from source: UInt) throws {
            let outcome: UserFaultFD.RangeOutcome
            do {
                outcome = try areas.uffd.move(to: destination, from: source, length: areas.bytes)
            } catch {
                throw BenchmarkError(message: "move floor: \(error)")
            }
            guard outcome == .completed else {
                throw BenchmarkError(message: "move floor: UFFDIO_MOVE of \(areas.bytes) bytes at 0x\(String(destination, radix: 16)) ended \(outcome)")
            }
        }
    }
}
