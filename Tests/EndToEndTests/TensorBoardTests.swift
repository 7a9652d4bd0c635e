import AETrainCore
import Foundation
import XCTest

/// The TensorBoard event files, read back with the `tensorboard` package's own readers (its
/// record reader checks both CRCs): every scalar equals metrics.jsonl at the same step, the
/// filter images decode to filters.png's size, the feature-density histogram is there; a
/// resumed run adds a file and writes no step twice.
final class TensorBoardTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("tensorboard") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// What the checker found.
    struct Found: Decodable {
        var files: Int
        var scalars: Int
        var lossSteps: [Int]
        var imageSteps: [Int]
        var histogramSteps: [Int]
        var tags: [String]
    }

    /// Checks the event files in `events` against the run in `run` (metrics.jsonl,
    /// filters.png, config.json's h) with tensorboard's EventAccumulator and raw loader.
    /// `rawRepeats`: a (tag, step) may be in two files (TensorBoard drops the older).
    func check(events: URL, run: URL, rawRepeats: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> Found {
        let args = [events.path, run.path] + (rawRepeats ? ["raw-repeats"] : [])
        let r = try Harness.python("import sys; sys.argv = ['check', \(args.map(pythonString).joined(separator: ", "))]\n" + Self.checker,
                                   file: file, line: line)
        guard let json = r.stdout.split(separator: "\n").last else { throw UserError("the checker printed nothing: \(r.stderr)") }
        return try JSONDecoder().decode(Found.self, from: Data(json.utf8))
    }

    func pythonString(_ s: String) -> String { "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'" }

    func eventFiles(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
    }

    func testSparseAutoencoderScalarsImagesAndHistogram() throws {
        let out = dir.appendingPathComponent("sae")
        let r = try Harness.aetrain(["train", "--quiet", "--lambda", "1", "--hidden", "64", "--iterations", "60", "--log-every", "10",
                                     "--eval-fraction", "0.2", "--batch-size", "50", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = eventFiles(out)
        XCTAssertEqual(files.count, 1, "one event file: \(files)")
        // TensorBoard's naming: events.out.tfevents.<unix time>.<host name>.
        let host = (try? String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let time = Int(Date().timeIntervalSince1970)
        let parts = files.first?.split(separator: ".", maxSplits: 4).map(String.init) ?? []
        XCTAssertEqual(parts.count, 5, "\(files)")
        XCTAssertEqual(parts.last, host, "the host name in \(files)")
        XCTAssertLessThan(abs((Int(parts.count > 3 ? parts[3] : "") ?? 0) - time), 600, "the unix time in \(files)")

        let found = try check(events: out, run: out)
        let logged = [0, 10, 20, 30, 40, 50, 59]
        XCTAssertEqual(found.lossSteps, logged)
        XCTAssertEqual(found.imageSteps, logged, "the filter mosaic at every log line")
        XCTAssertEqual(found.histogramSteps, [59], "the feature density at the last iteration")
        for tag in ["losses/rec", "losses/spa", "losses/ent", "losses/reg", "losses/loss", "metrics/l0", "metrics/explained_variance",
                    "sparsity/dead_units", "sparsity/sparse_step_fraction", "performance/compute_ms_per_step",
                    "performance/communication_ms_per_step", "performance/optimizer_ms_per_step",
                    "eval/rec", "eval/l0", "eval/dead_units", "eval/explained_variance"] {
            XCTAssertTrue(found.tags.contains(tag), "\(tag) in \(found.tags)")
        }
        XCTAssertEqual(found.scalars, 16 * logged.count, "every measured term at every log line")
    }

    func testTensorBoardDirectoryAndResume() throws {
        // --tensorboard DIR, two ranks: one file (rank 0's) goes there, none into the run directory.
        let out = dir.appendingPathComponent("run"), events = dir.appendingPathComponent("tb/run")
        let model = ["train", "--quiet", "--lambda", "1", "--hidden", "32", "--log-every", "10"]
        let common = model + ["--iterations", "100"]
        let elsewhere = try Harness.mpirun(2, common + ["--out", out.path, "--tensorboard", events.path])
        XCTAssertEqual(elsewhere.status, 0, elsewhere.stderr)
        XCTAssertEqual(eventFiles(out), [])
        XCTAssertEqual(eventFiles(events).count, 1)
        XCTAssertEqual(try check(events: events, run: out).lossSteps, Array(stride(from: 0, to: 100, by: 10)) + [99])

        // Stopped after iteration 40, resumed: a second file, and every step once.
        let stopped = dir.appendingPathComponent("stopped")
        let stop = try Harness.aetrain(common + ["--out", stopped.path, "--debug-signal-rank", "0", "--debug-signal-at", "40"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertEqual(eventFiles(stopped).count, 1)
        let first = try check(events: stopped, run: stopped)
        XCTAssertEqual(first.lossSteps, [0, 10, 20, 30, 40])
        XCTAssertEqual(first.histogramSteps, [40], "the stopped session's last iteration")
        let resume = try Harness.aetrain(["train", "--quiet", "--resume", stopped.path])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        let files = eventFiles(stopped)
        XCTAssertEqual(files.count, 2, "a new event file per session: \(files)")
        let both = try check(events: stopped, run: stopped)  // fails on a (tag, step) written twice
        XCTAssertEqual(both.files, 2)
        XCTAssertEqual(both.lossSteps, Array(stride(from: 0, to: 100, by: 10)) + [99])
        XCTAssertEqual(both.imageSteps, both.lossSteps)
        XCTAssertEqual(both.histogramSteps, [40, 99])

        // A new run over it (--overwrite) starts with a single event file again.
        let again = try Harness.aetrain(model + ["--out", stopped.path, "--overwrite", "--iterations", "20"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(eventFiles(stopped).count, 1)
        XCTAssertEqual(try check(events: stopped, run: stopped).lossSteps, [0, 10, 19])
    }

    /// A session that crashed after its last checkpoint logged steps the resumed session logs
    /// again: the resumed file starts with SessionLog.START, and TensorBoard keeps the new values.
    func testResumeAfterLostCheckpointShowsEachStepOnce() throws {
        let out = dir.appendingPathComponent("crashed")
        let stop = try Harness.aetrain(["train", "--quiet", "--lambda", "1", "--hidden", "32", "--iterations", "60", "--log-every", "10",
                                        "--checkpoint-every", "20", "--out", out.path, "--debug-signal-rank", "0", "--debug-signal-at", "40"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        // As if the process had died before the checkpoint at 41: the run resumes at 40, which it logged.
        try FileManager.default.removeItem(at: CheckpointFolder(run: out).url.appendingPathComponent("step-000000041.ckpt"))
        let resume = try Harness.aetrain(["train", "--quiet", "--resume", out.path])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        XCTAssertTrue(try String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8).contains("step-000000040.ckpt"))
        let found = try check(events: out, run: out, rawRepeats: true)  // the values of the resumed session, as metrics.jsonl
        XCTAssertEqual(found.files, 2)
        XCTAssertEqual(found.lossSteps, [0, 10, 20, 30, 40, 50, 59])
        XCTAssertEqual(found.imageSteps, found.lossSteps)
        XCTAssertEqual(found.histogramSteps, [59], "the first session's histogram at 40 is dropped")
    }

    /// Data that are not centred and schedules: the fraction of the squared norm explained (train
    /// and held-out) and the current lr and λ, each equal to metrics.jsonl's.
    func testSquaredNormAndScheduleScalars() throws {
        let out = dir.appendingPathComponent("scheduled")
        let r = try Harness.aetrain(["train", "--quiet", "--lambda", "1", "--hidden", "32", "--iterations", "30", "--log-every", "10",
                                     "--normalize", "none", "--eval-fraction", "0.2", "--batch-size", "50", "--lr-warmup", "20",
                                     "--lr-decay", "0.5", "--lambda-warmup", "15", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let found = try check(events: out, run: out)
        for tag in ["metrics/explained_squared_norm", "eval/explained_squared_norm", "schedule/lr", "schedule/lambda"] {
            XCTAssertTrue(found.tags.contains(tag), "\(tag) in \(found.tags)")
        }
    }

    /// Models that show their filters only at the end: one image, at the last iteration.
    /// Their codes are linear projections: no feature-density histogram.
    func testOtherModels() throws {
        for (model, flags, steps) in [("tied-linear", ["--hidden", "8", "--iterations", "30", "--log-every", "10"], [0, 10, 20, 29]),
                                      ("pca", ["--hidden", "8"], [0])] {
            let out = dir.appendingPathComponent(model)
            let r = try Harness.aetrain(["train", "--quiet", "--model", model, "--out", out.path] + flags)
            XCTAssertEqual(r.status, 0, "\(model): \(r.stderr)")
            let found = try check(events: out, run: out)
            XCTAssertEqual(found.lossSteps, steps, model)
            XCTAssertEqual(found.imageSteps, [steps.last ?? -1], "\(model): the final filters")
            XCTAssertEqual(found.histogramSteps, [], "\(model): linear codes fire almost always; no feature density")
            XCTAssertFalse(found.tags.contains("losses/spa"), "\(model) measures no sparsity term: \(found.tags)")
        }
    }

    func testRecordFraming() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xe306_9283)
        let record = TFRecord.frame([1, 2, 3])
        XCTAssertEqual(record.count, 8 + 4 + 3 + 4)
        XCTAssertEqual(Array(record[0..<8]), [3, 0, 0, 0, 0, 0, 0, 0])
    }

    /// argv: the events directory, the run directory. Prints one JSON line; exits non-zero
    /// with a message on the first mismatch.
    static let checker = #"""
    import glob, io, json, os, sys
    try:
        from tensorboard.backend.event_processing import event_accumulator
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    except ImportError as e:
        sys.exit("cannot import the tensorboard package (%s): pip install tensorboard (deploy/test.sh installs it)" % e)
    import numpy as np
    from PIL import Image

    events, run, raw_repeats = sys.argv[1], sys.argv[2], len(sys.argv) > 3
    files = sorted(glob.glob(os.path.join(events, "events.out.tfevents.*")))
    if not files:
        sys.exit("no event file in %s" % events)

    # Raw events, file by file: no (tag, step) twice across the files; where sessions start.
    seen, starts = set(), []
    for f in files:
        for e in LegacyEventFileLoader(f).Load():
            if e.HasField("session_log") and e.session_log.status == e.session_log.START:
                starts.append(e.step)
            for v in e.summary.value:
                if (v.tag, e.step) in seen and not raw_repeats:
                    sys.exit("%s: step %d of %s written twice" % (f, e.step, v.tag))
                seen.add((v.tag, e.step))

    acc = event_accumulator.EventAccumulator(events, size_guidance={k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    tags = acc.Tags()

    # Every scalar against metrics.jsonl: the same step, the same value in float32. The time
    # split is per iteration of the line's window, which starts after the previous line or at
    # the session's start.
    lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if l.strip()]
    direct = {"rec": "losses/rec", "spa": "losses/spa", "ent": "losses/ent", "reg": "losses/reg", "loss": "losses/loss",
              "l0": "metrics/l0", "explained_variance": "metrics/explained_variance", "dead_units": "sparsity/dead_units",
              "sparse_step_fraction": "sparsity/sparse_step_fraction", "eval_rec": "eval/rec", "eval_l0": "eval/l0",
              "eval_dead_units": "eval/dead_units", "eval_explained_variance": "eval/explained_variance",
              "explained_squared_norm": "metrics/explained_squared_norm", "eval_explained_squared_norm": "eval/explained_squared_norm",
              "lr": "schedule/lr", "lambda": "schedule/lambda"}
    timing = {"compute_seconds": "performance/compute_ms_per_step",
              "communication_seconds": "performance/communication_ms_per_step",
              "optimizer_seconds": "performance/optimizer_ms_per_step"}
    expected = {}
    previous = -1
    for line in lines:
        it = line["iteration"]
        for key, tag in direct.items():
            if key in line:
                expected[(tag, it)] = np.float32(line[key])
        start = max([s for s in starts if s <= it], default=0)
        for key, tag in timing.items():
            if key in line:
                expected[(tag, it)] = np.float32(line[key] * 1000 / (it - max(previous, start - 1)))
        previous = it
    written = {}
    for tag in tags["scalars"]:
        for s in acc.Scalars(tag):
            written[(tag, s.step)] = np.float32(s.value)
    if set(written) != set(expected):
        sys.exit("scalars written %s, metrics.jsonl has %s" % (sorted(set(written) - set(expected))[:5], sorted(set(expected) - set(written))[:5]))
    for key, value in expected.items():
        if written[key] != value:
            sys.exit("%s at step %d: %r in the events, %r in metrics.jsonl" % (key[0], key[1], written[key], value))

    # Images decode to the size of filters.png.
    image_steps = []
    if "filters" in tags["images"]:
        size = Image.open(os.path.join(run, "filters.png")).size
        for im in acc.Images("filters"):
            decoded = Image.open(io.BytesIO(im.encoded_image_string))
            decoded.load()
            if decoded.size != size or (im.width, im.height) != size:
                sys.exit("image at step %d: %s (%dx%d), filters.png %s" % (im.step, decoded.size, im.width, im.height, size))
            image_steps.append(im.step)

    # The feature density: one value per unit, log10 of a frequency (1e-10 added).
    h = json.load(open(os.path.join(run, "config.json")))["settings"]["hidden"]
    histogram_steps = []
    for tag in tags["histograms"]:
        for hv in acc.Histograms(tag):
            v = hv.histogram_value
            if v.num != h or v.min < -10.0001 or v.max > 1e-9 or abs(sum(v.bucket) - h) > 0:
                sys.exit("%s at step %d: num %s, min %s, max %s, buckets %s (h = %d)" % (tag, hv.step, v.num, v.min, v.max, sum(v.bucket), h))
            histogram_steps.append(hv.step)

    print(json.dumps({"files": len(files), "scalars": len(written),
                      "lossSteps": sorted(s for (t, s) in written if t == "losses/loss"),
                      "imageSteps": image_steps, "histogramSteps": histogram_steps,
                      "tags": sorted(tags["scalars"]) + sorted(tags["images"]) + sorted(tags["histograms"])}))
    """#
}
