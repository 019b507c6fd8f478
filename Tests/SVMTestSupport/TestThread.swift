import Glibc

/// A plain pthread running a closure, for tests that need a real second thread (a CPU
/// thread faulting while a device runs, a thread unmapping memory). Join or detach it once.
public final class TestThread: @unchecked Sendable {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private var thread = pthread_t()

    public init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        let status = pthread_create(&thread, nil, { argument in
            Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, box)
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    public func join() { pthread_join(thread, nil) }

    /// Leaves the thread behind (for one stuck in a fault a test gave up on); no join after.
    public func detach() { pthread_detach(thread) }
}
