import SVMPluginKit

/// The notifier lock: a reader/writer lock. Invalidations take it for writing (they bump
/// sequence numbers and zap device mappings); device page-table commits take it for reading
/// and check the sequence number under it.
///
/// It must never be held while managed memory is touched: a CPU fault on that memory needs
/// the fault handler, which may need this lock.
public typealias NotifierLock = ReaderWriterLock
