import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct Encode: JobCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode a dataset with a trained sparse autoencoder, by its architecture's inference rule, the data normalized with the run's statistics.",
        discussion: """
            Each rank encodes its shard; rank 0 writes the rows in order. --out gets the codes (N, h) as float32 .npy, \
            or as the safetensors tensor "codes"; with --sparse, CSR tensors indptr (N+1, int64), indices (int32) and \
            values (float32) in one safetensors file. --reconstruct also writes x̂ in the data's own units. \
            A name ending in .npy or .safetensors must match the format. \
            The codes follow the run's --activation: relu z = relu(π), topk the k largest of relu(π) per example \
            (ties to the lower unit), batchtopk relu(π)·1[relu(π) > θ], jumprelu π·H(π − θ), with π = x V + b. \
            --held-out encodes only the examples the run held out (--eval-fraction), in ascending order, \
            from the run's own data unless --data names it elsewhere.
            """)

    @Argument(help: "A sparse autoencoder's run directory (written by `aetrain train --out`).")
    var run: String
    @OptionGroup var data: DataFlags
    @Option(help: "The codes file.") var out: String
    @Option(help: "Also write the reconstruction x̂ = (z W + a)·std + mean (unit-norm: ·‖x‖/√D), (N, D), to this file (same format).")
    var reconstruct: String?
    @Option(help: "npy (default) or safetensors.") var format: CodeFormat?
    @Flag(help: "Write the codes as CSR arrays (indptr, indices, values) in one safetensors file.") var sparse = false
    @Flag(help: "Replace an existing --out or --reconstruct file (otherwise refused).") var overwrite = false
    @Option(help: CheckpointChoice.help) var checkpoint: CheckpointChoice?
    @Option(help: "The products: fp32 (default) or bf16 (inputs rounded to bfloat16, sums in fp32; needs AVX512_BF16).")
    var precision: Precision = .fp32
    @Flag(help: "Encode only the run's held-out examples (config.json heldOutRows), of the run's data unless --data is given.")
    var heldOut = false
    @OptionGroup var job: JobOptions
    @Flag(help: "Print nothing but errors.") var quiet = false

    func validate() throws {
        try validating(Self.self) { try plan().validate() }
    }

    func plan() -> EncodePlan {
        var plan = EncodePlan(run: run, out: out)
        plan.data = data.plan
        plan.reconstruct = reconstruct
        plan.precision = precision
        plan.sparse = sparse
        plan.overwrite = overwrite
        plan.fromCheckpoint = checkpoint == .latest
        plan.heldOut = heldOut
        // No --format: safetensors for --sparse or an --out named .safetensors, else npy.
        plan.format = format ?? (sparse || out.lowercased().hasSuffix(".safetensors") ? .safetensors : .npy)
        return plan
    }

    func run(comm: Communicator) throws {
        let s = try Encoding.run(plan(), comm: comm)
        guard comm.isRoot, !quiet else { return }
        let fraction = Double(s.nonzero) / Double(max(1, s.examples * s.hidden))
        print("encoded \(s.examples) examples (D = \(s.d)) into \(s.hidden) units: \(String(format: "%.2f", 100 * fraction))% nonzero")
        print("wrote \(out) (\(s.bytes) bytes\(sparse ? String(format: "; dense float32 would be %d bytes, %.1f× more", s.denseBytes, Double(s.denseBytes) / Double(max(1, s.bytes))) : ""))"
              + (reconstruct.map { " and \($0)" } ?? ""))
    }
}

extension CodeFormat: ExpressibleByArgument {}
