#if canImport(Glibc)
import Glibc
#endif

/// Text a plugin hands the host (its name, version and description, log lines, device and
/// link names), made safe to print as part of one line: bounded, valid UTF-8, and without
/// control characters. A plugin is not trusted to keep its strings short or printable: a
/// newline would break the host's one-line refusals, an escape sequence would reach the
/// user's terminal, and a 1 MiB log line would be printed whole.
public enum PluginText {
    /// Longest version string kept, in bytes.
    public static let versionLimit = 64
    /// Longest description kept, in bytes.
    public static let descriptionLimit = 256
    /// Longest log line kept, in bytes.
    public static let logLimit = 1024

    /// The C string at `pointer`, read up to `limit` bytes at most (it need not end within
    /// them), as ``sanitized(_:limit:)`` makes it.
    public static func sanitized(_ pointer: UnsafePointer<CChar>, limit: Int) -> String {
        let length = byteCount(pointer, upTo: limit + 1)
        let bytes = UnsafeRawBufferPointer(start: pointer, count: min(length, limit))
        return escaped(String(decoding: bytes, as: UTF8.self), cut: length > limit, limit: limit)
    }

    /// `text` with every control character shown as an escape (`\n`, `\t`, `\u{1B}`, ...),
    /// cut after `limit` bytes with a mark.
    public static func sanitized(_ text: String, limit: Int) -> String {
        let utf8 = Array(text.utf8)
        guard utf8.count > limit else { return escaped(text, cut: false, limit: limit) }
        return escaped(String(decoding: utf8.prefix(limit), as: UTF8.self), cut: true, limit: limit)
    }

    /// Bytes of the C string at `pointer` before its NUL, counting at most `limit`.
    public static func byteCount(_ pointer: UnsafePointer<CChar>, upTo limit: Int) -> Int {
        strnlen(pointer, limit)
    }

    private static func escaped(_ text: String, cut: Bool, limit: Int) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where isUnprintable(scalar):
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return cut ? result + "… (cut at \(limit) bytes)" : result
    }

    /// Control characters (C0, DEL, C1), line and paragraph separators, and the format
    /// characters that reorder what follows them on a terminal (bidirectional overrides).
    private static func isUnprintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: return true
        case .format: return (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
        default: return false
        }
    }
}
