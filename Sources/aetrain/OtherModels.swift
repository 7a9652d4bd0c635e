import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

/// The sheet's three models.
enum ModelKind: String, ExpressibleByArgument, CaseIterable {
    case sparseAutoencoder = "sparse-autoencoder", sparseCoding = "sparse-coding", tiedLinear = "tied-linear"
}

/// Output shared by the models other than the sparse autoencoder: config.json, the filter
/// mosaic, the first 25 examples' codes, and a metrics line per logged iteration.
struct ModelOutputs {
    let directory: RunDirectory?
    let shard: DatasetShard

    static func open(_ path: String, settings: TrainSettings, model: String, shard: DatasetShard, comm: Communicator,
                     threads: Int, data: String?) throws -> ModelOutputs {
        let dir = try comm.collectively { () throws -> RunDirectory? in
            guard comm.isRoot else { return nil }
            let dir = try RunDirectory(path: path)
            var config = RunConfig(settings: settings, dataset: shard.info, ranks: comm.size, blasThreadsPerRank: threads,
                                   started: ISO8601DateFormatter().string(from: Date()), commandLine: CommandLine.arguments, data: data)
            config.model = model
            try dir.writeConfig(config)
            try dir.startMetrics()
            try PNGFile.write(Mosaic.grid(shard.preview, shape: shard.info.imageShape), to: dir.url.appendingPathComponent("dataset.png"))
            return dir
        }
        return ModelOutputs(directory: dir, shard: shard)
    }

    func log(_ record: LogRecord, comm: Communicator) throws {
        try comm.collectively { try directory?.appendMetrics(record) }
    }

    /// Atoms or directions as images: `vectors` (count, d).
    func finish(vectors: [[Float]], codes: [Float]?, h: Int, extra: [(String, [Float], [Int])], comm: Communicator) throws {
        try comm.collectively {
            guard let directory else { return }
            try PNGFile.write(Mosaic.grid(vectors, shape: shard.info.imageShape), to: directory.url.appendingPathComponent("filters.png"))
            if let codes {
                try codes.withUnsafeBufferPointer {
                    try NPYWriter.write($0, shape: [codes.count / max(1, h), h], to: directory.url.appendingPathComponent("activations.npy"))
                }
            }
            for (name, values, shape) in extra {
                try values.withUnsafeBufferPointer { try NPYWriter.write($0, shape: shape, to: directory.url.appendingPathComponent(name)) }
            }
        }
    }
}

func record(_ iteration: Int, rec: Double, spa: Double = 0, reg: Double = 0, loss: Double, l0: Double = 0, seconds: Double) -> LogRecord {
    LogRecord(iteration: iteration, rec: rec, spa: spa, ent: 0, reg: reg, loss: loss, seconds: seconds, l0: l0, deadUnits: 0,
              explainedVariance: 0, computeSeconds: 0, communicationSeconds: 0, optimizerSeconds: 0)
}

func pad(_ columns: [String]) -> String {
    ([columns[0].leftPadded(to: 7, with: " ")] + columns.dropFirst().map { $0.leftPadded(to: 8, with: " ") }).joined(separator: " ")
}

extension Train {
    /// Sparse coding (Exercise 1): alternations of the source and dictionary steps.
    func runSparseCoding(shard: DatasetShard, settings: TrainSettings, outPath: String, comm: MPICommunicator, threads: Int) throws {
        let sc = try comm.collectively {
            try SparseCoding(shard: shard, hidden: settings.hidden, lambda: settings.objective.lambda, eta: settings.objective.eta,
                             seed: settings.seed, comm: comm)
        }
        let outputs = try ModelOutputs.open(outPath, settings: settings, model: "sparse-coding", shard: shard, comm: comm, threads: threads, data: data)
        let console = Console(quiet: quiet || !comm.isRoot, total: settings.iterations)
        console.line("aetrain: sparse coding, \(shard.info.examples) examples of \(shard.info.imageShape), h = \(settings.hidden), "
                     + "λ = \(settings.objective.lambda), η = \(settings.objective.eta), sources by \(sourceUpdate.rawValue), \(comm.size) rank(s)")
        console.line(pad(["nbit", "rec", "spa", "reg", "J", "L0"]))
        let start = Date()
        for outer in 0..<settings.iterations {
            switch sourceUpdate {
            case .fista: try sc.updateSourcesFISTA(steps: fistaSteps)
            case .relaxed: try sc.updateSourcesRelaxed()
            }
            try sc.updateDictionary()
            let j = try sc.objective()
            var nonzero = [Double(sc.S.filter { $0 != 0 }.count)]
            try comm.allreduceSum(&nonzero)
            let l0 = nonzero[0] / Double(shard.info.examples)
            if outer % settings.logEvery == 0 || outer == settings.iterations - 1 {
                console.line(pad([String(outer), String(format: "%.2f", j.rec), String(format: "%.2f", j.spa),
                                  String(format: "%.2f", j.reg), String(format: "%.2f", j.J), String(format: "%.1f", l0)]))
                try outputs.log(record(outer, rec: j.rec, spa: j.spa, reg: j.reg, loss: j.J, l0: l0, seconds: Date().timeIntervalSince(start)), comm: comm)
            }
        }
        let (d, h) = (sc.d, sc.h)
        let atoms = (0..<min(64, h)).map { j in (0..<d).map { Float(sc.W[$0 * h + j]) } }
        let first = Array(sc.S.prefix(min(sc.n, max(0, 25 - shard.rows.lowerBound)) * h)).map(Float.init)
        let local = shard.rows.lowerBound < 25 ? Array(first.prefix(shard.rows.clamped(to: 0..<25).count * h)) : []
        let codes = try DatasetShard.gatherFirstRows(min(25, shard.info.examples), width: h, local: local, examples: shard.info.examples, comm: comm)
        try outputs.finish(vectors: atoms, codes: comm.isRoot ? codes : nil, h: h,
                           extra: [("dictionary.npy", sc.W.map(Float.init), [d, h])], comm: comm)
        console.line("wrote \(outPath)/: dictionary.npy (d, h), activations.npy (the first 25 codes), filters.png (atoms), config.json, metrics.jsonl")
    }

    /// Tied linear autoencoder (Exercise 2), with the cosine of each learned direction to the principal subspace.
    func runTiedLinear(shard: DatasetShard, settings: TrainSettings, outPath: String, comm: MPICommunicator, threads: Int) throws {
        let trainer = try comm.collectively { try TiedLinearTrainer(shard: shard, settings: settings, comm: comm) }
        let outputs = try ModelOutputs.open(outPath, settings: settings, model: "tied-linear", shard: shard, comm: comm, threads: threads, data: data)
        let console = Console(quiet: quiet || !comm.isRoot, total: settings.iterations)
        console.line("aetrain: tied linear autoencoder, \(shard.info.examples) examples of \(shard.info.imageShape), k = \(settings.hidden), "
                     + "lr = \(settings.adam.learningRate), \(comm.size) rank(s)")
        console.line(pad(["nbit", "rec"]))
        let start = Date()
        for i in 0..<settings.iterations {
            let rec = try trainer.step()
            guard rec.isFinite else { throw UserError("the loss became non-finite at iteration \(i) (rec = \(rec)). Try a smaller --lr.") }
            if i % settings.logEvery == 0 || i == settings.iterations - 1 {
                console.line(pad([String(i), String(format: "%.2f", rec)]))
                try outputs.log(record(i, rec: rec, loss: rec, seconds: Date().timeIntervalSince(start)), comm: comm)
            }
        }
        let (d, k) = (shard.d, settings.hidden)
        let pca = try PrincipalComponents.compute(shard, components: k, comm: comm)
        let cosines = pca.subspaceCosines(trainer.W, d: d, k: k)
        let norms = (0..<k).map { j in (0..<d).reduce(0.0) { $0 + Double(trainer.W[$1 * k + j] * trainer.W[$1 * k + j]) }.squareRoot() }
        console.line("cosine of each learned direction to the span of the first \(k) principal components: "
                     + cosines.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: " ") + (k > 8 ? " …" : "")
                     + String(format: " (min %.4f); ‖w‖: mean %.4f", cosines.min() ?? 0, norms.reduce(0, +) / Double(k)))
        let directions = (0..<min(64, k)).map { j in (0..<d).map { trainer.W[$0 * k + j] } }
        var local: [Float] = []
        for row in shard.rows.clamped(to: 0..<25) {
            let x = (row - shard.rows.lowerBound) * d
            for j in 0..<k { local.append((0..<d).reduce(Float(0)) { $0 + shard.values[x + $1] * trainer.W[$1 * k + j] }) }
        }
        let codes = try DatasetShard.gatherFirstRows(min(25, shard.info.examples), width: k, local: local, examples: shard.info.examples, comm: comm)
        try outputs.finish(vectors: directions, codes: comm.isRoot ? codes : nil, h: k,
                           extra: [("W.npy", trainer.W, [d, k]), ("subspace_cosines.npy", cosines.map(Float.init), [k])], comm: comm)
        console.line("wrote \(outPath)/: W.npy (d, k), subspace_cosines.npy, activations.npy, filters.png, config.json, metrics.jsonl")
    }
}

struct PCACommand: JobCommand {
    static let configuration = CommandConfiguration(
        commandName: "pca",
        abstract: "Principal components of the standardized data (covariance reduced across ranks, LAPACK eigen-decomposition).")

    @Option(help: "Training data, as for train (default: the embedded LFW faces).") var data: String?
    @Option(help: "Image shape HxW, for N×D data.") var imageShape: String?
    @Option(help: "Components to keep.") var components: Int = 64
    @Option(help: "Output directory.") var out: String = "aetrain-pca"
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var job: JobOptions

    func run(comm: MPICommunicator) throws {
        let start = Date()
        let shard = try DatasetShard.load(try DataSource(argument: data, seed: 0), imageShape: imageShape.flatMap(ImageShape.init(parsing:)), comm: comm)
        let pca = try comm.collectively { try PrincipalComponents.compute(shard, components: components, comm: comm) }
        var settings = TrainSettings()
        settings.hidden = components
        settings.iterations = 1
        let outputs = try ModelOutputs.open(out, settings: settings, model: "pca", shard: shard, comm: comm, threads: BLASThreads.current, data: data)
        let d = shard.d
        if comm.isRoot && !quiet {
            print("aetrain pca: \(shard.info.examples) examples of \(shard.info.imageShape), total variance \(String(format: "%.2f", pca.totalVariance))")
            print(pad(["comp", "eigval", "ratio", "cumul"]))
            var cumulative = 0.0
            for i in 0..<min(components, 20) {
                cumulative += pca.explainedRatio(i)
                print(pad([String(i), String(format: "%.3f", pca.eigenvalues[i]), String(format: "%.4f", pca.explainedRatio(i)), String(format: "%.4f", cumulative)]))
            }
        }
        var local: [Float] = []
        for row in shard.rows.clamped(to: 0..<25) {
            let x = (row - shard.rows.lowerBound) * d
            for u in pca.components { local.append(Float((0..<d).reduce(0.0) { $0 + Double(shard.values[x + $1]) * u[$1] })) }
        }
        let codes = try DatasetShard.gatherFirstRows(min(25, shard.info.examples), width: components, local: local, examples: shard.info.examples, comm: comm)
        try outputs.log(record(0, rec: pca.eigenvalues[components...].reduce(0, +), loss: pca.eigenvalues[components...].reduce(0, +),
                               seconds: Date().timeIntervalSince(start)), comm: comm)
        try outputs.finish(vectors: pca.components.prefix(64).map { $0.map(Float.init) }, codes: comm.isRoot ? codes : nil, h: components,
                           extra: [("components.npy", pca.components.flatMap { $0.map(Float.init) }, [components, d]),
                                   ("explained_variance.npy", pca.eigenvalues.prefix(components).map(Float.init), [components])], comm: comm)
        if comm.isRoot && !quiet { print("wrote \(out)/: components.npy (k, d), explained_variance.npy, activations.npy, filters.png, config.json") }
    }
}

extension SparseCoding.SourceUpdate: ExpressibleByArgument {}
extension ActivationPath: ExpressibleByArgument {}

/// When the step overlaps the decoder's allreduce with the encoder's backward pass. Open MPI
/// moves a non-blocking allreduce only inside MPI calls: on one node (shared memory, every
/// core computing) that made the step slower (exposed communication 1.6–1.8 ms against
/// 0.8–1.2 ms blocking), across nodes over TCP it hid about 3.5 ms of 26. Hence `auto`.
enum OverlapMode: String, ExpressibleByArgument, CaseIterable {
    case auto, always, never
    func enabled(_ comm: Communicator) -> Bool {
        switch self {
        case .auto: comm.localSize < comm.size
        case .always: true
        case .never: false
        }
    }
}
