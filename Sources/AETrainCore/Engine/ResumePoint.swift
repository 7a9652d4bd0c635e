import Foundation

/// The checkpoint a resumed run starts from, read by rank 0 and broadcast, with the run's
/// recorded configuration.
struct ResumePoint {
    var checkpoint: Checkpoint
    var file: String
    var warnings: [String]
    var config: RunConfig?

    static func load(directory: String, comm: Communicator) throws -> ResumePoint {
        let (bytes, file, warnings, configData) = try comm.collectively { () throws -> (Data, String, [String], Data) in
            guard comm.isRoot else { return (Data(), "", [], Data()) }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
                throw UserError("⟨resume⟩ \(directory): no such run directory")
            }
            let config = (try? Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent("config.json"))) ?? Data()
            let runID = (try? JSONDecoder().decode(RunConfig.self, from: config))?.runID
            let found = try CheckpointFolder(run: URL(fileURLWithPath: directory)).newestValid(runID: runID)
            return (try Data(contentsOf: found.file), found.file.path, found.warnings, config)
        }
        let shared = try comm.broadcast(bytes, root: 0)
        let name = String(decoding: try comm.broadcast(Data(file.utf8), root: 0), as: UTF8.self)
        let checkpoint = try comm.collectively { try Checkpoint.decode(shared, path: name) }
        let config = try? JSONDecoder().decode(RunConfig.self, from: try comm.broadcast(configData, root: 0))
        return ResumePoint(checkpoint: checkpoint, file: name, warnings: warnings, config: config)
    }

    /// Refuses a checkpoint of another trajectory, other data or another shape.
    func check(against settings: TrainSettings, shard: DatasetShard, model: TrainableModel, kind: ModelKind) throws {
        let h = checkpoint.header
        if let difference = settings.trajectoryDifference(from: h.settings) {
            throw UserError("\(file) was written by a run with other settings (\(difference)); resume with the same settings")
        }
        guard h.datasetFingerprint == shard.info.fingerprint, h.examples == shard.info.examples else {
            throw UserError("\(file) was written for other data (fingerprint \(h.datasetFingerprint), \(h.examples) examples; "
                            + "this data: \(shard.info.fingerprint), \(shard.info.examples) examples)")
        }
        guard h.shape == model.shape else { throw UserError("\(file): model shape \(h.shape) does not match \(model.shape)") }
        guard h.iteration <= settings.iterations else {
            throw UserError("\(file) is at iteration \(h.iteration), past ⟨iterations⟩ \(settings.iterations)")
        }
    }
}
