import Foundation
import XCTest

/// Every kind of bad data stops the run before training: one line from rank 0 (run here with
/// 2 ranks), exit code 1, and files already in the output directory left as they were.
final class BadDataTests: XCTestCase {
    var dir: URL!
    var out: URL!

    override func setUpWithError() throws {
        dir = try Harness.temporaryDirectory("bad")
        out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("earlier run".utf8).write(to: out.appendingPathComponent("V.npy"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Writes files with numpy; `script` sees `d` (the test directory) and `np`.
    func numpy(_ script: String) throws {
        _ = try Harness.python("import numpy as np\nd = '\(dir.path)'\n" + script)
    }

    /// Runs `train` on 2 ranks and checks the one error line (holding each of `fragments`, or
    /// equal to the one fragment if `exactly`), the exit code and the output directory.
    func assertRejected(_ arguments: [String], _ fragments: [String], ranks: Int = 2, exactly: Bool = false,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try Harness.mpirun(ranks, ["train", "--out", out.path, "--batch-size", "4", "--hidden", "8"] + arguments, file: file, line: line)
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        XCTAssertEqual(r.errorLines.count, 1, "one error line, from rank 0: \(r.stderr)", file: file, line: line)
        if exactly { XCTAssertEqual(r.errorLines, fragments, file: file, line: line) }
        for fragment in fragments {
            XCTAssertTrue(r.errorLines.first?.contains(fragment) == true, "'\(fragment)' not in: \(r.stderr)", file: file, line: line)
        }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump") || r.stderr.contains("MPI_ABORT"), r.stderr, file: file, line: line)
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path)
        XCTAssertEqual(left, ["V.npy"], "nothing new in --out", file: file, line: line)
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("V.npy"), encoding: .utf8), "earlier run", file: file, line: line)
    }

    var good: String { "x = np.random.default_rng(0).normal(size=(10, 4, 4)).astype('<f4')\n" }

    /// On 2 ranks into an existing --out, and on 4 ranks with an --out that does not exist yet:
    /// the same one line, and no output directory made for a run that never started.
    func testMissingPath() throws {
        let missing = dir.appendingPathComponent("nope.npy").path
        try assertRejected(["--data", missing], ["error: \(missing): no such file"], exactly: true)
        let fresh = dir.appendingPathComponent("fresh")
        let r = try Harness.mpirun(4, ["train", "--data", missing, "--out", fresh.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines, ["error: \(missing): no such file"], r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fresh.path), "no output directory on bad input")
    }

    func testUnreadablePath() throws {
        // root reads anything, so the run drops to user 'nobody' (via setpriv) from a copy of the binary.
        try numpy(good + "np.save(d + '/secret.npy', x)")
        let secret = dir.appendingPathComponent("secret.npy")
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: secret.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: out.path)
        let binDir = dir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: binDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Harness.aetrain, toPath: binDir.appendingPathComponent("aetrain").path)
        let args = ["train", "--data", secret.path, "--out", out.path]
        let r: Run
        if getuid() == 0 {
            r = try Harness.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", binDir.appendingPathComponent("aetrain").path] + args)
        } else {
            r = try Harness.aetrain(args)
        }
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.errorLines, ["error: \(secret.path): cannot open for reading (permissions?)"], r.stderr)
    }

    func testBadMagic() throws {
        try Data("this is not a numpy file at all".utf8).write(to: dir.appendingPathComponent("text.npy"))
        try assertRejected(["--data", dir.appendingPathComponent("text.npy").path], ["text.npy", "bad magic"])
    }

    func testUnsupportedVersion() throws {
        try numpy(good + "np.save(d + '/v.npy', x)\nb = bytearray(open(d + '/v.npy', 'rb').read()); b[6] = 7\nopen(d + '/v.npy', 'wb').write(b)")
        try assertRejected(["--data", dir.appendingPathComponent("v.npy").path], ["unsupported format version 7.0"])
    }

    func testTruncatedData() throws {
        try numpy(good + "np.save(d + '/t.npy', x)\nb = open(d + '/t.npy', 'rb').read()\nopen(d + '/t.npy', 'wb').write(b[:-10])")
        try assertRejected(["--data", dir.appendingPathComponent("t.npy").path], ["t.npy: truncated", "needs", "the file has"])
    }

    /// Not bad data since issue 23: Fortran order and big-endian files are read as numpy.load
    /// reads them, the same values as the C-order little-endian file (the same fingerprint).
    func testFortranOrderAndBigEndianReadAsNumpyReadsThem() throws {
        try numpy(good + "np.save(d + '/c.npy', x)\nnp.save(d + '/f.npy', np.asfortranarray(x))\n"
                  + "np.save(d + '/be.npy', x.astype('>f4'))\nnp.save(d + '/fbe.npy', np.asfortranarray(x.astype('>f4')))")
        var fingerprints: [String] = []
        for name in ["c", "f", "be", "fbe"] {
            let run = dir.appendingPathComponent("run-\(name)")
            let r = try Harness.mpirun(2, ["train", "--data", dir.appendingPathComponent("\(name).npy").path, "--out", run.path,
                                           "--batch-size", "4", "--hidden", "8", "--iterations", "1", "--quiet"])
            XCTAssertEqual(r.status, 0, "\(name).npy: \(r.stderr)")
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
            fingerprints.append((config?["dataset"] as? [String: Any])?["fingerprint"] as? String ?? "none")
        }
        XCTAssertEqual(Set(fingerprints).count, 1, "c, f, be, fbe: \(fingerprints)")
        XCTAssertFalse(fingerprints.contains("none"))
    }

    func testUnsupportedDtype() throws {
        try numpy("np.save(d + '/i.npy', np.arange(160, dtype='<i4').reshape(10, 4, 4))")
        try assertRejected(["--data", dir.appendingPathComponent("i.npy").path], ["unsupported dtype \"<i4\""])
    }

    /// Example 8 of 10 lies in rank 1's shard (rows 5..<10): named by its global index.
    func testNaNNamesTheExample() throws {
        try numpy(good + "x[8, 1, 1] = np.nan\nnp.save(d + '/nan.npy', x)")
        try assertRejected(["--data", dir.appendingPathComponent("nan.npy").path], ["example 8", "NaN"])
    }

    func testInfinityNamesTheExample() throws {
        try numpy(good + "x[2, 0, 3] = -np.inf\nnp.save(d + '/inf.npy', x)")
        try assertRejected(["--data", dir.appendingPathComponent("inf.npy").path], ["example 2", "an infinite value"])
    }

    /// N×D trains without --image-shape (VectorDataTests); a vector or a 4-D array does not.
    func testArrayThatIsNotAMatrix() throws {
        try numpy("np.save(d + '/v.npy', np.arange(12, dtype='<f4'))\nnp.save(d + '/t.npy', np.ones((10, 2, 2, 3), dtype='<f4'))")
        try assertRejected(["--data", dir.appendingPathComponent("v.npy").path], ["expected an N×D matrix", "1-D array of shape [12]"])
        try assertRejected(["--data", dir.appendingPathComponent("t.npy").path], ["expected an N×D matrix", "4-D array"])
    }

    func testImageShapeThatDoesNotMultiplyToD() throws {
        try numpy("np.save(d + '/nd.npy', np.ones((10, 12), dtype='<f4') * np.arange(12))")
        try assertRejected(["--data", dir.appendingPathComponent("nd.npy").path, "--image-shape", "5x5"], ["5x5 has 25 pixels", "each row has 12"])
    }

    func testFewerExamplesThanRanks() throws {
        try numpy("np.save(d + '/two.npy', np.random.default_rng(0).normal(size=(2, 3, 3)).astype('<f4'))")
        let two = dir.appendingPathComponent("two.npy").path
        try assertRejected(["--data", two, "--batch-size", "1"],
                           ["error: \(two): 2 examples cannot be shared by 3 ranks (need at least one each)"], ranks: 3, exactly: true)
    }

    func testFewerExamplesThanTheBatch() throws {
        try numpy(good + "np.save(d + '/ten.npy', x)")
        try assertRejected(["--data", dir.appendingPathComponent("ten.npy").path, "--batch-size", "11"],
                           ["--batch-size 11 is larger than the dataset (10 examples)"])
        // The embedded faces (100 examples), without --data.
        let big = try Harness.mpirun(2, ["train", "--batch-size", "101", "--out", out.path])
        XCTAssertEqual(big.status, 1)
        XCTAssertEqual(big.errorLines.count, 1, big.stderr)
        XCTAssertTrue(big.stderr.contains("--batch-size 101 is larger than the dataset (100 examples)"), big.stderr)
    }

    func testEmptyLFWTree() throws {
        let tree = dir.appendingPathComponent("lfw")
        try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
        try assertRejected(["--data", tree.path], ["empty LFW tree"])
    }

    func testNonJPEGInTheTree() throws {
        let person = dir.appendingPathComponent("lfw/Some_One")
        try FileManager.default.createDirectory(at: person, withIntermediateDirectories: true)
        _ = try Harness.python("""
            from PIL import Image
            import numpy as np
            for k in (1, 2, 3):
                Image.fromarray(np.full((250, 250, 3), 40 * k, np.uint8)).save('\(person.path)/Some_One_000%d.jpg' % k)
            """)
        try Data("not a jpeg".utf8).write(to: person.appendingPathComponent("Some_One_0004.jpg"))
        try assertRejected(["--data", dir.appendingPathComponent("lfw").path], ["Some_One/Some_One_0004.jpg: not a readable JPEG"])
    }
}
