/// The spans a timeline (`--trace`) records, and their names in the trace file.
///
/// A step's spans nest as
///
///     step
///       batch rows                 this rank's rows of the global batch, copied
///       encoder forward            X V, then ReLU, bias and column sums
///         X V
///       allreduce column sums      the wait in the collective
///       entropy
///       decoder forward            Z W, residual, ‖R‖², G (sparse kernels: the gather of Z's
///                                  nonzeros and the sparse decoder)
///         Z W
///       decoder backward           Zᵀ G, da
///         Zᵀ G
///       start allreduce dW         with overlap
///       encoder backward           G Wᵀ, G_P and db, Xᵀ G_P, ‖X‖²
///         G Wᵀ
///         progress                 with overlap: MPI moves the reductions in flight
///         Xᵀ G_P
///       allreduce gradient         the wait; with overlap "finish allreduces"
///       regularizer                2ηW into dW, ‖W‖²
///       Adam
///
/// When the ranks of a node share memory (`--gradient-sum`, by default with 2 or more ranks
/// on every node), the allreduce becomes
///
///       regularizer                ‖W‖² (before the barrier: after it, ranks update W)
///       gradient barrier           the wait until every rank's gradient is written
///       allreduce gradient         on several nodes: this rank's part, summed across them
///       pack bf16 weights          with --precision bf16: V rounded and packed for the step (W inside Z W or G Wᵀ)
///       Adam                       this rank's part of θ: the ranks' gradients added, 2ηW, Adam
///       update barrier             the wait until every rank has updated its part
///
/// With `--deterministic`, the chunks' backward products run on worker threads and are one
/// span, "chunks backward" (decoder and encoder backward of every chunk and their fixed-order
/// sum), in place of the decoder forward, decoder backward and encoder backward spans.
///
/// and, between steps in `train`, "log line" and "checkpoint".
public enum TraceSpan: UInt8, CaseIterable, Sendable {
    case step, batch
    case encoderForward, encoderProduct, columnSumsAllreduce, entropy
    case decoderForward, decoderProduct, decoderBackward, decoderBackwardProduct
    case startAllreduce, encoderBackward, encoderBackwardProduct, progress, encoderWeightProduct
    case chunksBackward, gradientAllreduce, finishAllreduces, regularizer, adam
    case gradientBarrier, updateBarrier
    case logLine, checkpoint
    case packWeights

    public var name: String {
        switch self {
        case .step: "step"
        case .batch: "batch rows"
        case .encoderForward: "encoder forward"
        case .encoderProduct: "X V"
        case .columnSumsAllreduce: "allreduce column sums"
        case .entropy: "entropy"
        case .decoderForward: "decoder forward"
        case .decoderProduct: "Z W"
        case .decoderBackward: "decoder backward"
        case .decoderBackwardProduct: "Zᵀ G"
        case .startAllreduce: "start allreduce dW"
        case .encoderBackward: "encoder backward"
        case .encoderBackwardProduct: "G Wᵀ"
        case .progress: "progress"
        case .encoderWeightProduct: "Xᵀ G_P"
        case .chunksBackward: "chunks backward"
        case .gradientAllreduce: "allreduce gradient"
        case .finishAllreduces: "finish allreduces"
        case .regularizer: "regularizer"
        case .adam: "Adam"
        case .gradientBarrier: "gradient barrier"
        case .updateBarrier: "update barrier"
        case .logLine: "log line"
        case .checkpoint: "checkpoint"
        case .packWeights: "pack bf16 weights"
        }
    }

    /// The trace-event category: matrix products, waits in collectives, the rest.
    public var category: String {
        switch self {
        case .encoderProduct, .decoderProduct, .decoderBackwardProduct, .encoderBackwardProduct, .encoderWeightProduct: "gemm"
        case .columnSumsAllreduce, .gradientAllreduce, .finishAllreduces, .startAllreduce, .progress, .gradientBarrier,
             .updateBarrier: "communication"
        case .logLine, .checkpoint: "run"
        default: "compute"
        }
    }

    /// Spans that happen inside a step (recorded only for the traced steps).
    var isInsideStep: Bool { self != .logLine && self != .checkpoint }

    /// The most spans one step records (every case but the run's own and `progress`, which
    /// the encoder backward records twice).
    static let perStep = allCases.count
}
