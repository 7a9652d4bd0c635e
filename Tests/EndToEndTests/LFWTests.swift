import AETrainCore
import Foundation
import XCTest

/// `prepare-lfw` and `train --data DIR` on a small LFW-layout tree of JPEGs made here.
final class LFWTests: XCTestCase {
    var dir: URL!
    var tree: URL { dir.appendingPathComponent("lfw") }

    override func setUpWithError() throws {
        dir = try Harness.temporaryDirectory("lfw")
        // Three people with 3, 1 and 2 images: 250×250 RGB JPEGs of smooth patterns and noise.
        _ = try Harness.python("""
            import numpy as np, os
            from PIL import Image
            rng = np.random.default_rng(0)
            for person, n in {"Alice_Smith": 3, "Bob_Jones": 1, "Carla_Diaz": 2}.items():
                os.makedirs(f"\(tree.path)/{person}", exist_ok=True)
                for k in range(1, n + 1):
                    y, x = np.mgrid[0:250, 0:250]
                    img = np.stack([128 + 100 * np.sin(x / (10 + 5 * c) + rng.uniform(0, 6)) * np.cos(y / (13 + 3 * c))
                                    + rng.normal(0, 10, (250, 250)) for c in range(3)], -1)
                    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"\(tree.path)/{person}/{person}_{k:04d}.jpg", quality=90)
            """)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// The pixels of scikit-learn's pipeline, computed independently with Pillow and numpy:
    /// mean absolute difference below 1/255 (in practice they are equal).
    func checkAgainstPillow(npy: URL, resize: Double, files expected: [String]) throws {
        let h = Int(resize * 125), w = Int(resize * 94)
        let r = try Harness.python("""
            import numpy as np, csv
            from PIL import Image
            x = np.load('\(npy.path)')
            rows = list(csv.DictReader(open('\(npy.deletingPathExtension().path).csv')))
            ref = np.array([(np.asarray(Image.open('\(tree.path)/' + r['file']).crop((78, 70, 172, 195)).resize((\(w), \(h))),
                                        dtype=np.float32) / 255.0).mean(axis=2) for r in rows])
            assert x.dtype == np.float32 and x.shape == ref.shape, (x.dtype, x.shape, ref.shape)
            print(np.abs(x - ref).mean(), np.abs(x - ref).max())
            print('|'.join(r['row'] + ',' + r['file'] + ',' + r['person'] for r in rows))
            """)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let errors = lines.first?.split(separator: " ").compactMap { Double($0) } ?? []
        XCTAssertEqual(errors.count, 2, r.stdout)
        XCTAssertLessThan(errors.first ?? 1, 1.0 / 255, "mean absolute difference")
        XCTAssertLessThan(errors.last ?? 1, 2.0 / 255, "largest difference")
        XCTAssertEqual(lines.dropFirst().first?.split(separator: "|").map(String.init), expected)
    }

    func testPrepareMatchesPillowAndListsFiles() throws {
        let npy = dir.appendingPathComponent("faces.npy")
        let r = try Harness.aetrain(["prepare-lfw", tree.path, "--out", npy.path, "--resize", "0.3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        try checkAgainstPillow(npy: npy, resize: 0.3, files: [
            "0,Alice_Smith/Alice_Smith_0001.jpg,Alice Smith", "1,Alice_Smith/Alice_Smith_0002.jpg,Alice Smith",
            "2,Alice_Smith/Alice_Smith_0003.jpg,Alice Smith", "3,Bob_Jones/Bob_Jones_0001.jpg,Bob Jones",
            "4,Carla_Diaz/Carla_Diaz_0001.jpg,Carla Diaz", "5,Carla_Diaz/Carla_Diaz_0002.jpg,Carla Diaz",
        ])
    }

    func testPrepareInParallelWithMinFaces() throws {
        let npy = dir.appendingPathComponent("faces2.npy")
        let r = try Harness.mpirun(2, ["prepare-lfw", tree.path, "--out", npy.path, "--min-faces-per-person", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.components(separatedBy: "wrote ").count - 1, 1, "rank 0 alone writes")
        try checkAgainstPillow(npy: npy, resize: 0.5, files: [
            "0,Alice_Smith/Alice_Smith_0001.jpg,Alice Smith", "1,Alice_Smith/Alice_Smith_0002.jpg,Alice Smith",
            "2,Alice_Smith/Alice_Smith_0003.jpg,Alice Smith", "3,Carla_Diaz/Carla_Diaz_0001.jpg,Carla Diaz",
            "4,Carla_Diaz/Carla_Diaz_0002.jpg,Carla Diaz",
        ])
    }

    /// Training on the tree directly sees the same examples as training on the prepared file:
    /// the same fingerprint, every logged line equal and the same weights, byte for byte.
    func testTrainOnTheTreeEqualsTrainOnThePreparedFile() throws {
        let npy = dir.appendingPathComponent("faces.npy")
        XCTAssertEqual(try Harness.aetrain(["prepare-lfw", tree.path, "--out", npy.path, "--resize", "0.3"]).status, 0)
        var configs: [[String: Any]] = []
        var metrics: [[[String: Any]]] = []
        var runs: [URL] = []
        for (name, data) in [("from-tree", tree.path), ("from-npy", npy.path)] {
            let out = dir.appendingPathComponent(name)
            runs.append(out)
            let r = try Harness.mpirun(2, ["train", "--data", data, "--lfw-resize", "0.3", "--out", out.path,
                                           "--batch-size", "4", "--hidden", "10", "--iterations", "20", "--log-every", "5"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
            configs.append(config?["dataset"] as? [String: Any] ?? [:])
            metrics.append(try Harness.metrics(out))
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("dataset.png").path))
        }
        XCTAssertEqual(configs[0]["fingerprint"] as? String, configs[1]["fingerprint"] as? String)
        XCTAssertEqual(configs[0]["examples"] as? Int, 6)
        XCTAssertEqual(metrics[0].map { $0["iteration"] as? Int }, [0, 5, 10, 15, 19])
        XCTAssertEqual(metrics[0].count, metrics[1].count, "the same number of log lines")
        for (a, b) in zip(metrics[0], metrics[1]) {
            for key in ["iteration", "rec", "spa", "ent", "reg", "loss"] {
                XCTAssertEqual(a[key] as? Double, b[key] as? Double, "\(key) at \(a["iteration"] ?? "?")")
            }
        }
        for name in ["V.npy", "W.npy", "b.npy", "a.npy", "activations.npy"] {
            XCTAssertEqual(try Data(contentsOf: runs[0].appendingPathComponent(name)), try Data(contentsOf: runs[1].appendingPathComponent(name)),
                           "\(name): the run on the tree differs from the run on the prepared file")
        }
    }
}
