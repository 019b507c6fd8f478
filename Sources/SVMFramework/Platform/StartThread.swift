import Glibc

/// Starts a joinable thread that runs `body`, writing its handle to `thread`. The handle is
/// written by `pthread_create`, so the new thread may already run while it is written.
func startThread(_ thread: inout pthread_t, named purpose: String, _ body: @escaping @Sendable () -> Void) {
    final class Job: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let job = Unmanaged.passRetained(Job(body))
    let status = pthread_create(&thread, nil, { argument in
        Unmanaged<Job>.fromOpaque(argument!).takeRetainedValue().body()
        return nil
    }, job.toOpaque())
    precondition(status == 0, "cannot start the \(purpose) thread: \(status)")
}
