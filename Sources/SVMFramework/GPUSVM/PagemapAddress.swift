import SVMPluginKit

/// How one device reaches one page of a range (`drm_pagemap_addr`).
public struct PagemapAddress: Hashable, Sendable {
    /// Which way data may flow for the device's DMA mapping.
    public enum Direction: Sendable, Hashable {
        case bidirectional
        case toDevice
        case fromDevice
    }

    /// The address the device uses: a DMA address of system memory, or an offset in a
    /// device's memory.
    public var address: UInt64
    public var linkProtocol: LinkProtocol
    /// The page is `4 KiB << order` bytes.
    public var order: UInt8
    public var direction: Direction

    public init(address: UInt64, linkProtocol: LinkProtocol, order: UInt8, direction: Direction = .bidirectional) {
        self.address = address
        self.linkProtocol = linkProtocol
        self.order = order
        self.direction = direction
    }

    public var size: UInt64 { 4096 << UInt64(order) }
}
