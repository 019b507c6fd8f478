import SVMPluginKit

/// The pieces of one simulated device a kernel run uses.
struct SimDeviceParts: Sendable {
    let memory: SimDeviceMemory
    let pageTable: SimDevicePageTable
    let tlb: SimDeviceTLB
    let bounceBuffers: SimDeviceBounceBuffers
    let timing: SimDeviceTiming
    /// The plugin's other devices' memories, for peer pieces.
    let peers: SimDevicePeers
}
