import Foundation
import XCTest

/// Bad `.safetensors` input (files written by the `safetensors` package, then damaged with
/// Python): one error line from rank 0 naming the file, exit 1, nothing written into --out,
/// alone and on 2 ranks.
final class BadSafetensorsTests: XCTestCase {
    var dir: URL!
    var out: URL!

    override func setUpWithError() throws {
        dir = try Harness.temporaryDirectory("bad-st")
        out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("earlier run".utf8).write(to: out.appendingPathComponent("V.npy"))
        _ = try Harness.python("""
            import numpy as np, json, struct
            from safetensors.numpy import save_file
            d = '\(dir.path)'
            x = np.random.default_rng(0).normal(size=(40, 6)).astype('<f4')
            save_file({'acts': x}, d + '/good.safetensors')
            raw = open(d + '/good.safetensors', 'rb').read()
            n = struct.unpack('<Q', raw[:8])[0]
            header, body = json.loads(raw[8:8 + n]), raw[8 + n:]
            def rewrite(name, change):
                h = json.loads(json.dumps(header)); change(h['acts'])
                text = json.dumps(h).encode(); text += b' ' * ((8 - len(text) % 8) % 8)
                open(d + '/' + name, 'wb').write(struct.pack('<Q', len(text)) + text + body)
            open(d + '/truncated.safetensors', 'wb').write(raw[:8 + n // 2])
            open(d + '/badjson.safetensors', 'wb').write(raw[:8] + raw[8:8 + n].replace(b'}', b']', 1) + body)
            rewrite('beyond.safetensors', lambda t: t.update(shape=[50, 6], data_offsets=[0, 1200]))
            save_file({'acts': x, 'more': x[:2].copy()}, d + '/two.safetensors')
            save_file({'acts': x.astype('<f8')}, d + '/f64.safetensors')
            save_file({'acts': x[:, 0].copy()}, d + '/vector.safetensors')
            save_file({'acts': x.reshape(40, 2, 3)}, d + '/cube.safetensors')
            y = x.copy(); y[33, 4] = 1e6  # beyond binary16: inf
            save_file({'acts': y.astype('<f2')}, d + '/inf16.safetensors')
            y = x.copy(); y[5, 2] = np.nan
            save_file({'acts': y}, d + '/nan.safetensors')
            # Issue 23's red team: headers the reference reads otherwise than a lenient parser.
            z = np.random.default_rng(1).normal(size=(200, 16)).astype('<f4').tobytes()
            def raw(name, text):
                open(d + '/' + name, 'wb').write(struct.pack('<Q', len(text)) + text.encode() + z)
            entry = lambda shape, begin, end: '{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}' % (shape, begin, end)
            raw('dupname.safetensors', '{"x":%s,"x":%s}' % (entry('[100,16]', 0, 6400), entry('[200,16]', 0, 12800)))
            raw('dupdtype.safetensors', '{"x":{"dtype":"F32","dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}')
            raw('exponent.safetensors', '{"x":%s}' % entry('[2e2,16]', 0, 12800))
            raw('gap.safetensors', '{"x":%s}' % entry('[100,16]', 6400, 12800))
            """)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func assertRejected(_ data: String, _ fragments: [String], ranks: [Int] = [1, 2], file: StaticString = #filePath, line: UInt = #line) throws {
        // One process and the ranks, launched at once: each is refused before it writes anything.
        let args = ["train", "--out", out.path, "--batch-size", "4", "--hidden", "8", "--data", dir.appendingPathComponent(data).path]
        let runs = try Harness.runAll(ranks.map { n in n == 1 ? Harness.Command(Harness.aetrain, args) : try Harness.mpirunCommand(n, args) },
                                      file: file, line: line)
        for (n, r) in zip(ranks, runs) {
            XCTAssertEqual(r.status, 1, "\(n) rank(s): \(r.stderr)", file: file, line: line)
            XCTAssertEqual(r.errorLines.count, 1, "one error line, from rank 0: \(r.stderr)", file: file, line: line)
            for fragment in fragments + [dir.appendingPathComponent(data.split(separator: ":").first.map(String.init) ?? data).path] {
                XCTAssertTrue(r.errorLines.first?.contains(fragment) == true, "'\(fragment)' not in: \(r.stderr)", file: file, line: line)
            }
            XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump") || r.stderr.contains("MPI_ABORT"), r.stderr, file: file, line: line)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), ["V.npy"], "nothing new in --out", file: file, line: line)
            XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("V.npy"), encoding: .utf8), "earlier run", file: file, line: line)
        }
    }

    func testTruncatedHeader() throws {
        try assertRejected("truncated.safetensors", ["the header length", "runs past the end of the file"])
    }

    func testHeaderThatIsNotJSON() throws {
        try assertRejected("badjson.safetensors", ["not a JSON object of tensors"], ranks: [1])
    }

    func testOffsetsBeyondTheFile() throws {
        try assertRejected("beyond.safetensors", ["data_offsets [0, 1200] run past the end of the file"], ranks: [2])
    }

    func testMissingOrUnnamedTensor() throws {
        try assertRejected("two.safetensors:nope", ["no tensor named \"nope\"", "\"acts\", \"more\""])
        try assertRejected("two.safetensors", ["holds 2 tensors", "name one as"], ranks: [1])
    }

    func testUnsupportedDtype() throws {
        try assertRejected("f64.safetensors", ["dtype F64", "F32, F16 and BF16"], ranks: [1])
    }

    func testVectorAndCube() throws {
        try assertRejected("vector.safetensors", ["1-D array of shape [40]"], ranks: [1])
        try assertRejected("cube.safetensors", ["3-D (40×2×3)", "reshape"])
    }

    /// The red team's break (issue 23): a tensor named twice is read as the reference reader
    /// (`safetensors.numpy.load_file`) reads it, the last entry's 200 rows and not the first's
    /// 100; a repeated dtype key, a shape written 2e2 and bytes before the first tensor are
    /// refused, as the reference refuses them.
    func testHeadersReadAsTheReferenceReadsThem() throws {
        let run = dir.appendingPathComponent("run")
        let r = try Harness.aetrain(["train", "--out", run.path, "--batch-size", "8", "--hidden", "4", "--iterations", "1",
                                     "--data", dir.appendingPathComponent("dupname.safetensors").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("aetrain: 200 examples of 16-value vectors"), r.stdout)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual((config?["dataset"] as? [String: Any])?["examples"] as? Int, 200)
        try assertRejected("dupdtype.safetensors", ["tensor \"x\": \"dtype\" appears twice"], ranks: [1])
        try assertRejected("exponent.safetensors", ["shape holds 200.0, not an integer"], ranks: [1])
        try assertRejected("gap.safetensors", ["bytes 0..<6400 of the data section belong to no tensor"], ranks: [1])
    }

    func testNonFiniteValues() throws {
        try assertRejected("inf16.safetensors", ["example 33", "an infinite value"])
        try assertRejected("nan.safetensors", ["example 5", "NaN"], ranks: [2])
    }
}
