import CLibDRM
import Foundation
import SVMPluginKit

/// An opened Xe GPU: its DRM render node, checked with libdrm to be driven by `xe`.
final class XeOpenDevice: OpenDevice {
    let gpu: XeGPU
    // Written in init, closed once in close(); the host never calls close twice.
    private let descriptor: Int32

    init(gpu: XeGPU) throws {
        self.gpu = gpu
        guard let node = gpu.renderNode else { throw PluginErrno.noDevice }
        let descriptor = open(node, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw PluginErrno(errno) }
        guard let version = drmGetVersion(descriptor) else {
            Foundation.close(descriptor)
            throw PluginErrno.noDevice
        }
        let driver = String(cString: version.pointee.name)
        drmFreeVersion(version)
        guard driver == "xe" else {
            Foundation.close(descriptor)
            throw PluginErrno.noDevice
        }
        self.descriptor = descriptor
    }

    /// The memory regions come from DRM_XE_DEVICE_QUERY_MEM_REGIONS, which this version of
    /// the plugin does not issue yet: it says so rather than inventing a size.
    func pagemapInfo() throws -> PagemapInfo { throw PluginErrno.notSupported }

    func close() { Foundation.close(descriptor) }
}
