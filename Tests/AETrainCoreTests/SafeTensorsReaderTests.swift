import AETrainCore
import Foundation
import XCTest

/// The safetensors header parser on hostile headers (the rules of the reference reader; the
/// corpus in ReferenceReaderTests compares whole files with it), the reader's row ranges, and
/// the F16/BF16 widening (every binary16 pattern against an independent formula).
final class SafeTensorsReaderTests: XCTestCase {
    func parse(_ json: String, dataBytes: Int = 1 << 20) throws -> SafeTensorsHeader {
        try SafeTensorsHeader.parse(json: Array(json.utf8), dataBytes: dataBytes, dataStart: 8 + json.utf8.count, path: "f.safetensors")
    }

    func assertRefused(_ json: String, dataBytes: Int = 1 << 20, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(json, dataBytes: dataBytes), file: file, line: line) { error in
            let message = (error as? UserError)?.message ?? "\(error)"
            XCTAssertTrue(message.hasPrefix("f.safetensors"), "names the file: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(fragment), "'\(fragment)' not in: \(message)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
    }

    func testValidHeaderWithMetadata() throws {
        let h = try parse(#"{"b":{"dtype":"F16","shape":[2,3],"data_offsets":[24,36]},"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"s":{"dtype":"F32","shape":[],"data_offsets":[36,40]}}"#, dataBytes: 40)
        XCTAssertEqual(h.tensors.map(\.name), ["a", "b", "s"], "in data order")
        let b = h.tensor(named: "b")
        XCTAssertEqual(b?.dtype, "F16"); XCTAssertEqual(b?.shape, [2, 3]); XCTAssertEqual(b?.begin, 24); XCTAssertEqual(b?.end, 36)
        XCTAssertEqual(try parse("{}", dataBytes: 0).tensors.count, 0)
        // Metadata maps any strings to strings, a "dtype" key among them (as PyTorch writers do).
        let m = try parse(#"{"__metadata__":{"dtype":"bfloat16","format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8)
        XCTAssertEqual(m.tensors.map(\.name), ["a"])
        // As the reference: JSON whitespace around the object (padding), null metadata.
        XCTAssertEqual(try parse(" \n{\"__metadata__\":null}\t  ", dataBytes: 0).tensors.count, 0)
    }

    /// The red team's break: a name given twice keeps its last entry (200 rows, not 100), as
    /// the reference reads it; a key repeated inside an entry is an error.
    func testRepeatedKeys() throws {
        let x100 = #"{"dtype":"F32","shape":[100,16],"data_offsets":[0,6400]}"#, x200 = #"{"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}"#
        let h = try parse(#"{"x":\#(x100),"x":\#(x200)}"#, dataBytes: 12800)
        XCTAssertEqual(h.tensors.map(\.shape), [[200, 16]])
        assertRefused(#"{"x":\#(x200),"x":\#(x100)}"#, dataBytes: 12800, "bytes 6400..<12800 of the data section")
        // Only the last entry's layout counts, but every entry must be well-formed.
        XCTAssertEqual(try parse(#"{"x":{"dtype":"F16","shape":[200,16],"data_offsets":[0,12800]},"x":\#(x200)}"#, dataBytes: 12800).tensors.map(\.dtype), ["F32"])
        assertRefused(#"{"x":{"dtype":"F99","shape":[200,16],"data_offsets":[0,12800]},"x":\#(x200)}"#, dataBytes: 12800, "unknown dtype \"F99\"")
        assertRefused(#"{"x":{"dtype":"F32","dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}"#, dataBytes: 12800, "\"dtype\" appears twice")
        assertRefused(#"{"x":{"dtype":"F32","d\u0074ype":"F32","shape":[200,16],"data_offsets":[0,12800]}}"#, dataBytes: 12800, "\"dtype\" appears twice")
        assertRefused(#"{"__metadata__":{},"__metadata__":{},"x":\#(x200)}"#, dataBytes: 12800, "\"__metadata__\" appears twice")
    }

    /// Shapes and offsets are integers; the data section is tiled from 0 to the end.
    func testIntegersAndLayout() {
        assertRefused(#"{"x":{"dtype":"F32","shape":[200.0,16],"data_offsets":[0,12800]}}"#, dataBytes: 12800, "holds 200.0, not an integer")
        assertRefused(#"{"x":{"dtype":"F32","shape":[2e2,16],"data_offsets":[0,12800]}}"#, dataBytes: 12800, "holds 200.0, not an integer")
        assertRefused(#"{"x":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}"#, dataBytes: 0, "holds -0.0, not an integer")
        assertRefused(#"{"x":{"dtype":"F32","shape":[100,16],"data_offsets":[6400,12800]}}"#, dataBytes: 12800, "bytes 0..<6400 of the data section belong to no tensor")
        assertRefused(#"{"x":{"dtype":"F32","shape":[100,16],"data_offsets":[0,6400]}}"#, dataBytes: 12800, "bytes 6400..<12800 of the data section, up to the end of the file")
        assertRefused(#"{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, dataBytes: 2, "12 bits, not a whole number of bytes")
    }

    /// Nesting is bounded (serde_json's limit): 200k levels are refused in a bounded stack,
    /// and 127 levels under a key the reference ignores are accepted.
    func testNesting() throws {
        assertRefused(#"{"x":"# + String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000) + "}", "nested more than 127 deep")
        let deep = String(repeating: "[", count: 125) + String(repeating: "]", count: 125)
        XCTAssertEqual(try parse(#"{"x":{"z":\#(deep),"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8).tensors.count, 1)
        assertRefused(#"{"x":{"z":[\#(deep)],"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8, "nested more than 127 deep")
    }

    func testHostileHeaders() {
        assertRefused(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, "not a JSON object")
        assertRefused(#"{"a":{"dtype":"F32","shape":[2]}}"#, "data_offsets")
        assertRefused(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, "holds 2.5, not an integer")
        assertRefused(#"{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, "not a list of integers")
        assertRefused(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "negative dimension")
        assertRefused(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "end before they begin")
        assertRefused(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, "data_offsets holds 1 numbers, not 2")
        assertRefused(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4, "run past the end of the file")
        assertRefused(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, "takes 12 bytes, but data_offsets [0, 8] hold 8")
        assertRefused(#"{"a":{"dtype":"BF16","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, "overflows")
        assertRefused(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, "overlap")
        assertRefused(#"{"x":{}}"#, "tensor \"x\": missing \"dtype\"")
        assertRefused(#"{"__metadata__":{"k":1}}"#, "its values must be strings")
        assertRefused(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]}}"#, "not an integer")
        assertRefused("[]", "not a JSON object of tensors but an array")
        assertRefused(#"{"a\u0000\nb":{}}"#, "tensor \"a\\u0000\\u000Ab\": missing")
    }

    /// Mutated headers (bytes flipped, JSON punctuation and digits dropped in, runs cut out)
    /// give a one-line UserError or a header whose tensors tile the data section, never a crash.
    func testFuzzedHeaders() {
        let seed = Array(#"{"__metadata__":{"k":"v\u00e9"},"b":{"dtype":"F16","shape":[2,3],"data_offsets":[24,36]},"a":["F32",[2,3],[0,24]],"z":{"dtype":{"BF16":null},"shape":[0,7],"data_offsets":[36,36],"x":[1.5e3,-0,true,null]}}"#.utf8)
        XCTAssertEqual(try parse(String(decoding: seed, as: UTF8.self), dataBytes: 36).tensors.map(\.name), ["a", "b", "z"])
        let alphabet = Array(#"{}[]:,"\-+.eE0123456789 tfnu"#.utf8)
        var rng = Xoshiro256(seed: 3)
        var parsed = 0, refused = 0
        let deadline = Date().addingTimeInterval(1)
        while Date() < deadline {
            var b = seed
            for _ in 0...rng.below(4) {
                let at = rng.below(b.count)
                switch rng.below(3) {
                case 0: b[at] = alphabet[rng.below(alphabet.count)]
                case 1: b[at] ^= UInt8(1 << rng.below(8))
                default: b.removeSubrange(at..<min(b.count, at + rng.below(8)))
                }
                if b.isEmpty { break }
            }
            do {
                let h = try SafeTensorsHeader.parse(json: b, dataBytes: 36, dataStart: 8 + b.count, path: "f.safetensors")
                XCTAssertEqual(h.tensors.map(\.end).max() ?? 0, 36)
                parsed += 1
            } catch let e as UserError {
                XCTAssertFalse(e.message.contains("\n"), e.message)
                refused += 1
            } catch { XCTFail("\(error)") }
        }
        XCTAssertGreaterThan(parsed, 10)
        XCTAssertGreaterThan(refused, 100)
    }

    /// Whole files: too short, a header length beyond the file, an unknown dtype for data,
    /// a missing name; and rows read from the middle of a tensor that is not the first.
    func testReader() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aetrain-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ data: Data) throws -> String {
            let url = dir.appendingPathComponent(name)
            try data.write(to: url)
            return url.path
        }
        func refused(_ path: String, _ tensor: String?, _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try SafeTensorsReader(path: path, tensor: tensor), line: line) {
                XCTAssertTrue(((($0 as? UserError)?.message) ?? "").contains(fragment), "\($0)", line: line)
            }
        }
        refused(try write("short", Data([1, 2, 3])), nil, "shorter than the 8-byte header length")
        refused(try write("long", Data([0xFF, 0, 0, 0, 0, 0, 0, 0x80]) + Data("{}".utf8)), nil, "runs past the end of the file")
        let values: [Float] = (0..<12).map { Float($0) - 5.5 }
        let file = SafeTensors.encode([(SafeTensors.Entry("ids", .I32, [2]), SafeTensors.bytes([Int32(1), 2])),
                                       (SafeTensors.Entry("x", .F32, [4, 3]), SafeTensors.bytes(values))])
        let path = try write("ok.safetensors", file)
        refused(path, nil, "holds 2 tensors (\"ids\", \"x\"); name one")
        refused(path, "y", "no tensor named \"y\"; the file holds \"ids\", \"x\"")
        refused(path, "ids", "dtype I32; aetrain reads F32, F16 and BF16")
        let reader = try SafeTensorsReader(path: path, tensor: "x")
        XCTAssertEqual(reader.shape, [4, 3])
        var out = [Float](repeating: .nan, count: 6)
        try out.withUnsafeMutableBufferPointer { try reader.readRows(1..<3, into: $0) }
        XCTAssertEqual(out, Array(values[3..<9]))
        // Truncated after the header was written whole: the data offsets no longer fit.
        refused(try write("cut.safetensors", file.prefix(file.count - 4)), "x", "run past the end of the file")
    }

    /// Every binary16 pattern against sign · (implicit 1 + m/1024) · 2^(e−15) in Double.
    func testF16AllPatterns() {
        for bits in 0...UInt16.max {
            let sign: Double = bits & 0x8000 != 0 ? -1 : 1
            let e = Int(bits >> 10) & 0x1F, m = Double(bits & 0x3FF)
            let got = HalfFloats.float(f16: bits)
            if e == 0x1F {
                if m == 0 { XCTAssertEqual(got, Float(sign) * .infinity) } else { XCTAssertTrue(got.isNaN, "\(bits)") }
                continue
            }
            let expected = sign * (e == 0 ? m / 1024 * pow(2, -14) : (1 + m / 1024) * pow(2, Double(e - 15)))
            XCTAssertEqual(got, Float(expected), "pattern \(String(bits, radix: 16))")
            XCTAssertEqual(got.sign, sign < 0 ? .minus : .plus, "sign of \(String(bits, radix: 16)), −0 included")
        }
        XCTAssertEqual(HalfFloats.float(f16: 0x0001), Float(bitPattern: 0x3380_0000), "smallest subnormal, 2⁻²⁴")
        XCTAssertEqual(HalfFloats.float(f16: 0x7BFF), 65504)
        XCTAssertEqual(HalfFloats.float(f16: 0x8000).bitPattern, 0x8000_0000, "−0")
    }

    func testBF16() {
        XCTAssertEqual(HalfFloats.float(bf16: 0x3F80), 1)
        XCTAssertEqual(HalfFloats.float(bf16: 0xC2F7), -123.5)
        XCTAssertEqual(HalfFloats.float(bf16: 0x8000).bitPattern, 0x8000_0000, "−0")
        XCTAssertEqual(HalfFloats.float(bf16: 0x0001).bitPattern, 0x0001_0000, "a float32 subnormal, kept")
        XCTAssertEqual(HalfFloats.float(bf16: 0x7F80), .infinity)
        XCTAssertEqual(HalfFloats.float(bf16: 0xFF80), -.infinity)
        XCTAssertTrue(HalfFloats.float(bf16: 0x7FC1).isNaN)
        for bits in stride(from: 0, through: 0xFFFF, by: 7) {
            XCTAssertEqual(HalfFloats.float(bf16: UInt16(bits)).bitPattern, UInt32(bits) << 16)
        }
    }

    /// Old config.json files (an image shape, no `dimensions`) still decode; new ones without
    /// an image shape omit it.
    func testDatasetInfoDecodesOldConfigs() throws {
        let old = #"{"source":"x.npy","examples":10,"imageShape":{"height":3,"width":4},"dtype":"<f4","std":1.5,"fingerprint":"00"}"#
        let info = try JSONDecoder().decode(DatasetInfo.self, from: Data(old.utf8))
        XCTAssertEqual(info.dimensions, 12)
        XCTAssertEqual(info.imageShape, ImageShape(height: 3, width: 4))
        let vectors = DatasetInfo(source: "v.npy", examples: 5, layout: ExampleLayout(dimensions: 7, imageShape: nil), dtype: "F16", std: 1, fingerprint: "01")
        let json = String(decoding: try JSONEncoder().encode(vectors), as: UTF8.self)
        XCTAssertFalse(json.contains("imageShape"), json)
        XCTAssertEqual(try JSONDecoder().decode(DatasetInfo.self, from: Data(json.utf8)), vectors)
        XCTAssertThrowsError(try JSONDecoder().decode(DatasetInfo.self, from: Data(#"{"source":"x","examples":1,"dtype":"<f4","std":1,"fingerprint":"0"}"#.utf8)))
    }

    func testLayouts() throws {
        XCTAssertEqual(try ExampleLayout.resolve(shape: [5, 7], given: nil, threeDimensionalImages: false, path: "p"), ExampleLayout(dimensions: 7, imageShape: nil))
        XCTAssertEqual(try ExampleLayout.resolve(shape: [5, 12], given: ImageShape(height: 3, width: 4), threeDimensionalImages: false, path: "p"),
                       ExampleLayout(image: ImageShape(height: 3, width: 4)))
        XCTAssertEqual(try ExampleLayout.resolve(shape: [5, 3, 4], given: nil, threeDimensionalImages: true, path: "p"),
                       ExampleLayout(image: ImageShape(height: 3, width: 4)))
        for (shape, given, images) in [([5], nil, true), ([5, 1, 2, 3], nil, true), ([5, 3, 4], nil, false), ([5, 0], nil, true),
                                       ([5, 12], ImageShape(height: 5, width: 5), true), ([5, 3, 4], ImageShape(height: 4, width: 3), true)] as [([Int], ImageShape?, Bool)] {
            XCTAssertThrowsError(try ExampleLayout.resolve(shape: shape, given: given, threeDimensionalImages: images, path: "p"), "\(shape)")
        }
    }
}
