import CSVMPluginABI
import SVMPluginKit

/// The host's copies of a plugin's descriptor and of the ops tables it points to, each read
/// once, only up to the `struct_size` the plugin set (``ABIStruct/copy(from:)``), with the
/// members past it zero. The host calls ops through these: a table the plugin declares
/// smaller than the host's struct, ending at a page boundary, is never read past its end.
struct PluginTables: @unchecked Sendable {
    // Immutable copies; the function pointers in them point into the plugin.
    let descriptor: svm_plugin_descriptor
    let deviceOps: svm_device_ops?
    let pagemapOps: svm_pagemap_ops?
    let interconnectOps: svm_interconnect_ops?

    init(_ descriptor: svm_plugin_descriptor) {
        self.descriptor = descriptor
        // Members past the descriptor's struct_size are zero in the copy: NULL tables.
        deviceOps = descriptor.device_ops.map { svm_device_ops.copy(from: $0) }
        pagemapOps = descriptor.pagemap_ops.map { svm_pagemap_ops.copy(from: $0) }
        interconnectOps = descriptor.interconnect_ops.map { svm_interconnect_ops.copy(from: $0) }
    }
}
