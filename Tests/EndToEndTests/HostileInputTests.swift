import Foundation
import XCTest

/// Sizes from outside that overflow or do not fit in memory, and hostile JPEGs (issue 12,
/// items 1–3): each ends in one `error:` line from rank 0 and exit code 1, never in a crash
/// trace, and leaves what is on disk as it was.
final class HostileInputTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("hostile") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Exit code 1, exactly one error line holding each of `fragments`, no trace.
    func assertOneError(_ r: Run, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        XCTAssertEqual(r.errorLines.count, 1, "one error line: \(r.stderr)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(r.errorLines.first?.contains(fragment) == true, "'\(fragment)' not in: \(r.stderr)", file: file, line: line)
        }
        for trace in ["Fatal error", "Backtrace", "Stack dump", "Segmentation", "MPI_ABORT"] {
            XCTAssertFalse(r.stderr.contains(trace) || r.stdout.contains(trace), "\(trace): \(r.stderr)", file: file, line: line)
        }
    }

    /// `arguments` alone and under `mpirun -n 2` (launched at once): one error line each time.
    func assertOneErrorAlone(andOnTwoRanks arguments: [String], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let runs = try Harness.runAll([Harness.Command(Harness.aetrain, arguments), Harness.mpirunCommand(2, arguments, file: file, line: line)],
                                      file: file, line: line)
        for r in runs { assertOneError(r, fragments, file: file, line: line) }
    }

    var out: String { dir.appendingPathComponent("out").path }

    // MARK: Sizes that overflow

    func testSyntheticHeightTimesWidthOverflows() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--data", "synthetic:100,4294967296,4294967296", "--out", out],
                                ["synthetic data 100,4294967296,4294967296", "overflows"])
    }

    func testSyntheticExampleCountOverflows() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--data", "synthetic:4611686018427387904,2,2", "--out", out],
                                ["synthetic data 4611686018427387904,2,2", "overflows"])
    }

    func testHiddenTimesPixelsOverflows() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--hidden", "4611686018427387904", "--out", out],
                                ["--hidden 4611686018427387904", "overflows"])
    }

    /// A zero dimension must not hide the product of the others: rows of (0, 2⁶², 4).
    func testNPYShapeWithAZeroDimensionStillChecked() throws {
        let npy = dir.appendingPathComponent("zero.npy")
        _ = try Harness.python("""
            h = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4), }"
            h += ' ' * ((64 - (10 + len(h) + 1) % 64) % 64) + '\\n'
            open('\(npy.path)', 'wb').write(b'\\x93NUMPY\\x01\\x00' + len(h).to_bytes(2, 'little') + h.encode())
            """)
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--data", npy.path, "--out", out], [npy.path, "too large"])
    }

    /// H·W of 4611686018427387908x4 wraps to 16 in 64 bits, the row length of the file: it must
    /// be refused before the output directory of an earlier run is touched.
    func testImageShapeOverflowLeavesAnEarlierRunUntouched() throws {
        let npy = dir.appendingPathComponent("rows.npy")
        _ = try Harness.python("import numpy as np; np.save('\(npy.path)', np.random.default_rng(0).normal(size=(200, 16)).astype('<f4'))")
        let run = dir.appendingPathComponent("run")
        let first = try Harness.aetrain(["train", "--data", npy.path, "--image-shape", "4x4", "--out", run.path,
                                         "--hidden", "8", "--batch-size", "10", "--iterations", "11", "--log-every", "5", "--quiet"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let files = ["config.json", "metrics.jsonl"].map { run.appendingPathComponent($0) }
        let before = try files.map { try Data(contentsOf: $0) }
        XCTAssertFalse(before[1].isEmpty)
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--data", npy.path, "--image-shape", "4611686018427387908x4", "--out", run.path],
                                ["--image-shape 4611686018427387908x4", "overflows"])
        XCTAssertEqual(try files.map { try Data(contentsOf: $0) }, before, "the earlier run's config.json and metrics.jsonl")
    }

    // MARK: Allocations beyond this rank's memory

    func testHiddenBeyondMemory() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--hidden", "1000000000", "--out", out],
                                ["needs", "for a sparse autoencoder with h = 1000000000", "this rank can use", "--max-memory"])
    }

    func testSyntheticDataBeyondMemory() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--data", "synthetic:200000000,37,28", "--out", out],
                                ["needs", "synthetic:200000000,37,28", "this rank can use", "--max-memory"])
    }

    func testCovarianceBeyondMemory() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["pca", "--data", "synthetic:10,300,300", "--out", out],
                                ["needs", "90000×90000 covariance", "this rank can use", "--max-memory"])
    }

    func testBenchDataBeyondMemory() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["bench", "--examples", "1000000000000"],
                                ["needs", "synthetic:1000000000000,37,28", "this rank can use", "--max-memory"])
    }

    func testSparseCodingBuffersBeyondMemory() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--model", "sparse-coding", "--hidden", "100000000", "--out", out],
                                ["needs", "sparse coding with h = 100000000", "this rank can use"])
    }

    /// Memory allowing, a buffer that one BLAS or MPI call covers (32-bit counts) must still
    /// fit in one: refused before anything is allocated.
    func testCountsBeyondOneBLASOrMPICall() throws {
        try assertOneErrorAlone(andOnTwoRanks: ["train", "--data", "synthetic:100,4,4", "--hidden", "100000000", "--max-memory", "1P", "--out", out],
                                ["--hidden 100000000 with d = 16 pixels", "beyond the 2147483647"])
        try assertOneErrorAlone(andOnTwoRanks: ["pca", "--data", "synthetic:2,220,220", "--max-memory", "1P", "--out", out],
                                ["48400×48400 covariance", "beyond the 2147483647"])
        assertOneError(try Harness.aetrain(["train", "--model", "sparse-coding", "--data", "synthetic:10,4,4", "--hidden", "50000",
                                            "--max-memory", "1P", "--out", out]),
                       ["--hidden 50000 with d = 16 pixels", "beyond the 2147483647"])
    }

    /// `--max-memory` sets the budget: a small one refuses what the node could hold, and says
    /// so; a malformed one is a usage error.
    func testMaxMemoryFlag() throws {
        assertOneError(try Harness.mpirun(2, ["train", "--max-memory", "1M", "--out", out]),
                       ["this rank can use 1.0 MiB (--max-memory)", "raise --max-memory"])
        let ok = try Harness.aetrain(["train", "--max-memory", "2G", "--out", out, "--iterations", "3", "--quiet"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let bad = try Harness.aetrain(["train", "--max-memory", "lots", "--out", out])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertEqual(bad.errorLines.count, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--max-memory"), bad.stderr)
    }

    // MARK: JPEGs

    /// An LFW tree of one person: a good 250×250 image and `patch` applied (in Python, to
    /// `data`, the bytes of another 250×250 JPEG saved from `mode`) as the second.
    func tree(second patch: String, mode: String = "RGB") throws -> (tree: URL, file: URL) {
        let tree = dir.appendingPathComponent("lfw")
        let person = tree.appendingPathComponent("Ann_Lee")
        try FileManager.default.createDirectory(at: person, withIntermediateDirectories: true)
        let second = person.appendingPathComponent("Ann_Lee_0002.jpg")
        _ = try Harness.python("""
            import io, numpy as np
            from PIL import Image
            rng = np.random.default_rng(0)
            y, x = np.mgrid[0:250, 0:250]
            def image(channels):
                return np.clip(np.stack([128 + 100 * np.sin(x / (9 + 4 * c)) * np.cos(y / (11 + 3 * c)) + rng.normal(0, 8, (250, 250))
                                         for c in range(channels)], -1), 0, 255).astype(np.uint8)
            Image.fromarray(image(3)).save('\(person.path)/Ann_Lee_0001.jpg', quality=90)
            buffer = io.BytesIO()
            Image.fromarray(image(\(mode == "CMYK" ? 4 : 3)), '\(mode)').save(buffer, 'JPEG', quality=90)
            data = buffer.getvalue()
            \(patch)
            open('\(second.path)', 'wb').write(data)
            """)
        return (tree, second)
    }

    /// A 60-odd KB JPEG whose header claims 65500×65500 pixels (12 GB of RGB): refused from
    /// its header, before any pixel is allocated.
    func testJPEGBombRefusedFromItsHeader() throws {
        let (tree, file) = try tree(second: """
            sof = data.index(b'\\xff\\xc0')
            data = data[:sof + 5] + (65500).to_bytes(2, 'big') * 2 + data[sof + 9:]
            """)
        let npy = dir.appendingPathComponent("faces.npy").path
        try assertOneErrorAlone(andOnTwoRanks: ["prepare-lfw", tree.path, "--out", npy],
                                [file.path, "65500×65500", "4096×4096"])
        assertOneError(try Harness.aetrain(["train", "--data", tree.path, "--out", out]), [file.path, "65500×65500"])
    }

    /// Half a JPEG: libjpeg would fill the rest with grey; Pillow (and so scikit-learn)
    /// refuses it, and so does aetrain.
    func testTruncatedJPEGRefused() throws {
        let (tree, file) = try tree(second: "data = data[:len(data) // 2]")
        let pillow = try Harness.python("""
            from PIL import Image
            try:
                Image.open('\(file.path)').load(); print('loaded')
            except OSError as e:
                print('refused:', e)
            """)
        XCTAssertTrue(pillow.stdout.hasPrefix("refused: image file is truncated"), pillow.stdout)
        try assertOneErrorAlone(andOnTwoRanks: ["prepare-lfw", tree.path, "--out", dir.appendingPathComponent("faces.npy").path],
                                [file.path, "image file is truncated"])
    }

    /// A CMYK JPEG (Adobe's inverted samples, as Pillow writes them) decodes as Pillow's
    /// `convert("RGB")` gives it, then goes through LFW's crop, resize and grey.
    func testCMYKJPEGConvertedAsPillowDoes() throws {
        let (tree, file) = try tree(second: "", mode: "CMYK")
        let npy = dir.appendingPathComponent("faces.npy")
        let r = try Harness.aetrain(["prepare-lfw", tree.path, "--out", npy.path, "--resize", "0.3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let check = try Harness.python("""
            import numpy as np
            from PIL import Image
            img = Image.open('\(file.path)')
            assert img.mode == 'CMYK', img.mode
            ref = (np.asarray(img.convert('RGB').crop((78, 70, 172, 195)).resize((28, 37)), dtype=np.float32) / 255.0).mean(axis=2)
            x = np.load('\(npy.path)')
            print(np.abs(x[1] - ref).mean(), np.abs(x[1] - ref).max())
            """)
        let errors = check.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
        XCTAssertEqual(errors.count, 2, check.stdout)
        XCTAssertLessThan(errors.first ?? 1, 1.0 / 255, "mean absolute difference")
        XCTAssertLessThan(errors.last ?? 1, 2.0 / 255, "largest difference")
    }
}
