/// A device's copy engines in simulated time: each runs one transfer at a time, at most
/// at its own bandwidth; transfers wait for a free engine in the order they asked, and
/// take the free engine with the lowest number (so the trace is the same on every run).
final class CopyEngines {
    let count: Int
    /// One engine's bandwidth, bytes per second.
    let bytesPerSecond: Double
    private var idle: [Int]
    private var waiting: [(Int) -> Void] = []

    init(count: Int, bytesPerSecond: Double) {
        precondition(count > 0, "a device needs at least one copy engine")
        self.count = count
        self.bytesPerSecond = bytesPerSecond
        idle = Array(0..<count)
    }

    /// Runs `start` with an engine's number as soon as one is free (at once, or when one
    /// is released).
    func acquire(_ start: @escaping (Int) -> Void) {
        if idle.isEmpty {
            waiting.append(start)
        } else {
            start(idle.removeFirst())
        }
    }

    /// Gives engine `engine` to the next waiter, or back to the pool.
    func release(_ engine: Int) {
        if waiting.isEmpty {
            idle.append(engine)
            idle.sort()
        } else {
            waiting.removeFirst()(engine)
        }
    }
}
