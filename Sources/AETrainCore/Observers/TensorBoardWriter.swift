import Foundation

/// TensorBoard's event file, `events.out.tfevents.<unix time>.<host>`, in the run directory or
/// `--tensorboard DIR`; a new file per session (a resumed run adds one, starting at its first
/// iteration, so no step is written twice).
///
///  - at each log line, one summary: a scalar per term the model measured, tagged as SAE tools
///    do (`losses/…`, `metrics/…`, `sparsity/…`, `performance/…`), and the filter mosaic
///    (`filters`, as filters.png) when the model shows its filters during training;
///  - at the end, at the session's last iteration: the feature density
///    (`sparsity/log10_feature_density`: log10 of each unit's firing frequency over the
///    training examples, 1e-10 added, so a unit that never fires is at −10; see
///    `FeatureDensity`), and the final filter mosaic when no log line showed it.
///
/// Each log line is written when it happens (a crash loses nothing logged); the file is
/// fsynced at the end.
public final class TensorBoardWriter: RunObserver {
    /// `--tensorboard DIR`; nil: the run directory.
    private let override: String?
    private var file: FileHandle?
    /// The event file of this session.
    public private(set) var url: URL?
    /// The data's image shape; nil: no filter images.
    private var shape: ImageShape?
    private var currentFilters: () -> [[Float]] = { [] }
    /// The last iteration done in this session, and the step of the last filter image.
    private var lastIteration: Int?, imageStep: Int?

    public static let prefix = "events.out.tfevents."

    public init(directory: String? = nil) { override = directory }
    deinit { try? file?.close() }

    public func started(_ run: RunInfo) throws {
        shape = run.dataset.imageShape
        currentFilters = run.currentFilters
        let directory = override.map { URL(fileURLWithPath: $0) } ?? run.directory
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw UserError("⟨tensorboard⟩ \(directory.relativePath): cannot create the directory: \(error.localizedDescription)")
        }
        // Event files of an earlier run in the run directory are the directory claim's to refuse
        // or (with ⟨overwrite⟩) remove: `RunDirectoryClaim` counts them as the run's files.
        let wallTime = Date().timeIntervalSince1970
        let (handle, url) = try Self.createFile(in: directory, time: Int(wallTime))
        file = handle
        self.url = url
        // START at the first iteration: TensorBoard drops what an earlier session wrote from
        // there on (log lines after the checkpoint this session resumes from).
        try write([TensorBoardEvent.fileVersion(wallTime: wallTime),
                   TensorBoardEvent.sessionStart(wallTime: wallTime, step: run.firstIteration)])
    }

    public func iterated(_ iteration: Int, loss: Double) { lastIteration = iteration }

    public func logged(_ record: LogRecord, steps: Int) throws {
        var values = Self.scalars(record, steps: steps)
        if let image = try filterImage(currentFilters()) {
            values.append(image)
            imageStep = record.iteration
        }
        try write([TensorBoardEvent.summary(wallTime: Date().timeIntervalSince1970, step: record.iteration, values: values)])
    }

    public func finished(_ result: RunResult) throws {
        defer { try? file?.close(); file = nil }
        guard let last = lastIteration else { return }  // nothing done in this session
        var values: [SummaryValue] = []
        if imageStep != last, let filters = result.outputs?.filters, let image = try filterImage(filters) { values.append(image) }
        if let density = result.featureDensity {
            values.append(.histogram(tag: "sparsity/log10_feature_density", Histogram(density.log10Frequencies)))
        }
        if !values.isEmpty {
            try write([TensorBoardEvent.summary(wallTime: Date().timeIntervalSince1970, step: last, values: values)])
        }
        do { try file?.synchronize() } catch { throw failure(error) }
    }

    // MARK: What is written

    /// A scalar per term `record` holds; the time split per step of the window (`steps` iterations).
    static func scalars(_ record: LogRecord, steps: Int) -> [SummaryValue] {
        let perStep = { (seconds: Double?) in seconds.map { $0 * 1000 / Double(max(steps, 1)) } }
        let terms: [(String, Double?)] = [
            ("losses/rec", record.rec), ("losses/spa", record.spa), ("losses/ent", record.ent), ("losses/reg", record.reg),
            ("losses/auxk", record.auxK), ("losses/loss", record.loss),
            ("metrics/l0", record.l0), ("metrics/explained_variance", record.explainedVariance),
            ("metrics/explained_squared_norm", record.explainedSquaredNorm),
            ("schedule/lr", record.learningRate), ("schedule/lambda", record.lambda),
            ("sparsity/dead_units", record.deadUnits.map(Double.init)),
            ("sparsity/never_fired_units", record.neverFiredUnits.map(Double.init)),
            ("sparsity/sparse_step_fraction", record.sparseStepFraction),
            ("performance/compute_ms_per_step", perStep(record.computeSeconds)),
            ("performance/communication_ms_per_step", perStep(record.communicationSeconds)),
            ("performance/optimizer_ms_per_step", perStep(record.optimizerSeconds)),
            ("eval/rec", record.evalRec), ("eval/l0", record.evalL0), ("eval/dead_units", record.evalDeadUnits.map(Double.init)),
            ("eval/explained_variance", record.evalExplainedVariance),
            ("eval/explained_squared_norm", record.evalExplainedSquaredNorm),
        ]
        return terms.compactMap { tag, value in value.map { .scalar(tag: tag, value: Float($0)) } }
    }

    /// The mosaic of filters.png as an image value; nil without an image shape or filters of its size.
    private func filterImage(_ filters: [[Float]]) throws -> SummaryValue? {
        guard let shape, let first = filters.first, first.count == shape.pixels else { return nil }
        let image = ImageExport.filterMosaic(filters, shape: shape)
        return .image(tag: "filters", width: image.width, height: image.height, colorspace: image.channels,
                      png: try Self.pngBytes(image))
    }

    /// `image` encoded as PNG (libpng writes files only: through a temporary file).
    static func pngBytes(_ image: Image8) throws -> [UInt8] {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("aetrain-tensorboard-\(getpid()).png")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try PNGFile.write(image, to: tmp)
        do { return Array(try Data(contentsOf: tmp)) } catch {
            throw UserError("cannot read back \(tmp.path): \(error.localizedDescription)")
        }
    }

    // MARK: The file

    private func write(_ events: [[UInt8]]) throws {
        guard let file else { return }
        do { try file.write(contentsOf: Data(events.flatMap(TFRecord.frame))) } catch { throw failure(error) }
    }

    private func failure(_ error: Error) -> UserError {
        UserError("cannot append to \(url?.path ?? "the TensorBoard event file"): \(error.localizedDescription)")
    }

    /// A new file named as TensorBoard's writers do; a suffix if a session started in the same
    /// second (names sort in the order the sessions ran).
    static func createFile(in directory: URL, time: Int) throws -> (FileHandle, URL) {
        let base = prefix + String(format: "%010d", time) + "." + hostname()
        for suffix in ["", ".\(getpid())"] + (1...9).map({ ".\(getpid()).\($0)" }) {
            let url = directory.appendingPathComponent(base + suffix)
            let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 { return (FileHandle(fileDescriptor: fd, closeOnDealloc: true), url) }
            guard errno == EEXIST else {
                throw UserError("cannot create \(url.path): \(String(cString: strerror(errno)))")
            }
        }
        throw UserError("cannot create an event file in \(directory.path): \(base) and its variants exist")
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer)
        return name.isEmpty ? "localhost" : name
    }
}
