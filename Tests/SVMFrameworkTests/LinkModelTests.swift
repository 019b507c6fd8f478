import Testing

@testable import SVMFramework

/// The link model against values computed by hand. The test link moves 10 bytes per
/// nanosecond (10 GB/s) with 1 µs latency and a half-efficiency size of 1000 bytes, so a
/// transfer of `s` bytes carries `s + 1000` bytes of work.
@Suite("Link model")
struct LinkModelTests {
    static let link = LinkParameters(name: "test", latencyNanoseconds: 1_000, bytesPerSecond: 10e9, halfEfficiencyBytes: 1_000)

    /// Starts transfers of `sizes[i]` bytes at `starts[i]` (ns) and returns when each arrived.
    func arrivals(_ transfers: [(start: UInt64, bytes: UInt64, cap: Double?)], link: LinkParameters = link) -> [UInt64] {
        let queue = EventQueue()
        let channel = SimulatedRoute(link, network: SimulatedNetwork(queue: queue, halfEfficiencyBytes: link.halfEfficiencyBytes), queue: queue)
        var arrived = [UInt64](repeating: 0, count: transfers.count)
        for (index, transfer) in transfers.enumerated() {
            queue.schedule(at: transfer.start) {
                channel.transfer(bytes: transfer.bytes, capBytesPerSecond: transfer.cap) { arrived[index] = $0 }
            }
        }
        queue.run()
        return arrived
    }

    @Test("One transfer: latency + (bytes + half-efficiency bytes) / bandwidth")
    func oneTransfer() {
        // (10 000 + 1 000) / 10 = 1 100 ns of data, then 1 000 ns of latency.
        #expect(arrivals([(0, 10_000, nil)]) == [2_100])
        // Efficiency: 1 000 bytes reach half the bandwidth, 9 000 bytes 90%.
        #expect(Self.link.efficiency(bytes: 1_000) == 0.5)
        #expect(Self.link.efficiency(bytes: 9_000) == 0.9)
    }

    @Test("Two transfers started together share the bandwidth and arrive together")
    func twoCompeting() {
        // Each gets 5 bytes/ns: 11 000 / 5 = 2 200 ns, + 1 000.
        #expect(arrivals([(0, 10_000, nil), (0, 10_000, nil)]) == [3_200, 3_200])
    }

    @Test("A transfer joining later takes half from then on; the first one's end gives it all back")
    func staggered() {
        // A alone for 500 ns: 5 000 of its 11 000 done. Both at 5/ns: A's 6 000 left take
        // 1 200 ns (ends 1 700, arrives 2 700); B did 6 000 of 11 000 meanwhile, its 5 000
        // left take 500 ns alone (ends 2 200, arrives 3 200).
        #expect(arrivals([(0, 10_000, nil), (500, 10_000, nil)]) == [2_700, 3_200])
    }

    @Test("A capped transfer leaves its unused share to the other (max-min fairness)")
    func capped() {
        // A is capped at 2 bytes/ns (2 GB/s): B gets 8. B: 11 000 / 8 = 1 375 ns (arrives
        // 2 375); A did 2 750 by then, its 8 250 left at its cap take 4 125 ns: ends 5 500,
        // arrives 6 500.
        #expect(arrivals([(0, 10_000, 2e9), (0, 10_000, nil)]) == [6_500, 2_375])
    }

    @Test("The two directions of a link do not compete")
    func directions() {
        let queue = EventQueue()
        let toDevice = SimulatedRoute(Self.link, network: SimulatedNetwork(queue: queue, halfEfficiencyBytes: Self.link.halfEfficiencyBytes), queue: queue)
        let toHost = SimulatedRoute(Self.link, network: SimulatedNetwork(queue: queue, halfEfficiencyBytes: Self.link.halfEfficiencyBytes), queue: queue)
        var arrived: [UInt64] = []
        toDevice.transfer(bytes: 10_000) { arrived.append($0) }
        toHost.transfer(bytes: 10_000) { arrived.append($0) }
        queue.run()
        #expect(arrived == [2_100, 2_100])
        #expect(toDevice.carried.bytes == 10_000 && toDevice.carried.transfers == 1 && toDevice.carried.busyNanoseconds == 1_100)
    }

    @Test("Copy engines: a third migration waits for one of two engines")
    func copyEngines() {
        let queue = EventQueue()
        let engines = CopyEngines(count: 2, bytesPerSecond: 1e12)
        let channel = SimulatedRoute(Self.link, network: SimulatedNetwork(queue: queue, halfEfficiencyBytes: Self.link.halfEfficiencyBytes), queue: queue)
        var log: [(engine: Int, end: UInt64)] = []
        for _ in 0..<3 {
            engines.acquire { engine in
                channel.transfer(bytes: 10_000, capBytesPerSecond: engines.bytesPerSecond) { end in
                    log.append((engine, end))
                    engines.release(engine)
                }
            }
        }
        queue.run()
        // Two share the link: data ends 2 200, arrival 3 200; the third then runs alone:
        // 1 100 of data from 3 200, arrives 5 300.
        #expect(log.map(\.end) == [3_200, 3_200, 5_300])
        #expect(log.map(\.engine) == [0, 1, 0])
    }

    @Test("Events at the same time run in the order they were scheduled")
    func eventOrder() {
        let queue = EventQueue()
        var order: [Int] = []
        queue.schedule(at: 10) { order.append(2) }
        queue.schedule(at: 5) { order.append(1) }
        queue.schedule(at: 10) { order.append(3) }
        queue.schedule(at: 10) { queue.schedule(at: 10) { order.append(5) }; order.append(4) }
        queue.run()
        #expect(order == [1, 2, 3, 4, 5])
        #expect(queue.now == 10)
    }

    @Test("PCIe defaults state their numbers: Gen4 x16 31.5 GB/s, Gen5 x16 63 GB/s per direction")
    func pcieDefaults() {
        #expect(LinkParameters.pcieGen4x16.bytesPerSecond == 31.5e9)
        #expect(LinkParameters.pcieGen5x16.bytesPerSecond == 63e9)
        // A 2 MiB migration over Gen4 alone: 1 µs + (2 MiB + 8 KiB) / 31.5 GB/s ≈ 67.8 µs.
        let bytes: UInt64 = 2 << 20
        let arrival = arrivals([(0, bytes, nil)], link: .pcieGen4x16)[0]
        #expect(arrival == 1_000 + UInt64((Double(bytes + 8192) / 31.5).rounded(.up)))
    }
}

/// The network's max-min fairness across routes of several channels, against values
/// computed by hand (progressive filling).
@Suite("Network model")
struct NetworkModelTests {
    /// Transfers of 9 000 bytes (10 000 of work with the 1 000-byte overhead) over routes of
    /// channels with the given capacities (bytes per ns, no latency): their arrival times.
    func arrivals(capacities: [Double], routes: [[Int]]) -> [UInt64] {
        let queue = EventQueue()
        let network = SimulatedNetwork(queue: queue, halfEfficiencyBytes: 1_000)
        let channels = capacities.enumerated().map { network.addChannel(name: "c\($0.offset)", bytesPerSecond: $0.element * 1e9, latencyNanoseconds: 0) }
        var arrived = [UInt64](repeating: 0, count: routes.count)
        for (index, route) in routes.enumerated() {
            network.transfer(bytes: 9_000, route: route.map { channels[$0] }) { arrived[index] = $0 }
        }
        queue.run()
        return arrived
    }

    @Test("A transfer over two channels gets the narrower's share; what it leaves on the wider goes to the others there")
    func progressiveFilling() {
        // c1 (4/ns) is the bottleneck: T0 (c0+c1) and T1 (c1) get 2/ns; T2 (c0) gets the 8/ns
        // T0 leaves on c0 and finishes at 1 250 ns. Then T0 and T1 share c1 alone: still 2/ns
        // each, done at 5 000 ns.
        #expect(arrivals(capacities: [10, 4], routes: [[0, 1], [1], [0]]) == [5_000, 5_000, 1_250])
        // Equal channels: c0 is shared by T0 and T2, c1 by T0 and T1: 5/ns each, 2 000 ns.
        #expect(arrivals(capacities: [10, 10], routes: [[0, 1], [1], [0]]) == [2_000, 2_000, 2_000])
        // No shared channel: each alone at full speed.
        #expect(arrivals(capacities: [10, 10], routes: [[0], [1]]) == [1_000, 1_000])
    }
}
