import Glibc
import Synchronization

/// The floor of any CPU fault that userfaultfd serves: a thread touches a missing page of a
/// registered area, a second thread reads the fault and resolves it with one `UFFDIO_MOVE` of
/// the chunk from a populated area, and the kernel wakes the first. No framework around it.
/// A CPU fault on device-resident data takes this path plus the framework's work, so
/// ``FaultBenchmark`` reports CPU faults as multiples of it too, measured in the same run.
///
/// Why it is a floor of its own and not the move floor: the kernel's own fault path runs on
/// the faulting CPU, but a userfaultfd fault costs two thread switches (to the handler and
/// back), and the handler's move flushes the TLB of the faulting thread's CPU with an IPI. On
/// this project's 2-core VMs that is 5–70 µs for 4 KiB and about 90 µs for 2 MiB, against a
/// 1–20 µs bare move (measured while writing this type).
struct CPUFaultFloor {
    /// Bytes per fault: the chunk size.
    let bytes: Int
    /// Faults timed.
    let count: Int
    /// Where the handler thread runs: as the mirror's does in the contexts measured.
    var placement: HandlerPlacement = .scheduler

    /// The areas, registered, with the handler thread serving them, for faults timed one at
    /// a time (``FaultBenchmark`` times them in blocks between blocks of CPU faults, as it
    /// does the move floor). Call ``Session/finish()`` once every chunk has been touched.
    ///
    /// `previous` is a move-floor session of as many chunks of as many bytes, every one
    /// moved: the handler moves those chunks on from where that floor left them (as the CPU
    /// faults it is measured against move back the chunks the device faults moved), and
    /// their pages keep the history that floor gave them, not that of a fresh memset.
    func prepare(after previous: MoveFloor.Session) throws -> Session {
        let areas = try FloorAreas("CPU fault floor", after: previous.areas)
        precondition(areas.bytes == bytes && areas.count == count, "CPU fault floor: the move floor's chunks are not this floor's")
        do {
            try areas.uffd.register(UInt(areas.destination.address), length: bytes * count, modes: .missing)
        } catch {
            throw BenchmarkError(message: "CPU fault floor: \(error)")
        }
        let serving = Server(areas: areas, placement: placement)
        var handler = pthread_t()
        startThread(&handler, named: "CPU fault floor handler") { serving.run() }
        return Session(serving: serving, handler: handler)
    }

    /// The prepared areas and their handler thread (see ``prepare()``).
    final class Session {
        private let serving: Server
        private let handler: pthread_t

        /// The areas the handler moves chunks between.
        var areas: FloorAreas { serving.areas }

        fileprivate init(serving: Server, handler: pthread_t) {
            self.serving = serving
            self.handler = handler
        }

        /// Touches chunk `chunk` (below `count`, each once), which the handler moves in;
        /// the nanoseconds of that fault.
        func time(chunk: Int) -> Int {
            let start = FaultBenchmark.now()
            serving.areas.destination.touch(offset: chunk * serving.areas.bytes)
            return FaultBenchmark.now() - start
        }

        /// Waits for the handler thread to end (it ends after `count` faults) and checks
        /// that each fault was served by a move.
        func finish() throws {
            pthread_join(handler, nil)
            let moved = serving.moved.load(ordering: .relaxed)
            guard moved == serving.areas.count else {
                throw BenchmarkError(message: "CPU fault floor: \(moved) of \(serving.areas.count) faults served by a move")
            }
        }
    }

    /// The handler thread: serves `count` faults, one move each, then ends.
    fileprivate final class Server: Sendable {
        let areas: FloorAreas
        /// Faults served by a move (the others by a copy, so that no touch waits forever).
        let moved = Atomic<Int>(0)
        let placement: HandlerPlacement

        init(areas: FloorAreas, placement: HandlerPlacement) {
            self.areas = areas
            self.placement = placement
        }

        func run() {
            var left = areas.count
            var follower = placement == .followFaultingThread ? FaultingThreadFollower() : nil
            // 10 s without a fault: the benchmark thread is gone; stop.
            while left > 0, let event = try? areas.uffd.waitForEvent(timeout: .seconds(10)) {
                guard case .pagefault(let address, _, _, let threadID) = event else { continue }
                let chunk = (Int(address) - Int(areas.destination.address)) / areas.bytes
                let (target, from) = (areas.destination(chunk: chunk), areas.source(chunk: chunk))
                if (try? areas.uffd.move(to: target, from: from, length: areas.bytes)) == .completed {
                    moved.add(1, ordering: .relaxed)
                } else {
                    _ = try? areas.uffd.copy(to: target, from: UnsafeRawPointer(bitPattern: from)!, length: areas.bytes)
                }
                left -= 1
                follower?.served(faultOf: threadID)
            }
        }
    }
}
