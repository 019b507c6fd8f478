/// Moves the pages that hold data from one place to another with `UFFDIO_MOVE`, stepping
/// over holes itself.
///
/// ## One ioctl when the data is whole
/// A range whose pages all hold data (the common case: data the program wrote, or a range
/// coming back from device memory) moves with one `UFFDIO_MOVE` and nothing else. Only when
/// the kernel reports a hole does the mover read `/proc/self/pagemap` for the rest and move
/// its populated runs one by one.
///
/// Why not `UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES`: on the kernel of our machines (6.18), a move
/// with that mode that meets a transient `EAGAIN` (a page changing under it, as when an
/// `madvise(MADV_DONTNEED)` runs at the same time) and then a hole at the same address loops
/// inside the kernel forever: the error stays set while the hole counts as moved, so the
/// loop retries the same address without end. Seen as the fault handler spinning in
/// `move_pages` (kernel stack) in the concurrency test with discards. Without the mode a
/// hole ends the move with `ENOENT` (or a partial count), and the loop cannot spin.
struct PageMover: Sendable {
    let faults: UserFaultFD
    let pageMap: PageMap

    /// Why a move stopped before its end.
    enum Stop: Equatable {
        /// An unmap, discard or remap event is pending (or arrived during the move): read
        /// events, then look at the destinations again.
        case mappingChanging
        /// The page at the stop refused (`alreadyPresent`: its destination is taken;
        /// `notRegistered`: a mapping is gone; `sourceBusy`: the page is pinned or shared).
        case pageRefused(UserFaultFD.RangeOutcome)
        /// Source and destination have different protections now (`mprotect`), or the
        /// destination is not registered, or one side is `mlock`ed: copy.
        case protectionsDiffer
    }

    /// What a move did.
    struct Outcome: Equatable {
        /// Bytes from the start dealt with (moved, or holes).
        var done: UInt64
        /// Why it stopped there; `nil` when it reached the end.
        var stop: Stop?
        /// Whether it met a hole: the destination then has holes too.
        var metHoles = false
    }

    /// Moves the pages holding data in `[source, source + length)` to the same offsets at
    /// `destination`; holes stay holes.
    ///
    /// A page the kernel moved without reporting it (it can, when it stops early) is then
    /// at its destination: the source page is a hole, which a later move skips.
    func move(to destination: UInt64, from source: UInt64, length: UInt64, wake: Bool) -> Outcome {
        let end = source + length
        var position = source
        // The whole range in one ioctl; a partial count means a hole (or a change) there.
        while position < end {
            switch moveOnce(to: destination + (position - source), from: position, length: end - position, wake: wake) {
            case .success(.completed):
                return Outcome(done: length, stop: nil, metHoles: position != source)
            case .success(.partial(let bytes)):
                position += UInt64(bytes)
            case .success(.mappingChanging):
                return Outcome(done: position - source, stop: .mappingChanging, metHoles: position != source)
            case .success(.notRegistered):
                // A hole (or the destination is gone): the page map says which.
                return moveRuns(to: destination, source: source, from: position, end: end, wake: wake)
            case .success(let refused):
                return Outcome(done: position - source, stop: .pageRefused(refused), metHoles: position != source)
            case .failure:
                return Outcome(done: position - source, stop: .protectionsDiffer, metHoles: position != source)
            }
        }
        return Outcome(done: length, stop: nil, metHoles: true)
    }

    /// The rest of a move that met a hole at `position`: the populated runs, one by one.
    private func moveRuns(to destination: UInt64, source: UInt64, from start: UInt64, end: UInt64, wake: Bool) -> Outcome {
        let rest = AddressInterval(start: start, end: end)
        // Without a page map, one run: holes then stop the move with ENOENT, one at a time.
        let runs = pageMap.populatedRuns(rest) ?? [rest]
        for run in runs {
            var position = run.start
            while position < run.end {
                switch moveOnce(to: destination + (position - source), from: position, length: run.end - position, wake: wake) {
                case .success(.completed):
                    position = run.end
                case .success(.partial(let bytes)):
                    // Stopped early (a hole appeared, or the mapping is changing): go on
                    // from there; a pending event answers `mappingChanging` next.
                    position += UInt64(bytes)
                case .success(.mappingChanging):
                    return Outcome(done: position - source, stop: .mappingChanging, metHoles: true)
                case .success(.notRegistered) where !holdsData(position):
                    // ENOENT for a hole that appeared since the page map was read: step over.
                    position += 4096
                case .success(let refused):
                    return Outcome(done: position - source, stop: .pageRefused(refused), metHoles: true)
                case .failure:
                    return Outcome(done: position - source, stop: .protectionsDiffer, metHoles: true)
                }
            }
        }
        return Outcome(done: end - source, stop: nil, metHoles: true)
    }

    /// One `UFFDIO_MOVE`; a thrown error is `EINVAL` (protections or `mlock` differ: the
    /// only error left for valid ranges).
    private func moveOnce(to destination: UInt64, from source: UInt64, length: UInt64, wake: Bool)
        -> Result<UserFaultFD.RangeOutcome, UserFaultFDError>
    {
        Result { () throws(UserFaultFDError) in
            try faults.move(to: UInt(destination), from: UInt(source), length: Int(length), wake: wake)
        }
    }

    /// Whether the page at `address` holds data now (when unknown: no, so that the move
    /// goes on and makes progress).
    private func holdsData(_ address: UInt64) -> Bool {
        pageMap.holdsNoData(AddressInterval(start: address, end: address + 4096)) == false
    }
}
