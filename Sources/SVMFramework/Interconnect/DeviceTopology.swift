import SVMPluginKit

/// Which open devices reach each other's memory directly, and by which path: what the
/// loaded interconnect plugins answer for every ordered pair of devices (by their
/// locations), and the owner groups that follow (the kernel's `drm_pagemap_owner_list`).
///
/// Two devices with a peer path each way share an owner group: they may map and migrate
/// into each other's memory directly. Others reach each other through system memory. A
/// pair of devices of different device plugins is no exception: it is a group only when an
/// interconnect gives it a path. Owner groups are the connected components of the
/// "paths both ways" relation.
public struct DeviceTopology: Sendable {
    /// An open device as the topology sees it.
    public struct Device: Sendable, Hashable {
        public let id: UInt64
        public let info: DeviceInfo
    }

    /// The devices, in the order they were opened.
    public private(set) var devices: [Device] = []
    /// The path from the first device to the second's memory; a missing pair has none.
    private var paths: [Pair: Answer] = [:]
    /// Each device's PCIe links up to the root complex, in the topology of the first
    /// interconnect that has its location.
    private var hostRoutes: [UInt64: [TopologyLink]] = [:]

    private struct Pair: Hashable {
        let from: UInt64
        let to: UInt64
    }

    /// One pair's answer: the path, and the interconnect plugin that gave it.
    private struct Answer: Sendable {
        let path: PeerPath
        let interconnect: String
    }

    public init() {}

    /// Adds `device`, asking each interconnect (in order; the first path wins) for the
    /// paths between it and every device already added. A plugin that fails to answer is
    /// taken as having no path, and its failure returned for the caller to report.
    public mutating func add(_ device: Device, interconnects: [(name: String, interconnect: any Interconnect)]) -> [String] {
        var failures: [String] = []
        for other in devices {
            for (from, to) in [(device, other), (other, device)] {
                guard !from.info.location.isEmpty, !to.info.location.isEmpty else { continue }
                for (name, interconnect) in interconnects {
                    do {
                        guard try interconnect.canConnect(from.info, to.info),
                            let path = try interconnect.path(from: from.info.location, to: to.info.location)
                        else { continue }
                        paths[Pair(from: from.id, to: to.id)] = Answer(path: path, interconnect: name)
                        break
                    } catch let error as PluginErrno where error == .noDevice {
                        continue  // a location this fabric does not have
                    } catch {
                        failures.append("\(name): path from \(from.info.location) to \(to.info.location): \(error)")
                    }
                }
            }
        }
        for (name, interconnect) in interconnects where !device.info.location.isEmpty && hostRoutes[device.id] == nil {
            do {
                let route = Self.routeToRoot(from: device.info.location, over: try interconnect.links())
                if !route.isEmpty { hostRoutes[device.id] = route }
            } catch {
                failures.append("\(name): links: \(error)")
            }
        }
        devices.append(device)
        return failures
    }

    /// The PCIe links from `location` up to the root of its tree, nearest first: a PCIe
    /// link's `endA` is the end nearer the root complex, so each step follows the link whose
    /// `endB` is where it stands, until none is (the root). Empty when the location has no
    /// PCIe link; cut at 16 steps should a plugin describe a cycle.
    static func routeToRoot(from location: String, over links: [TopologyLink]) -> [TopologyLink] {
        var route: [TopologyLink] = []
        var node = location
        while route.count < 16, let link = links.first(where: { $0.kind == .pcie && $0.endB == node }) {
            route.append(link)
            node = link.endA
        }
        return route
    }

    /// The PCIe links from device `deviceID` up to the root complex, which its host traffic
    /// crosses; `nil` when no interconnect places it.
    public func hostRoute(of deviceID: UInt64) -> [TopologyLink]? { hostRoutes[deviceID] }

    /// Forgets `deviceID` and its paths.
    public mutating func remove(_ deviceID: UInt64) {
        devices.removeAll { $0.id == deviceID }
        hostRoutes[deviceID] = nil
        paths = paths.filter { $0.key.from != deviceID && $0.key.to != deviceID }
    }

    /// The path from device `from` to device `to`'s memory, or `nil` (`-ENOLINK`): they reach
    /// each other through system memory only.
    public func path(from: UInt64, to: UInt64) -> PeerPath? { paths[Pair(from: from, to: to)]?.path }

    /// The interconnect plugin that gave the path from `from` to `to`.
    public func interconnect(from: UInt64, to: UInt64) -> String? { paths[Pair(from: from, to: to)]?.interconnect }

    /// The owner groups: sets of device ids, each in opening order, the groups ordered by
    /// their first device. A device without peers is a group of its own.
    public var ownerGroups: [[UInt64]] {
        // Union-find over the devices' indices, joining every pair with paths both ways.
        var parent = Array(devices.indices)
        func root(_ index: Int) -> Int {
            var index = index
            while parent[index] != index { index = parent[index] }
            return index
        }
        for a in devices.indices {
            for b in devices.indices where a < b {
                guard path(from: devices[a].id, to: devices[b].id) != nil, path(from: devices[b].id, to: devices[a].id) != nil else { continue }
                let (rootA, rootB) = (root(a), root(b))
                parent[max(rootA, rootB)] = min(rootA, rootB)
            }
        }
        var groups: [Int: [UInt64]] = [:]
        for index in devices.indices { groups[root(index), default: []].append(devices[index].id) }
        return groups.keys.sorted().map { groups[$0]! }
    }
}
