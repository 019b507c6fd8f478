import SVMFramework

/// The framework's generator, under the name the tests use.
public typealias SeededRandom = SVMFramework.SeededRandom
