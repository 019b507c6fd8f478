import CSVMPluginABI

/// A C struct of the plugin ABI: it starts with `struct_size`, set by whoever owns the
/// memory, so that old and new sides can read only the members both know.
public protocol ABIStruct {
    var struct_size: UInt32 { get set }
    init()
}

extension ABIStruct {
    /// A zeroed value whose `struct_size` is this build's size of the struct.
    public static func sized() -> Self {
        var value = Self()
        value.struct_size = UInt32(MemoryLayout<Self>.size)
        return value
    }

    /// Whether the owner's `struct_size` covers `member`: the Swift form of `SVM_ABI_HAS`.
    public func has<Member>(_ member: KeyPath<Self, Member>) -> Bool {
        guard let offset = MemoryLayout<Self>.offset(of: member) else { return false }
        return Int(struct_size) >= offset + MemoryLayout<Member>.size
    }

    /// A host-side copy of the struct another side owns at `pointer`: only the owner's
    /// `struct_size` bytes are read (at most this build's size of the struct), the rest
    /// stays zero, and `struct_size` stays the owner's, so ``has(_:)`` still answers for the
    /// owner. A table a plugin declares small and ends at a page boundary is never read past.
    public static func copy(from pointer: UnsafePointer<Self>) -> Self {
        let ownerSize = UnsafeRawPointer(pointer).loadUnaligned(as: UInt32.self)
        var value = Self()
        let count = max(MemoryLayout<UInt32>.size, min(Int(ownerSize), MemoryLayout<Self>.size))
        withUnsafeMutableBytes(of: &value) { bytes in
            bytes.baseAddress!.copyMemory(from: UnsafeRawPointer(pointer), byteCount: count)
        }
        value.struct_size = ownerSize
        return value
    }

    /// Copies `self` into `destination` without writing past the `struct_size` the
    /// destination's owner set, and keeps that `struct_size`.
    public func copyPrefix(into destination: UnsafeMutablePointer<Self>) {
        var value = self
        let ownerSize = Int(destination.pointee.struct_size)
        value.struct_size = destination.pointee.struct_size
        let count = min(ownerSize, MemoryLayout<Self>.size)
        withUnsafeBytes(of: &value) { source in
            UnsafeMutableRawPointer(destination).copyMemory(
                from: source.baseAddress!, byteCount: count)
        }
    }
}

extension svm_plugin_request: ABIStruct {}
extension svm_plugin_descriptor: ABIStruct {}
extension svm_host_services: ABIStruct {}
extension svm_device_fault: ABIStruct {}
extension svm_device_info: ABIStruct {}
extension svm_device_ops: ABIStruct {}
extension svm_pagemap_info: ABIStruct {}
extension svm_pagemap_ops: ABIStruct {}
extension svm_link_info: ABIStruct {}
extension svm_interconnect_ops: ABIStruct {}
extension svm_topology_link: ABIStruct {}
extension svm_path: ABIStruct {}
extension svm_kernel: ABIStruct {}
extension svm_kernel_result: ABIStruct {}

/// Reads a fixed `char[SVM_NAME_MAX]` member, stopping at the first NUL or at its end even
/// when a plugin forgot the terminator, with control characters escaped (``PluginText``).
func abiName<Tuple>(_ tuple: Tuple) -> String {
    withUnsafeBytes(of: tuple) { bytes in
        // At most SVM_NAME_MAX - 1 bytes before the NUL: a buffer with no NUL is cut with a mark.
        PluginText.sanitized(String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self), limit: bytes.count - 1)
    }
}

/// Writes `name` into a fixed `char[SVM_NAME_MAX]` member, cut to fit.
func setABIName<Tuple>(_ tuple: inout Tuple, _ name: String) {
    withUnsafeMutableBytes(of: &tuple) { bytes in
        _ = svm_abi_copy_name(
            bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count, name)
    }
}
