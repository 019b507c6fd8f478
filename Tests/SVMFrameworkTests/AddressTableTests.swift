import SVMTestSupport
import Testing

@testable import SVMPluginKit

@Suite("Address table")
struct AddressTableTests {
    @Test("Random inserts, updates and removals agree with a Dictionary", arguments: 0 ..< 20)
    func agreesWithDictionary(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var table = AddressTable<Int>()
        var model: [UInt64: Int] = [:]
        // Few distinct keys, so that removals hit and probe chains form and wrap: page
        // addresses (low bits zero), small integers and keys near the top of the range.
        let pool: [UInt64] = (0 ..< 48).map { UInt64($0) << 12 } + (0 ..< 24).map { UInt64($0) }
            + (0 ..< 8).map { UInt64.max - UInt64($0) }
        for step in 0 ..< 3000 {
            let key = pool.randomElement(using: &random)!
            switch Int.random(in: 0 ..< 10, using: &random) {
            case 0 ..< 4:
                #expect(table.updateValue(step, forKey: key) == model.updateValue(step, forKey: key))
            case 4 ..< 7:
                #expect(table.removeValue(forKey: key) == model.removeValue(forKey: key))
            case 7:
                table[key, default: 0] += 1
                model[key, default: 0] += 1
            case 8:
                table[key] = nil
                model[key] = nil
            default:
                #expect(table[key] == model[key])
                #expect(table.contains(key) == (model[key] != nil))
            }
            #expect(table.count == model.count)
        }
        // Every key is found after all that churn, and nothing else is.
        for key in pool { #expect(table[key] == model[key], "key \(key)") }
        #expect(Dictionary(uniqueKeysWithValues: table.map { ($0.key, $0.value) }) == model)
        #expect(Set(table.keys) == Set(model.keys))
        #expect(table.values.sorted() == model.values.sorted())
    }

    @Test("Grows past its load limit and keeps every entry; removeAll empties it")
    func growsAndEmpties() {
        var table = AddressTable<UInt64>()
        #expect(table.isEmpty && table[0] == nil)
        for key in stride(from: UInt64(0), to: 10_000 << 21, by: 1 << 21) { table[key] = key >> 21 }
        #expect(table.count == 10_000)
        for key in stride(from: UInt64(0), to: 10_000 << 21, by: 1 << 21) { #expect(table[key] == key >> 21) }
        #expect(table[1] == nil)
        // Half removed, every other one: the rest is still found.
        for key in stride(from: UInt64(0), to: 10_000 << 21, by: 2 << 21) { table.removeValue(forKey: key) }
        #expect(table.count == 5_000)
        for key in stride(from: UInt64(1) << 21, to: 10_000 << 21, by: 2 << 21) { #expect(table[key] == key >> 21) }
        table.removeAll(keepingCapacity: true)
        #expect(table.isEmpty && table[1 << 21] == nil && Array(table).isEmpty)
        var sized = AddressTable<Int>(minimumCapacity: 100)
        sized[7] = 7
        #expect(sized[7] == 7 && sized.count == 1)
    }

    @Test("A copy is independent of the original")
    func copyOnWrite() {
        var table = AddressTable<Int>()
        table[1] = 1
        var copy = table
        copy[1] = 2
        copy[2] = 2
        #expect(table[1] == 1 && table[2] == nil && table.count == 1)
        #expect(copy[1] == 2 && copy.count == 2)
    }

    @Test("AddressSet: insert, remove and contains say what changed")
    func set() {
        var set = AddressSet()
        let first = set.insert(0x1000), again = set.insert(0x1000)
        #expect(first && !again)
        #expect(set.contains(0x1000) && !set.contains(0x2000) && set.count == 1)
        let removed = set.remove(0x1000), removedAgain = set.remove(0x1000)
        #expect(removed && !removedAgain)
        #expect(set.isEmpty && Array(set).isEmpty)
    }
}
