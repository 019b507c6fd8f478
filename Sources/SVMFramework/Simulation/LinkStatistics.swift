/// What one link carried in an experiment, per direction.
public struct LinkStatistics: Sendable, Hashable, Codable {
    public struct Direction: Sendable, Hashable, Codable {
        public var bytes: UInt64 = 0
        public var transfers = 0
        /// Simulated time with at least one transfer in flight.
        public var busyNanoseconds: UInt64 = 0
    }

    public var name: String
    public var endpoints: String
    public var hostToDevice = Direction()
    public var deviceToHost = Direction()
}
