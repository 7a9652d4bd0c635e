import AETrainCore
import Foundation
import XCTest

final class NPYTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("aetrain-npy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A .npy file with a hand-made header and payload.
    func file(_ name: String, header dict: String, version: (UInt8, UInt8) = (1, 0), payload: [UInt8]) throws -> String {
        var text = dict
        let lengthSize = version.0 == 1 ? 2 : 4
        let unpadded = 8 + lengthSize + text.utf8.count + 1
        text += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version.0, version.1]
        let n = text.utf8.count
        for i in 0..<lengthSize { bytes.append(UInt8((n >> (8 * i)) & 0xff)) }
        bytes += Array(text.utf8) + payload
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func floatBytes(_ values: [Float]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) } }
    func doubleBytes(_ values: [Double]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) } }

    func readAll(_ path: String) throws -> (NPYHeader, [Float]) {
        let r = try NPYReader(path: path)
        var out = [Float](repeating: .nan, count: r.header.shape.reduce(1, *))
        try out.withUnsafeMutableBufferPointer { try r.readRows(0..<r.header.rowCount, into: $0) }
        return (r.header, out)
    }

    func testRoundTripThroughWriter() throws {
        let values: [Float] = (0..<24).map { Float($0) * 0.5 - 3 }
        let url = dir.appendingPathComponent("w.npy")
        try values.withUnsafeBufferPointer { try NPYWriter.write($0, shape: [2, 3, 4], to: url) }
        let data = try Data(contentsOf: url)
        XCTAssertEqual((data.count - 24 * 4) % 64, 0, "header padded to 64 bytes")
        let (h, read) = try readAll(url.path)
        XCTAssertEqual(h.shape, [2, 3, 4])
        XCTAssertEqual(h.element, .float32)
        XCTAssertEqual(read, values)
    }

    func testOneDimensionalShapeHasTrailingComma() throws {
        let url = dir.appendingPathComponent("v.npy")
        try [Float(1), 2, 3].withUnsafeBufferPointer { try NPYWriter.write($0, shape: [3], to: url) }
        let text = String(decoding: try Data(contentsOf: url).prefix(80), as: UTF8.self)
        XCTAssertTrue(text.contains("'shape': (3,)"), text)
    }

    func testFloat64AndUInt8AndVersions() throws {
        let p64 = try file("d.npy", header: "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", version: (2, 0),
                           payload: doubleBytes([1.5, -2, 3.25, 0]))
        XCTAssertEqual(try readAll(p64).1, [1.5, -2, 3.25, 0])
        let pu8 = try file("u.npy", header: "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3), }", version: (3, 0),
                           payload: [0, 51, 255])
        XCTAssertEqual(try readAll(pu8).1, [0, 0.2, 1])
    }

    func testReadsOnlyTheRequestedRows() throws {
        let values: [Float] = (0..<20).map(Float.init)
        let url = dir.appendingPathComponent("rows.npy")
        try values.withUnsafeBufferPointer { try NPYWriter.write($0, shape: [5, 4], to: url) }
        let r = try NPYReader(path: url.path)
        var out = [Float](repeating: 0, count: 8)
        try out.withUnsafeMutableBufferPointer { try r.readRows(2..<4, into: $0) }
        XCTAssertEqual(out, Array(values[8..<16]))
    }

    func assertFails(_ path: String, _ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try NPYReader(path: path), line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "\(error) should mention \(fragment)", line: line)
        }
    }

    func testBadFilesGiveClearErrors() throws {
        let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
        assertFails(dir.appendingPathComponent("missing.npy").path, "no such file")
        let bad = dir.appendingPathComponent("bad.npy")
        try Data("hello world, not numpy".utf8).write(to: bad)
        assertFails(bad.path, "bad magic")
        assertFails(try file("v9.npy", header: ok, version: (9, 0), payload: floatBytes([1, 2, 3, 4])), "unsupported format version 9.0")
        assertFails(try file("short.npy", header: ok, payload: floatBytes([1, 2, 3])), "truncated")
        assertFails(try file("i.npy", header: "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", payload: [UInt8](repeating: 0, count: 32)), "unsupported dtype \"<i8\"")
        assertFails(try file("x.npy", header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", payload: floatBytes([1, 2, 3, 4])), "not exactly 'descr'")
        assertFails(try file("c.npy", header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4,,)}", payload: floatBytes([1, 2, 3, 4])), "not a Python literal")
        assertFails(dir.path, "is a directory")
    }

    /// As numpy.load reads them: Fortran order (the first index fastest), big-endian data,
    /// a repeated key (the last wins), Python 2's `L` in a version 1.0 header.
    func testLayoutsNumpyReads() throws {
        let fortran = try file("f.npy", header: "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", payload: floatBytes([1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(try readAll(fortran).1, [1, 3, 5, 2, 4, 6])
        let r = try NPYReader(path: fortran)
        var row = [Float](repeating: 0, count: 3)
        try row.withUnsafeMutableBufferPointer { try r.readRows(1..<2, into: $0) }
        XCTAssertEqual(row, [2, 4, 6])
        let big = try file("be.npy", header: "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                           payload: [Float(1.5), -2].flatMap { v in withUnsafeBytes(of: v.bitPattern.bigEndian, Array.init) })
        XCTAssertEqual(try readAll(big).1, [1.5, -2])
        let repeated = try file("r.npy", header: "{'descr': '<f8', 'shape': (9,), 'fortran_order': False, \"descr\": '<f4', 'shape': (0x2, 1_0L)}",
                                payload: floatBytes((0..<20).map(Float.init)))
        XCTAssertEqual(try readAll(repeated).0.shape, [2, 10])
        XCTAssertEqual(try readAll(repeated).0.element, .float32)
    }
}
