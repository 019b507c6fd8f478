import CSVMPluginABI
import Glibc
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

@testable import SVMFramework

/// Calls that reached the Swift-made C ops below (C function pointers capture nothing).
private let opCalls = Atomic<Int>(0)

/// The optional op groups of ABI 1.1 (device memory; bind, zap and kernels) across the
/// plugin boundary: what the loader demands, what the host reads, what devices answer.
@Suite("Optional device ops (ABI 1.1)")
struct OptionalDeviceOpsTests {
    func expectNothingSupported(_ device: any OpenDevice) {
        #expect((device as? any SVMCapableDevice)?.supportsDeviceMemory == false)
        #expect((device as? any SVMCapableDevice)?.supportsPageTable == false)
        #expect(throws: PluginErrno.notSupported) { try device.allocateDeviceMemory(size: 4096) }
        device.freeDeviceMemory(offset: 0, size: 4096)  // nothing to free: a no-op
        var byte: UInt8 = 0
        #expect(throws: PluginErrno.notSupported) { try device.copyToDeviceMemory(offset: 0, from: &byte, size: 1) }
        #expect(throws: PluginErrno.notSupported) { try device.copyFromDeviceMemory(offset: 0, to: &byte, size: 1) }
        #expect(throws: PluginErrno.notSupported) {
            try device.bind(address: 0x1000, size: 4096, pieces: [BindPiece(address: 0x1000, linkProtocol: .system, order: 0)], access: [])
        }
        #expect(throws: PluginErrno.notSupported) { try device.zap(address: 0x1000, size: 4096) }
        #expect(throws: PluginErrno.notSupported) { try device.runKernel(.fill(destination: 0x1000, size: 1, byte: 0)) }
    }

    @Test("A C plugin without the 1.1 ops loads; its device answers EOPNOTSUPP for them")
    func cPluginWithoutOptionalOps() throws {
        let host = makeHost(builtins: false, paths: [PackagePaths.product("libExampleCPlugin.so")])
        #expect(host.failures.isEmpty, "\(host.failures)")
        let device = try #require(host.plugin(named: "ExampleC")?.device).openDevice(at: 0, hostDevice: 1)
        defer { device.close() }
        expectNothingSupported(device)
        #expect(try device.pagemapInfo() == PagemapInfo(minPageSize: 4096, capacityBytes: 256 << 20, usedBytes: 0))
    }

    @Test("A plugin built for ABI 1.0 loads at 1.0, and the host reads nothing past its tables' struct_size")
    func abi10Plugin() throws {
        let folder = try TemporaryDirectory()
        // Its pagemap table holds a devmem_alloc past the 1.0 struct_size: were the host to
        // read it, the loader would refuse the plugin (no devmem_free) and alloc would give
        // ENOMEM instead of EOPNOTSUPP.
        try CPluginCompiler.compile(defines: ["EXAMPLE_ABI_1_0"], output: folder.file("libexample10.so"))
        let host = makeHost(builtins: false, paths: [folder.file("libexample10.so")])
        #expect(host.failures.isEmpty, "\(host.failures)")
        let plugin = try #require(host.plugin(named: "ExampleC"))
        #expect(plugin.pluginABI == ABIVersion(major: 1, minor: 0))
        #expect(plugin.negotiatedABI == ABIVersion(major: 1, minor: 0))
        let device = try #require(plugin.device).openDevice(at: 0, hostDevice: 1)
        defer { device.close() }
        expectNothingSupported(device)
    }

    @Test("devmem_alloc without devmem_free, copy_to_devmem or copy_to_ram: refused, naming the file and the op")
    func incompleteDeviceMemoryRefused() throws {
        let folder = try TemporaryDirectory()
        try CPluginCompiler.compile(
            defines: ["EXAMPLE_DEVMEM_ALLOC_ONLY", "EXAMPLE_NAME=\"HalfDevmem\""], output: folder.file("libhalf.so"))
        try CPluginCompiler.compile(output: folder.file("libexample.so"))
        let host = makeHost(builtins: false, paths: [folder.path])
        #expect(host.plugins.map(\.name) == ["ExampleC"])
        let failure = try #require(host.failures.first)
        #expect(host.failures.count == 1)
        #expect(failure.path == folder.file("libhalf.so"))
        #expect(failure.reason == .missingRequiredOp("pagemap_ops.devmem_free"))
        #expect(failure.description
            == "\(folder.file("libhalf.so")): required op pagemap_ops.devmem_free is missing (required with pagemap_ops.devmem_alloc)")
    }

    @Test("Each op devmem_alloc requires is checked, inside the table's struct_size")
    func deviceMemoryCompanions() throws {
        var device = svm_device_ops.sized()
        device.device_count = { _, _ in 0 }
        device.device_info = { _, _, _ in 0 }
        device.open_device = { _, _, _, _ in 0 }
        device.close_device = { _ in }
        var complete = svm_pagemap_ops.sized()
        complete.pagemap_info = { _, _ in 0 }
        complete.devmem_alloc = { _, _, _ in 0 }
        complete.devmem_free = { _, _, _ in }
        complete.copy_to_devmem = { _, _, _, _ in 0 }
        complete.copy_to_ram = { _, _, _, _ in 0 }

        func missing(_ pagemap: svm_pagemap_ops) -> String? {
            withUnsafePointer(to: device) { device in
                withUnsafePointer(to: pagemap) { pagemap in
                    var descriptor = svm_plugin_descriptor.sized()
                    descriptor.`init` = { _, _, _ in 0 }
                    descriptor.device_ops = device
                    descriptor.pagemap_ops = pagemap
                    return PluginLoader.missingRequiredOp(PluginTables(descriptor), kind: .device)
                }
            }
        }
        #expect(missing(complete) == nil)
        var pagemap = complete
        pagemap.devmem_free = nil
        #expect(missing(pagemap) == "pagemap_ops.devmem_free")
        pagemap = complete
        pagemap.copy_to_devmem = nil
        #expect(missing(pagemap) == "pagemap_ops.copy_to_devmem")
        pagemap = complete
        pagemap.copy_to_ram = nil
        #expect(missing(pagemap) == "pagemap_ops.copy_to_ram")
        // copy_to_ram set but beyond struct_size counts as missing.
        pagemap = complete
        pagemap.struct_size = UInt32(MemoryLayout<svm_pagemap_ops>.offset(of: \.copy_to_ram)!)
        #expect(missing(pagemap) == "pagemap_ops.copy_to_ram")
        // Without devmem_alloc, none of them is needed.
        pagemap = complete
        pagemap.devmem_alloc = nil
        pagemap.copy_to_ram = nil
        #expect(missing(pagemap) == nil)
    }

    @Test("The host calls a 1.1 device op only when the table's struct_size holds it")
    func structSizeGuardsOps() throws {
        var ops = svm_device_ops.sized()
        ops.close_device = { _ in }
        ops.bind = { _, _, _, _, _, _ in opCalls.add(1, ordering: .relaxed); return 0 }
        ops.zap = { _, _, _ in opCalls.add(1, ordering: .relaxed); return 0 }
        ops.run_kernel = { _, _, result in
            opCalls.add(1, ordering: .relaxed)
            result?.pointee.faults = 3
            return 0
        }
        var pagemap = svm_pagemap_ops.sized()
        pagemap.pagemap_info = { _, _ in 0 }
        pagemap.devmem_alloc = { _, _, offset in opCalls.add(1, ordering: .relaxed); offset?.pointee = 0x2000; return 0 }
        pagemap.devmem_free = { _, _, _ in opCalls.add(1, ordering: .relaxed) }
        pagemap.copy_to_devmem = { _, _, _, _ in opCalls.add(1, ordering: .relaxed); return 0 }
        pagemap.copy_to_ram = { _, _, _, _ in opCalls.add(1, ordering: .relaxed); return 0 }

        // Through the host's copies, as the loader makes them.
        func open(_ ops: svm_device_ops, _ pagemap: svm_pagemap_ops, _ body: (LoadedOpenDevice) throws -> Void) rethrows {
            try withUnsafePointer(to: ops) { ops in
                try withUnsafePointer(to: pagemap) { pagemap in
                    let device = LoadedOpenDevice(
                        ops: .copy(from: ops), pagemapOps: .copy(from: pagemap), context: nil,
                        plugin: PluginLifetime(fini: nil, context: nil))
                    defer { device.close() }
                    try body(device)
                }
            }
        }

        // Tables of ABI 1.0 size: the pointers after them are never called.
        var old = ops
        old.struct_size = UInt32(MemoryLayout<svm_device_ops>.offset(of: \.bind)!)
        var oldPagemap = pagemap
        oldPagemap.struct_size = UInt32(MemoryLayout<svm_pagemap_ops>.offset(of: \.devmem_alloc)!)
        opCalls.store(0, ordering: .relaxed)
        open(old, oldPagemap) { expectNothingSupported($0) }
        #expect(opCalls.load(ordering: .relaxed) == 0)

        // Full tables: every wrapper reaches its op.
        try open(ops, pagemap) { device in
            #expect(device.supportsDeviceMemory && device.supportsPageTable)
            #expect(try device.allocateDeviceMemory(size: 4096) == 0x2000)
            device.freeDeviceMemory(offset: 0x2000, size: 4096)
            var byte: UInt8 = 0
            try device.copyToDeviceMemory(offset: 0, from: &byte, size: 1)
            try device.copyFromDeviceMemory(offset: 0, to: &byte, size: 1)
            try device.bind(address: 0, size: 4096, pieces: [BindPiece(address: 0, linkProtocol: .system, order: 0)], access: [])
            try device.zap(address: 0, size: 4096)
            #expect(try device.runKernel(.fill(destination: 0, size: 1, byte: 0)) == KernelResult(faults: 3))
        }
        #expect(opCalls.load(ordering: .relaxed) == 7)

        // Only part of the page-table group: not a device the core can use.
        var partial = ops
        partial.zap = nil
        open(partial, oldPagemap) { device in
            #expect(!device.supportsPageTable)
        }
    }

    @Test("Swift plugins export the op groups they declare, and only those")
    func swiftPluginGroups() throws {
        let sim = try #require(makeHost(builtins: false, paths: [PackagePaths.product("libSimDevice.so")])
            .plugin(named: "SimDevice")?.device).openDevice(at: 0, hostDevice: 1)
        defer { sim.close() }
        #expect((sim as? any SVMCapableDevice)?.supportsDeviceMemory == true)
        #expect((sim as? any SVMCapableDevice)?.supportsPageTable == true)

        let example = try #require(makeHost(builtins: false, paths: [PackagePaths.product("libExampleSwiftPlugin.so")])
            .plugin(named: "ExampleSwift")?.device).openDevice(at: 0, hostDevice: 1)
        defer { example.close() }
        expectNothingSupported(example)
    }
}
