import SVMPluginKit
import Synchronization

/// Keeps one device's kernel from thrashing when device memory cannot hold the ranges its
/// accesses need at once (a triad whose three arrays do not fit): without it, each fault
/// batch evicts what the previous one migrated, the replay faults on that again, and the
/// kernel never finishes.
///
/// Two rules, for the kernel running on the device:
/// - eviction spares the ranges the fault batch being serviced migrated (they were
///   wanted a moment ago and are not used yet);
/// - a range evicted while this kernel runs that faults again in it is thrashing: it is
///   not migrated again, its system memory is mapped in place (remote accesses over the
///   link), as UVM's thrashing mitigation maps thrashing pages remotely.
///
/// So a range migrates at most twice per kernel, and every kernel makes progress. Device
/// atomics need device memory and ignore both rules (the fault path, `DeviceFaultPath`). Faults raised outside
/// a kernel launched through ``SVMDevice/run(_:)`` (direct calls, in tests) see no rule.
final class ThrashingGuard: Sendable {
    private struct State {
        var kernel: UInt64 = 0
        var batch: UInt64 = 0
        var migratedInBatch: Set<ObjectIdentifier> = []
        var evictedInKernel: Set<ObjectIdentifier> = []
    }

    private let state = Locked(State())

    /// A fault of kernel launch `kernel` (0: none) in fault batch `batch` (0: the device
    /// does not batch) arrived.
    func begin(kernel: UInt64, batch: UInt64) {
        state.withLock { state in
            if state.kernel != kernel {
                state = State(kernel: kernel, batch: batch)
            } else if state.batch != batch || batch == 0 {
                state.batch = batch
                state.migratedInBatch = []
            }
        }
    }

    /// The current batch migrated `range` to the device.
    func migrated(_ range: SVMRange) {
        state.withLock { state in
            guard state.kernel != 0, state.batch != 0 else { return }
            state.migratedInBatch.insert(ObjectIdentifier(range))
        }
    }

    /// `range` was evicted from the device while the current kernel runs.
    func evicted(_ range: SVMRange) {
        state.withLock { state in
            guard state.kernel != 0 else { return }
            state.evictedInKernel.insert(ObjectIdentifier(range))
        }
    }

    /// Whether eviction must spare `range`: the current batch migrated it.
    func spares(_ range: SVMRange) -> Bool {
        state.withLock { $0.migratedInBatch.contains(ObjectIdentifier(range)) }
    }

    /// Whether `range` thrashes: evicted during the current kernel, wanted again by it.
    func thrashes(_ range: SVMRange) -> Bool {
        state.withLock { $0.evictedInKernel.contains(ObjectIdentifier(range)) }
    }
}
