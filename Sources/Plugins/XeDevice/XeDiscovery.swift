import CPCIAccess
import Foundation
import SVMPluginKit
import Synchronization

/// libpciaccess keeps its state in one global (`pci_sys`) and is not thread-safe: two hosts
/// initialising this plugin at once would crash it, so every use goes through this lock.
private let libpciaccessLock = Lock()

/// One Intel GPU bound to the xe driver.
struct XeGPU: Sendable, Equatable {
    /// PCI address, `DDDD:BB:DD.F`.
    let pciAddress: String
    let vendorID: UInt32
    let deviceID: UInt32
    /// The DRM render node, e.g. `/dev/dri/renderD128`, when sysfs names one.
    let renderNode: String?
}

/// Finds Intel display-class PCI functions and keeps those bound to the `xe` driver.
struct XeDiscovery {
    enum Source {
        /// Ask libpciaccess, which reads the live machine.
        case libpciaccess
        /// Walk `<sysfsRoot>/bus/pci/devices`: a recorded machine.
        case sysfs
    }

    static let intelVendorID: UInt32 = 0x8086
    /// PCI base class 0x03: display controller.
    static let displayClass: UInt32 = 0x03

    let sysfsRoot: String
    let source: Source

    struct Result {
        var gpus: [XeGPU] = []
        var intelDisplayFunctions = 0
        var notes: [String] = []
    }

    func run() -> Result {
        var result = Result()
        let functions: [PCIFunction]
        switch source {
        case .libpciaccess:
            functions = Self.libpciaccessFunctions(notes: &result.notes)
        case .sysfs:
            functions = sysfsFunctions(notes: &result.notes)
        }
        for function in functions
        where function.vendorID == Self.intelVendorID && function.classCode >> 16 == Self.displayClass {
            result.intelDisplayFunctions += 1
            let device = "\(sysfsRoot)/bus/pci/devices/\(function.address)"
            let driver = (try? FileManager.default.destinationOfSymbolicLink(atPath: device + "/driver"))
                .map { ($0 as NSString).lastPathComponent }
            guard driver == "xe" else {
                result.notes.append("\(function.address): Intel display function, driver \(driver ?? "none"), not xe")
                continue
            }
            let renderNode = (try? FileManager.default.contentsOfDirectory(atPath: device + "/drm"))?
                .sorted().first { $0.hasPrefix("renderD") }.map { "/dev/dri/" + $0 }
            result.gpus.append(
                XeGPU(
                    pciAddress: function.address, vendorID: function.vendorID,
                    deviceID: function.deviceID, renderNode: renderNode))
        }
        return result
    }

    struct PCIFunction {
        let address: String
        let vendorID: UInt32
        let deviceID: UInt32
        let classCode: UInt32
    }

    private func sysfsFunctions(notes: inout [String]) -> [PCIFunction] {
        let directory = "\(sysfsRoot)/bus/pci/devices"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            notes.append("cannot read \(directory)")
            return []
        }
        return names.sorted().compactMap { name in
            func hex(_ file: String) -> UInt32? {
                guard let text = try? String(contentsOfFile: "\(directory)/\(name)/\(file)", encoding: .utf8)
                else { return nil }
                let digits = text.trimmingCharacters(in: .whitespacesAndNewlines)
                return UInt32(digits.hasPrefix("0x") ? String(digits.dropFirst(2)) : digits, radix: 16)
            }
            guard let vendor = hex("vendor"), let device = hex("device"), let classCode = hex("class")
            else {
                notes.append("\(name): unreadable vendor/device/class, skipped")
                return nil
            }
            return PCIFunction(address: name, vendorID: vendor, deviceID: device, classCode: classCode)
        }
    }

    private static func libpciaccessFunctions(notes: inout [String]) -> [PCIFunction] {
        libpciaccessLock.withLock { libpciaccessFunctionsLocked(notes: &notes) }
    }

    private static func libpciaccessFunctionsLocked(notes: inout [String]) -> [PCIFunction] {
        let status = pci_system_init()
        guard status == 0 else {
            notes.append("libpciaccess: pci_system_init failed: \(String(cString: strerror(status)))")
            return []
        }
        defer { pci_system_cleanup() }
        var match = pci_id_match(
            vendor_id: intelVendorID, device_id: UInt32(bitPattern: -1),
            subvendor_id: UInt32(bitPattern: -1), subdevice_id: UInt32(bitPattern: -1),
            device_class: displayClass << 16, device_class_mask: 0xff_0000, match_data: 0)
        guard let iterator = pci_id_match_iterator_create(&match) else { return [] }
        defer { pci_iterator_destroy(iterator) }
        var functions: [PCIFunction] = []
        while let device = pci_device_next(iterator) {
            let d = device.pointee
            let address = String(format: "%04x:%02x:%02x.%x", d.domain, d.bus, d.dev, d.func)
            functions.append(
                PCIFunction(
                    address: address, vendorID: UInt32(d.vendor_id), deviceID: UInt32(d.device_id),
                    classCode: d.device_class))
        }
        return functions
    }
}
