import Foundation
import XCTest

/// Any matrix as data: N×D `.npy` without an image shape, `.safetensors` tensors (F32, F16,
/// BF16) and float16 `.npy`, written by numpy and the `safetensors` package. The loaded data
/// must be exactly what numpy holds (weights byte-identical to a run on the float32 `.npy` of
/// the same values), runs without an image shape write no PNGs but the feature density, which
/// numpy recomputes from the written weights.
final class VectorDataTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("vectors") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Runs `script` with numpy, `save_file` (safetensors.numpy), `d` (the test directory) and
    /// `bf16(x)`: the bytes of a hand-written BF16 safetensors file of float32 `x` (truncated).
    func python(_ script: String) throws -> String {
        try Harness.python("""
            import numpy as np, json, struct
            from safetensors.numpy import save_file
            d = '\(dir.path)'
            def bf16_file(path, name, x):
                bits = (np.ascontiguousarray(x, dtype='<f4').view('<u4') >> 16).astype('<u2')
                header = json.dumps({name: {'dtype': 'BF16', 'shape': list(x.shape), 'data_offsets': [0, bits.nbytes]}}).encode()
                header += b' ' * ((8 - len(header) % 8) % 8)
                open(path, 'wb').write(struct.pack('<Q', len(header)) + header + bits.tobytes())
            def bf16_values(x):
                return (np.ascontiguousarray(x, dtype='<f4').view('<u4') & np.uint32(0xFFFF0000)).view('<f4')
            """ + "\n" + script).stdout
    }

    /// `train` (ranks > 1: under mpirun) on `data`, 30 iterations, seed 3; the run directory.
    @discardableResult
    func train(_ data: String, out: String, ranks: Int = 1, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let args = ["train", "--quiet", "--data", data, "--out", path(out), "--iterations", "30", "--hidden", "16",
                    "--batch-size", "20", "--lambda", "0.5", "--seed", "3"] + extra
        let r = ranks > 1 ? try Harness.mpirun(ranks, args, file: file, line: line) : try Harness.aetrain(args, file: file, line: line)
        XCTAssertEqual(r.status, 0, "\(data): \(r.stderr)", file: file, line: line)
        return dir.appendingPathComponent(out)
    }

    func bytes(_ run: URL, _ name: String) throws -> Data { try Data(contentsOf: run.appendingPathComponent(name)) }

    func config(_ run: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: bytes(run, "config.json")) as? [String: Any] ?? [:]
    }

    func assertSameWeights(_ a: URL, _ b: URL, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for name in ["V.npy", "W.npy", "b.npy", "a.npy", "mean.npy"] {
            XCTAssertEqual(try bytes(a, name), try bytes(b, name), "\(what): \(name) differs", file: file, line: line)
        }
        let (x, y) = (try config(a)["dataset"] as? [String: Any], try config(b)["dataset"] as? [String: Any])
        XCTAssertEqual(x?["fingerprint"] as? String, y?["fingerprint"] as? String, what, file: file, line: line)
        XCTAssertEqual(x?["std"] as? Double, y?["std"] as? Double, what, file: file, line: line)
    }

    /// F32 safetensors (the only tensor, or one named among several) read on 2 ranks give the
    /// weights of the same values as `.npy`, byte for byte.
    func testSafetensorsF32EqualsNpy() throws {
        _ = try python("""
            x = np.random.default_rng(1).normal(size=(240, 24)).astype('<f4') * 3 + 1
            np.save(d + '/x.npy', x)
            save_file({'acts': x}, d + '/one.safetensors')
            save_file({'first': x[:5].copy(), 'acts': x, 'zz': np.zeros((3,), dtype='<f4')}, d + '/many.safetensors')
            """)
        let reference = try train(path("x.npy"), out: "npy", ranks: 2)
        try assertSameWeights(reference, try train(path("one.safetensors"), out: "one", ranks: 2), "the only tensor")
        let named = try train(path("many.safetensors") + ":acts", out: "named", ranks: 2)
        try assertSameWeights(reference, named, "a tensor named among three")
        let dataset = try config(named)["dataset"] as? [String: Any]
        XCTAssertEqual(dataset?["dimensions"] as? Int, 24)
        XCTAssertNil(dataset?["imageShape"], "no image shape for N×D data")
        XCTAssertEqual(dataset?["dtype"] as? String, "F32")
        XCTAssertEqual(dataset?["source"] as? String, path("many.safetensors") + ":acts")
    }

    /// F16 and BF16 safetensors and float16 `.npy` load as the float32 values numpy converts
    /// them to: the weights equal those of a run on the converted float32 `.npy`.
    func testHalfPrecisionLoadsAsNumpyConvertsIt() throws {
        _ = try python("""
            rng = np.random.default_rng(2)
            x = rng.normal(size=(150, 20)).astype('<f4') * 2
            x[0, :4] = [6e-8, -0.0, 1e-5, 65000]     # binary16 subnormal, −0, subnormal, near its largest
            h = x.astype('<f2')
            save_file({'acts': h}, d + '/f16.safetensors')
            np.save(d + '/f16.npy', h)
            np.save(d + '/f16-as-f32.npy', h.astype('<f4'))
            x[1, :2] = [1e-39, -3e-40]                 # float32 (and bfloat16) subnormals
            bf16_file(d + '/bf16.safetensors', 'acts', x)
            np.save(d + '/bf16-as-f32.npy', bf16_values(x))
            """)
        let f16 = try train(path("f16-as-f32.npy"), out: "f16-ref")
        try assertSameWeights(f16, try train(path("f16.safetensors"), out: "f16-st"), "F16 safetensors")
        try assertSameWeights(f16, try train(path("f16.npy"), out: "f16-npy"), "float16 .npy")
        let bf16 = try train(path("bf16-as-f32.npy"), out: "bf16-ref", ranks: 2)
        try assertSameWeights(bf16, try train(path("bf16.safetensors"), out: "bf16-st", ranks: 2), "BF16 safetensors on 2 ranks")
        XCTAssertEqual((try config(f16)["dataset"] as? [String: Any])?["dtype"] as? String, "<f4")
        XCTAssertEqual((try config(dir.appendingPathComponent("f16-npy"))["dataset"] as? [String: Any])?["dtype"] as? String, "<f2")
    }

    /// N×D data without an image shape: no PNGs, feature_density.svg (valid XML) and .npy,
    /// whose frequencies numpy recomputes from V, b, mean.npy and std over the training rows;
    /// TensorBoard's reader finds the histogram; the report shows the density. With
    /// --image-shape the same data writes the images too.
    func testFeatureDensityWithoutImages() throws {
        _ = try python("""
            x = np.random.default_rng(4).normal(size=(300, 24)).astype('<f4')
            x[:, :3] *= 5
            np.save(d + '/x.npy', x)
            """)
        let run = try train(path("x.npy"), out: "vectors", ranks: 2, ["--eval-fraction", "0.2", "--lambda", "2"])
        let names = try FileManager.default.contentsOfDirectory(atPath: run.path)
        XCTAssertEqual(names.filter { $0.hasSuffix(".png") }, [], "no images without an image shape")
        XCTAssertTrue(names.contains("feature_density.svg") && names.contains("feature_density.npy"), "\(names)")
        let check = try python("""
            import xml.etree.ElementTree as ET, glob
            from tensorboard.backend.event_processing import event_accumulator
            r = d + '/vectors'
            root = ET.parse(r + '/feature_density.svg').getroot()
            assert root.tag.endswith('svg'), root.tag
            assert len(root.findall('.//{http://www.w3.org/2000/svg}polyline')) == 1
            cfg = json.load(open(r + '/config.json'))
            x = np.load(d + '/x.npy').astype(np.float64)
            xs = (x - np.load(r + '/mean.npy')) / cfg['dataset']['std']
            training = np.setdiff1d(np.arange(len(x)), cfg['heldOutRows'])
            assert len(training) == 240, len(training)
            p = xs[training] @ np.load(r + '/V.npy') + np.load(r + '/b.npy')
            expected = (p > 0).mean(axis=0)
            got = np.load(r + '/feature_density.npy')
            # A pre-activation within float32 rounding of 0 may fire in one and not the other.
            near = (np.abs(p) < 1e-4).sum(axis=0) / len(training)
            assert np.all(np.abs(got - expected) <= near + 1e-6), (got, expected)
            # A density is a count of the 240 training rows (held-out rows not counted), in [0, 1].
            assert got.shape == (16,), got.shape
            assert np.all((0 <= got) & (got <= 1)), got
            assert np.abs(got * 240 - np.round(got * 240)).max() < 1e-3, got * 240
            acc = event_accumulator.EventAccumulator(r, size_guidance={'histograms': 0}); acc.Reload()
            h = acc.Histograms('sparsity/log10_feature_density')[-1].histogram_value
            assert h.num == 16, h.num
            assert abs(h.min - np.log10(got.min() + 1e-10)) < 1e-5 and abs(h.max - np.log10(got.max() + 1e-10)) < 1e-5
            assert acc.Tags()['images'] == [], acc.Tags()['images']
            print('ok', got.min(), got.max())
            """)
        XCTAssertTrue(check.hasPrefix("ok"), check)
        let report = try Harness.aetrain(["report", run.path, "--out", path("report.html")])
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOfFile: path("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("id=\"density\"") && html.contains("Feature density"), "density section")
        XCTAssertFalse(html.contains("data:image/png"), "no mosaics without an image shape")

        let images = try train(path("x.npy"), out: "images", ["--image-shape", "4x6"])
        let written = try FileManager.default.contentsOfDirectory(atPath: images.path)
        for name in ["dataset.png", "filters.png", "feature_density.svg"] { XCTAssertTrue(written.contains(name), "\(name) in \(written)") }
    }

    /// A 3-D safetensors tensor is batch × sequence × D more often than images: refused without
    /// --image-shape (with how to reshape), read as images with it. A 3-D .npy is images.
    func testThreeDimensionalTensors() throws {
        _ = try python("""
            x = np.random.default_rng(5).normal(size=(60, 4, 6)).astype('<f4')
            save_file({'acts': x}, d + '/t.safetensors')
            np.save(d + '/t.npy', x)
            """)
        let refused = try Harness.aetrain(["train", "--data", path("t.safetensors"), "--out", path("no")])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.errorLines.count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("3-D (60×4×6)") && refused.stderr.contains("reshape(-1, 6)") && refused.stderr.contains("--image-shape 4x6"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("no")))
        let asImages = try train(path("t.safetensors"), out: "st", ["--image-shape", "4x6"])
        try assertSameWeights(asImages, try train(path("t.npy"), out: "npy"), "3-D safetensors with --image-shape vs 3-D .npy")
        XCTAssertTrue(FileManager.default.fileExists(atPath: asImages.appendingPathComponent("filters.png").path))
    }

    /// Encode reads safetensors too, and its codes equal those of the same values as .npy.
    func testEncodeReadsSafetensors() throws {
        _ = try python("""
            x = np.random.default_rng(6).normal(size=(80, 12)).astype('<f4')
            np.save(d + '/x.npy', x)
            save_file({'acts': x.astype('<f2')}, d + '/h.safetensors')
            np.save(d + '/h.npy', x.astype('<f2').astype('<f4'))
            """)
        let run = try train(path("x.npy"), out: "run")
        for (data, out) in [(path("h.safetensors"), "a.npy"), (path("h.npy"), "b.npy")] {
            let r = try Harness.aetrain(["encode", run.path, "--data", data, "--out", path(out)])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("a.npy")), try Data(contentsOf: dir.appendingPathComponent("b.npy")))
    }
}
