import Glibc
import SVMPluginKit
import Synchronization

/// A thread that runs one job whenever it is woken, off the waker's path, until stopped.
/// Wakes are coalesced: waking it while the job runs makes the job run once more, however
/// many wakes came. The thread starts on the first wake.
final class BackgroundWorker: @unchecked Sendable {
    private struct State {
        var started = false
        var stopping = false
        /// A wake not yet taken by the thread (then the semaphore holds one post).
        var pending = false
        /// What the thread runs on a wake: the latest job given.
        var job: (@Sendable () -> Void)?
    }

    private let state = Locked(State())
    // sem_t must not move: it lives in its own allocation.
    private let signal: UnsafeMutablePointer<sem_t>
    /// Written once, under `state`, before the thread runs; joined by ``stop()``.
    private var thread = pthread_t()

    init() {
        signal = .allocate(capacity: 1)
        sem_init(signal, 0, 0)
    }

    deinit {
        sem_destroy(signal)
        signal.deallocate()
    }

    /// Makes `job` run soon on the worker thread (starting it if needed); no-op once
    /// stopped. Coalesced wakes run the latest job once.
    func wake(_ job: @escaping @Sendable () -> Void) {
        let post = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.job = job
            guard !state.pending else { return false }
            state.pending = true
            if !state.started {
                state.started = true
                startThread(&thread, named: "background worker") { self.run() }
            }
            return true
        }
        if post { sem_post(signal) }
    }

    /// Stops the thread after the job in progress, if any, and waits for it.
    func stop() {
        let started = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.stopping = true
            return state.started
        }
        guard started else { return }
        sem_post(signal)
        pthread_join(thread, nil)
    }

    private func run() {
        while true {
            while sem_wait(signal) != 0 {}  // EINTR
            let job = state.withLock { state -> (@Sendable () -> Void)? in
                state.pending = false
                return state.stopping ? nil : state.job
            }
            guard let job else { return }
            job()
        }
    }
}
