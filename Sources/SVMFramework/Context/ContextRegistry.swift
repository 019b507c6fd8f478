import SVMPluginKit
import Synchronization

/// The live contexts of the process, for what reaches all of them from outside their own
/// calls: a `fork` (``ForkPreparation``) and a protection change (``ProtectionWatch``).
/// Held weakly: a context registers when its mirror starts and drops out when it goes.
enum ContextRegistry {
    private struct Weak: @unchecked Sendable {
        weak var context: SVMContext?
    }

    private static let contexts = Locked<[Weak]>([])

    static func register(_ context: SVMContext) {
        ForkPreparation.install()
        ProtectionWatch.install()
        contexts.withLock { list in
            list.removeAll { $0.context == nil }
            list.append(Weak(context: context))
        }
    }

    /// The contexts alive now.
    static var live: [SVMContext] { contexts.withLock { $0.compactMap(\.context) } }
}
