/// A Python literal read as `ast.literal_eval` (Python 3.11) reads it, for the header of an
/// `.npy` file: numpy's reader evaluates the header with it, so what it accepts decides what
/// a file means (a repeated key keeps its last value, `0x3` is 3, `(3,)` a tuple, `(3)` not).
///
///     constants   'str' "str" '''str''' (prefixes r u b), adjacent strings joined; ints in
///                 decimal, 0x, 0o, 0b with _ separators; floats; complex; True False None ...
///     containers  tuples, lists, sets, set(), dicts (keys and set items hashable)
///     operators   a sign before a number; int/float ± complex
///     layout      comments, line continuations, newlines inside brackets; nesting at most
///                 200 deep (the tokenizer's limit)
///
/// `dropLongSuffix` also drops an `L` after a number, as numpy does for headers of versions
/// 1.0 and 2.0 that Python 2 wrote (`(3L, 4L)`). Anything else is refused with a reason.
enum PythonLiteral: Equatable {
    case str([UInt32])  // code points: a lone surrogate is a valid Python str
    case bytes([UInt8])
    case int(Int?)      // nil beyond 64 bits
    case float, complex
    case bool(Bool)
    case none, ellipsis
    case tuple([PythonLiteral]), list([PythonLiteral]), set([PythonLiteral])
    case dict([Pair])

    struct Pair: Equatable { var key: PythonLiteral, value: PythonLiteral }

    struct Refusal: Error { var message: String }

    var isHashable: Bool {
        switch self {
        case .list, .set, .dict: false
        case .tuple(let items): items.allSatisfy(\.isHashable)
        default: true
        }
    }

    static let maxDepth = 200

    static func parse(_ text: [UInt32], dropLongSuffix: Bool) throws -> PythonLiteral {
        guard !text.contains(0) else { throw Refusal(message: "a NUL character in the header") }
        var p = Parser(text: text, dropLongSuffix: dropLongSuffix)
        // literal_eval strips leading spaces and tabs; then comment and blank lines may come.
        while let c = p.peek, c == 0x20 || c == 0x09 { p.i += 1 }
        try p.skipTopLevel()
        let value = try p.expression(depth: 0).value
        try p.skipTopLevel()
        guard p.peek == nil else { throw p.refuse("unexpected text after the literal") }
        return value
    }

    private struct Parser {
        let text: [UInt32]
        let dropLongSuffix: Bool
        var i = 0

        var peek: UInt32? { i < text.count ? text[i] : nil }
        func at(_ k: Int) -> UInt32? { i + k < text.count ? text[i + k] : nil }
        func refuse(_ why: String) -> Refusal { Refusal(message: "\(why) at character \(i)") }
        static func ascii(_ c: Character) -> UInt32 { UInt32(c.asciiValue ?? 0) }

        /// Outside brackets: spaces, comments, newlines, continuations; a line after a newline
        /// may not be indented (Python's "unexpected indent") unless it is blank.
        mutating func skipTopLevel() throws {
            var lineStart = false
            while let c = peek {
                switch c {
                case 0x20, 0x09, 0x0C:
                    if lineStart {
                        var j = i
                        while j < text.count, [0x20, 0x09, 0x0C].contains(text[j]) { j += 1 }
                        guard j < text.count, text[j] == 0x0A || text[j] == 0x0D || text[j] == Self.ascii("#") else {
                            throw refuse("unexpected indent")
                        }
                        i = j
                    } else { i += 1 }
                case 0x0A, 0x0D: i += 1; lineStart = true
                case Self.ascii("#"): while let c = peek, c != 0x0A, c != 0x0D { i += 1 }
                case Self.ascii("\\") where at(1) == 0x0A || at(1) == 0x0D: i += 2
                default: return
                }
            }
        }

        /// Inside brackets: any whitespace, newlines and comments.
        mutating func skipInside() {
            while let c = peek {
                switch c {
                case 0x20, 0x09, 0x0C, 0x0A, 0x0D: i += 1
                case Self.ascii("#"): while let c = peek, c != 0x0A, c != 0x0D { i += 1 }
                case Self.ascii("\\") where at(1) == 0x0A || at(1) == 0x0D: i += 2
                default: return
                }
            }
        }

        /// What an expression's syntax tree is, which decides where literal_eval allows it.
        enum Form { case constant, signedNumber, other }
        typealias Parsed = (value: PythonLiteral, form: Form)

        /// An expression: a value, a signed number, or int/float ± complex (literal_eval's
        /// only binary operator, and only with a bare complex constant on the right).
        mutating func expression(depth: Int) throws -> Parsed {
            let left = try signed(depth: depth)
            skipInside()
            guard let op = peek, op == Self.ascii("+") || op == Self.ascii("-") else { return left }
            i += 1
            skipInside()
            let right = try primary(depth: depth)
            skipInside()
            guard left.form != .other, isReal(left.value), right.form == .constant, case .complex = right.value,
                  peek != Self.ascii("+"), peek != Self.ascii("-") else {
                throw refuse("an operator other than a number ± a complex number")
            }
            return (.complex, .other)
        }

        func isReal(_ v: PythonLiteral) -> Bool {
            switch v { case .int, .float: true; default: false }
        }

        /// `-x` or `+x` where x is a number constant (not a bool), or a primary.
        mutating func signed(depth: Int) throws -> Parsed {
            guard let c = peek, c == Self.ascii("-") || c == Self.ascii("+") else { return try primary(depth: depth) }
            i += 1
            skipInside()
            let operand = try primary(depth: depth)
            guard operand.form == .constant else { throw refuse("a sign before something other than a number") }
            switch operand.value {
            case .int(let n): return (.int(c == Self.ascii("-") ? n.flatMap { $0 == Int.min ? nil : -$0 } : n), .signedNumber)
            case .float, .complex: return (operand.value, .signedNumber)
            default: throw refuse("a sign before something other than a number")
            }
        }

        mutating func primary(depth: Int) throws -> Parsed {
            guard let c = peek else { throw refuse("the header ends where a value was expected") }
            switch c {
            case Self.ascii("("), Self.ascii("["), Self.ascii("{"):
                guard depth < maxDepth else { throw refuse("brackets nested more than \(maxDepth) deep") }
                i += 1
                return try container(opening: c, depth: depth + 1)
            case Self.ascii("'"), Self.ascii("\""): return (try strings(), .constant)
            case Self.ascii("0")...Self.ascii("9"): return (try number(), .constant)
            case Self.ascii(".") where at(1).map({ $0 >= Self.ascii("0") && $0 <= Self.ascii("9") }) == true: return (try number(), .constant)
            case Self.ascii("."):
                guard at(1) == Self.ascii("."), at(2) == Self.ascii(".") else { throw refuse("unexpected '.'") }
                i += 3
                return (.ellipsis, .constant)
            default:
                guard isIdentifierStart(c) else { throw refuse("unexpected character") }
                var j = i
                while j < text.count, isIdentifierPart(text[j]) { j += 1 }
                let word = String(decoding: text[i..<j].map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
                // A string prefix directly before a quote.
                if j < text.count, text[j] == Self.ascii("'") || text[j] == Self.ascii("\"") {
                    return (try strings(), .constant)
                }
                i = j
                switch word {
                case "True": return (.bool(true), .constant)
                case "False": return (.bool(false), .constant)
                case "None": return (.none, .constant)
                case "set":
                    skipInside()
                    guard peek == Self.ascii("("), at(1) == Self.ascii(")") else { throw refuse("a name other than True, False, None or set()") }
                    i += 2
                    return (.set([]), .other)
                default: throw refuse("the name \(word), not a literal")
                }
            }
        }

        func isIdentifierStart(_ c: UInt32) -> Bool {
            (c >= Self.ascii("a") && c <= Self.ascii("z")) || (c >= Self.ascii("A") && c <= Self.ascii("Z")) || c == Self.ascii("_")
        }
        func isIdentifierPart(_ c: UInt32) -> Bool { isIdentifierStart(c) || (c >= Self.ascii("0") && c <= Self.ascii("9")) }

        /// After the opening bracket; `(x)` is x itself, a constant if x is.
        mutating func container(opening: UInt32, depth: Int) throws -> Parsed {
            let closing = opening == Self.ascii("(") ? Self.ascii(")") : opening == Self.ascii("[") ? Self.ascii("]") : Self.ascii("}")
            var items: [PythonLiteral] = [], pairs: [Pair] = []
            var sawComma = false, isDict: Bool?, firstForm = Form.other
            skipInside()
            while peek != closing {
                if !items.isEmpty || !pairs.isEmpty {
                    guard peek == Self.ascii(",") else { throw refuse("expected ',' or a closing bracket") }
                    i += 1
                    sawComma = true
                    skipInside()
                    if peek == closing { break }
                }
                let (value, form) = try expression(depth: depth)
                if items.isEmpty { firstForm = form }
                skipInside()
                if opening == Self.ascii("{") {
                    let pair = peek == Self.ascii(":")
                    if isDict == nil { isDict = pair }
                    guard isDict == pair else { throw refuse("a dict and a set mixed") }
                    if pair {
                        i += 1
                        skipInside()
                        let (v, _) = try expression(depth: depth)
                        skipInside()
                        guard value.isHashable else { throw refuse("an unhashable dict key") }
                        pairs.append(Pair(key: value, value: v))
                        continue
                    }
                    guard value.isHashable else { throw refuse("an unhashable set item") }
                }
                items.append(value)
            }
            i += 1  // the closing bracket
            switch opening {
            case Self.ascii("["): return (.list(items), .other)
            case Self.ascii("{"): return (isDict == false ? .set(items) : .dict(pairs), .other)
            default:
                // (x) is x itself, in the syntax tree too; (x,) and () are tuples.
                if items.count == 1 && !sawComma { return (items[0], firstForm) }
                return (.tuple(items), .other)
            }
        }

        /// Adjacent string literals, joined (str with str, bytes with bytes).
        mutating func strings() throws -> PythonLiteral {
            var text: [UInt32]? = nil, bytes: [UInt8]? = nil
            repeat {
                let (isBytes, value) = try stringLiteral()
                if isBytes {
                    guard text == nil else { throw refuse("bytes and str literals mixed") }
                    bytes = (bytes ?? []) + value.map { UInt8(truncatingIfNeeded: $0) }
                } else {
                    guard bytes == nil else { throw refuse("bytes and str literals mixed") }
                    text = (text ?? []) + value
                }
                skipInside()
            } while peek.map({ $0 == Self.ascii("'") || $0 == Self.ascii("\"") || startsPrefixedString($0) }) == true
            if let bytes { return .bytes(bytes) }
            return .str(text ?? [])
        }

        func startsPrefixedString(_ c: UInt32) -> Bool {
            guard isIdentifierStart(c) else { return false }
            var j = i
            while j < text.count, isIdentifierPart(text[j]) { j += 1 }
            return j < text.count && (text[j] == Self.ascii("'") || text[j] == Self.ascii("\""))
        }

        /// One literal with its prefix: (is bytes, code points).
        mutating func stringLiteral() throws -> (Bool, [UInt32]) {
            var prefix = ""
            while let c = peek, isIdentifierStart(c) { prefix.append(Character(Unicode.Scalar(UInt8(c)))); i += 1 }
            let lower = prefix.lowercased()
            guard ["", "r", "u", "b", "br", "rb"].contains(lower) else { throw refuse("the string prefix \(prefix)") }
            let raw = lower.contains("r"), isBytes = lower.contains("b")
            guard let quote = peek else { throw refuse("a string prefix without a string") }
            let triple = at(1) == quote && at(2) == quote
            i += triple ? 3 : 1
            var out: [UInt32] = []
            while true {
                guard let c = peek else { throw refuse("an unterminated string") }
                if c == quote && (!triple || (at(1) == quote && at(2) == quote)) {
                    i += triple ? 3 : 1
                    return (isBytes, out)
                }
                if (c == 0x0A || c == 0x0D) && !triple { throw refuse("a newline inside a string") }
                if isBytes && c > 0x7F { throw refuse("a non-ASCII character in a bytes literal") }
                i += 1
                guard c == Self.ascii("\\") else { out.append(c); continue }
                guard let e = peek else { throw refuse("an unterminated string") }
                if raw {
                    out.append(c)  // raw: the backslash stays, and the next character cannot end the string
                    out.append(e); i += 1
                    continue
                }
                i += 1
                switch e {
                case 0x0A: continue
                case 0x0D: if peek == 0x0A { i += 1 }; continue
                case Self.ascii("\\"), Self.ascii("'"), Self.ascii("\""): out.append(e)
                case Self.ascii("a"): out.append(7)
                case Self.ascii("b"): out.append(8)
                case Self.ascii("f"): out.append(12)
                case Self.ascii("n"): out.append(10)
                case Self.ascii("r"): out.append(13)
                case Self.ascii("t"): out.append(9)
                case Self.ascii("v"): out.append(11)
                case Self.ascii("0")...Self.ascii("7"):
                    var v = e - Self.ascii("0"), n = 1
                    while n < 3, let d = peek, d >= Self.ascii("0"), d <= Self.ascii("7") { v = v * 8 + d - Self.ascii("0"); i += 1; n += 1 }
                    out.append(isBytes ? v & 0xFF : v)
                case Self.ascii("x"): out.append(try hex(2))
                case Self.ascii("u") where !isBytes: out.append(try hex(4))
                case Self.ascii("U") where !isBytes:
                    let v = try hex(8)
                    guard v <= 0x10FFFF else { throw refuse("a \\U escape beyond U+10FFFF") }
                    out.append(v)
                case Self.ascii("N") where !isBytes: throw refuse("a \\N{…} escape (not supported here)")
                default: out.append(c); out.append(e)  // an unknown escape keeps its backslash
                }
            }
        }

        mutating func hex(_ count: Int) throws -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<count {
                guard let c = peek, let d = hexValue(c) else { throw refuse("a truncated \\x, \\u or \\U escape") }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        func hexValue(_ c: UInt32) -> UInt32? {
            switch c {
            case Self.ascii("0")...Self.ascii("9"): c - Self.ascii("0")
            case Self.ascii("a")...Self.ascii("f"): c - Self.ascii("a") + 10
            case Self.ascii("A")...Self.ascii("F"): c - Self.ascii("A") + 10
            default: nil
            }
        }

        /// Digits of `base` with single `_` between them; at least one. Returns their value
        /// (nil beyond 64 bits).
        mutating func digits(base: UInt32) throws -> (Int?, count: Int) {
            var value: Int? = 0, count = 0
            while let c = peek {
                if c == Self.ascii("_") {
                    guard count > 0, let n = at(1), hexValue(n).map({ $0 < base }) == true else { throw refuse("an invalid number") }
                    i += 1
                    continue
                }
                guard let d = hexValue(c), d < base else { break }
                if let v = value {
                    let (m, o1) = v.multipliedReportingOverflow(by: Int(base))
                    let (s, o2) = m.addingReportingOverflow(Int(d))
                    value = o1 || o2 ? nil : s
                }
                count += 1
                i += 1
            }
            guard count > 0 else { throw refuse("an invalid number") }
            return (value, count)
        }

        mutating func number() throws -> PythonLiteral {
            let start = i
            var result: PythonLiteral
            if peek == Self.ascii("0"), let b = at(1), let base: UInt32 = [Self.ascii("x"): 16, Self.ascii("X"): 16, Self.ascii("o"): 8,
                                                                           Self.ascii("O"): 8, Self.ascii("b"): 2, Self.ascii("B"): 2][b] {
                i += 2
                if peek == Self.ascii("_") { i += 1 }
                result = .int(try digits(base: base).0)
            } else {
                var value: Int? = nil, isFloat = false
                if peek != Self.ascii(".") { value = try digits(base: 10).0 }
                if peek == Self.ascii(".") {
                    isFloat = true
                    i += 1
                    if let c = peek, c >= Self.ascii("0"), c <= Self.ascii("9") { _ = try digits(base: 10) }
                }
                if let e = peek, e == Self.ascii("e") || e == Self.ascii("E") {
                    isFloat = true
                    i += 1
                    if peek == Self.ascii("+") || peek == Self.ascii("-") { i += 1 }
                    _ = try digits(base: 10)
                }
                if let j = peek, j == Self.ascii("j") || j == Self.ascii("J") {
                    i += 1
                    result = .complex
                } else if isFloat {
                    result = .float
                } else {
                    // A decimal integer: no leading zero unless all zeros.
                    let written = text[start..<i].filter { $0 != Self.ascii("_") }
                    if written.count > 1, written.first == Self.ascii("0"), written.contains(where: { $0 != Self.ascii("0") }) {
                        throw refuse("an integer with a leading zero")
                    }
                    result = .int(value)
                }
            }
            if dropLongSuffix, case .int = result {
                var j = i
                while j < text.count, [0x20, 0x09, 0x0C].contains(text[j]) { j += 1 }
                if j < text.count, text[j] == Self.ascii("L"), !(j + 1 < text.count && isIdentifierPart(text[j + 1])) { i = j + 1 }
            }
            if let c = peek, isIdentifierPart(c) || c == Self.ascii(".") { throw refuse("an invalid number") }
            return result
        }
    }
}
