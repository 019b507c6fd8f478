/// The address as a raw pointer (staging slots, device memory that is host memory and CPU
/// pages are all memory of this process).
func pointer(_ address: UInt64) -> UnsafeMutableRawPointer? {
    UnsafeMutableRawPointer(bitPattern: UInt(address))
}
