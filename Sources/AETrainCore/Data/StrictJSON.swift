/// JSON read as the Rust `serde_json` crate reads it, for the safetensors header: the reference
/// reader (the `safetensors` package) accepts exactly what serde_json accepts, so this parser
/// keeps what Foundation's would smooth over.
///
///     objects    every key in file order, duplicates kept (the caller decides what they mean)
///     numbers    a non-negative integer below 2⁶⁴ is `.unsigned`, a negative one above −2⁶³
///                `.negative`; every other number (`200.0`, `2e2`, `-0`, `18446744073709551616`)
///                is `.float`, computed as serde_json does, and one that overflows is refused
///     strings    escapes decoded; raw control characters and unpaired surrogates refused
///     nesting    at most 127 arrays and objects deep (serde_json's recursion limit of 128),
///                so a 200k-deep header is refused in a bounded stack
///
/// The input must already be valid UTF-8 (`SafeTensorsHeader` checks it first, as the
/// reference does).
enum StrictJSON {
    indirect enum Value {
        case null
        case bool(Bool)
        case unsigned(UInt64)
        case negative(Int64)
        case float(Double)
        case string(String)
        case array([Value])
        case object([(key: String, value: Value)])
    }

    struct SyntaxError: Error {
        var message: String
        /// Byte offset into the input.
        var offset: Int
    }

    static let maxDepth = 127

    static func parse(_ bytes: [UInt8]) throws -> Value {
        var p = Parser(bytes: bytes)
        p.skipWhitespace()
        let value = try p.value(depth: 0)
        p.skipWhitespace()
        guard p.i == bytes.count else { throw p.error("trailing characters") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        func error(_ message: String) -> SyntaxError { SyntaxError(message: message, offset: i) }
        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipWhitespace() {
            while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
        }

        mutating func value(depth: Int) throws -> Value {
            guard let c = peek else { throw error("the text ends where a value was expected") }
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < maxDepth else { throw error("nested more than \(maxDepth) deep") }
                i += 1
                return c == UInt8(ascii: "{") ? try object(depth: depth + 1) : try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw error("expected a value")
            }
        }

        mutating func literal(_ word: String) throws {
            for b in word.utf8 {
                guard peek == b else { throw error("expected a value") }
                i += 1
            }
        }

        /// After '{'.
        mutating func object(depth: Int) throws -> Value {
            var pairs: [(key: String, value: Value)] = []
            skipWhitespace()
            if peek == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                guard peek == UInt8(ascii: "\"") else { throw error(!pairs.isEmpty && peek == UInt8(ascii: "}") ? "trailing comma" : "key must be a string") }
                let key = try string()
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipWhitespace()
                pairs.append((key, try value(depth: depth)))
                skipWhitespace()
                switch peek {
                case UInt8(ascii: ","): i += 1; skipWhitespace()
                case UInt8(ascii: "}"): i += 1; return .object(pairs)
                default: throw error("expected ',' or '}'")
                }
            }
        }

        /// After '['.
        mutating func array(depth: Int) throws -> Value {
            var items: [Value] = []
            skipWhitespace()
            if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                if peek == UInt8(ascii: "]") { throw error("trailing comma") }
                items.append(try value(depth: depth))
                skipWhitespace()
                switch peek {
                case UInt8(ascii: ","): i += 1; skipWhitespace()
                case UInt8(ascii: "]"): i += 1; return .array(items)
                default: throw error("expected ',' or ']'")
                }
            }
        }

        mutating func string() throws -> String {
            i += 1  // the opening quote
            var out: [UInt8] = []
            while true {
                guard let c = peek else { throw error("the text ends inside a string") }
                i += 1
                switch c {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case 0..<0x20: i -= 1; throw error("control character (U+0000 to U+001F) inside a string")
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw error("the text ends inside a string") }
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = UInt32(try hex4())
                        if (0xDC00...0xDFFF).contains(scalar) { throw error("lone surrogate in a \\u escape") }
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard peek == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u") else {
                                throw error("lone surrogate in a \\u escape")
                            }
                            i += 2
                            let low = UInt32(try hex4())
                            guard (0xDC00...0xDFFF).contains(low) else { throw error("lone surrogate in a \\u escape") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        // Surrogates are excluded above, so every value here is a scalar.
                        out += Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
                    default: throw error("invalid escape")
                    }
                default: out.append(c)
                }
            }
        }

        mutating func hex4() throws -> UInt16 {
            var v: UInt16 = 0
            for _ in 0..<4 {
                guard let c = peek, let d = hexDigit(c) else { throw error("invalid \\u escape") }
                v = v << 4 | UInt16(d)
                i += 1
            }
            return v
        }

        func hexDigit(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }

        var digit: UInt64? {
            guard let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            return UInt64(c - UInt8(ascii: "0"))
        }

        /// Whether `s × 10 + d` overflows a u64 (serde_json's `overflow!`).
        func overflows(_ s: UInt64, _ d: UInt64) -> Bool { s >= UInt64.max / 10 && (s > UInt64.max / 10 || d > UInt64.max % 10) }

        /// serde_json's `parse_integer`: digits kept in a u64 while they fit, then counted as
        /// a power of ten.
        mutating func number() throws -> Value {
            let positive = peek != UInt8(ascii: "-")
            if !positive { i += 1 }
            guard let first = digit else { throw error("invalid number") }
            i += 1
            var significand = first
            if first == 0 {
                if digit != nil { throw error("invalid number") }
            } else {
                while let d = digit {
                    if overflows(significand, d) {
                        // parse_long_integer: the remaining integer digits scale by ten each.
                        var exponent: Int32 = 0
                        while digit != nil { i += 1; exponent += 1 }
                        return .float(try fraction(positive, significand, exponent))
                    }
                    i += 1
                    significand = significand * 10 + d
                }
            }
            switch peek {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return .float(try fraction(positive, significand, 0))
            default:
                if positive { return .unsigned(significand) }
                let negated = Int64(bitPattern: significand &* UInt64.max)  // wrapping −significand
                return negated >= 0 ? .float(-Double(significand)) : .negative(negated)  // −0 and below −2⁶³ are floats
            }
        }

        /// The decimal part and exponent, if any (serde_json's `parse_decimal`,
        /// `parse_exponent` and their overflow paths).
        mutating func fraction(_ positive: Bool, _ start: UInt64, _ exponentBefore: Int32) throws -> Double {
            var significand = start, exponent = exponentBefore
            if peek == UInt8(ascii: ".") {
                i += 1
                var after: Int32 = 0
                while let d = digit {
                    if overflows(significand, d) {
                        while digit != nil { i += 1 }  // further digits are dropped
                        break
                    }
                    i += 1
                    significand = significand * 10 + d
                    after -= 1
                }
                if after == 0 && bytes[i - 1] == UInt8(ascii: ".") { throw error("invalid number") }
                exponent += after
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                var positiveExponent = true
                if peek == UInt8(ascii: "+") { i += 1 } else if peek == UInt8(ascii: "-") { i += 1; positiveExponent = false }
                guard let first = digit else { throw error("invalid number") }
                i += 1
                var e = Int32(first)
                while let d = digit {
                    i += 1
                    let (t, o1) = e.multipliedReportingOverflow(by: 10)
                    let (u, o2) = t.addingReportingOverflow(Int32(d))
                    if o1 || o2 {
                        // parse_exponent_overflow: ±infinity is an error, a vanishing value 0.
                        guard significand == 0 || !positiveExponent else { throw error("number out of range") }
                        while digit != nil { i += 1 }
                        return positive ? 0 : -0.0
                    }
                    e = u
                }
                // Saturating, as serde_json's.
                exponent = Int32(clamping: Int64(exponent) + (positiveExponent ? Int64(e) : -Int64(e)))
            }
            return try fromParts(positive, significand, exponent)
        }

        /// serde_json's `f64_from_parts`: significand × 10^exponent in f64 arithmetic, with
        /// its own rounding (a value near the largest double may be refused as out of range).
        func fromParts(_ positive: Bool, _ significand: UInt64, _ exponent: Int32) throws -> Double {
            var f = Double(significand)
            var exponent = Int(exponent)
            while true {
                let magnitude = exponent.magnitude
                if magnitude <= 308 {
                    let pow = Self.powersOfTen[Int(magnitude)]
                    if exponent >= 0 {
                        f *= pow
                        guard f.isFinite else { throw error("number out of range") }
                    } else {
                        f /= pow
                    }
                    break
                }
                if f == 0 { break }
                guard exponent < 0 else { throw error("number out of range") }
                f /= 1e308
                exponent += 308
            }
            return positive ? f : -f
        }

        /// 1e0 … 1e308, each the double nearest to its power of ten (as serde_json's table).
        static let powersOfTen: [Double] = (0...308).map { Double("1e\($0)") ?? .infinity }
    }
}
