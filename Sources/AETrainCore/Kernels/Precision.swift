import CKernels

/// The arithmetic of the training step's dense matrix products (`--precision`).
///
/// - fp32: float32 inputs, OpenBLAS's sgemm (the default; its runs keep their bytes).
/// - bf16: each input of a product (X, V, Z, W, G and the backward operands) rounded to
///   bfloat16, nearest even, when it is packed, and the products summed in float32 on
///   AVX512_BF16's `vdpbf16ps` (`CKernels/bf16_gemm.c`, `BF16Products`). Master weights, the
///   gradients' sums across ranks, Adam's moments, the column sums of the entropy term and
///   every logged term stay float32, and the sparse kernels (TopK's gather, the sparse
///   backward) stay fp32.
public enum Precision: String, Codable, CaseIterable, Sendable {
    case fp32, bf16

    /// Whether this CPU runs the bf16 kernels: AVX512_BF16 with AVX-512 F/VL/BW/DQ.
    public static var bf16Available: Bool { aet_bf16_supported() != 0 }

    /// Refuses bf16 where the CPU cannot run it (`available`: this CPU's answer), naming what it lacks.
    public func checkSupported(available: Bool = Precision.bf16Available) throws {
        guard self == .bf16, !available else { return }
        throw UserError("--precision bf16 needs a CPU with AVX512_BF16 (Intel Cooper Lake or Sapphire Rapids and later, "
                        + "AMD Zen 4 and later); this one has no AVX512_BF16: use --precision fp32")
    }

    /// What computes the dense products, for banners and `bench`.
    public var kernelDescription: String {
        switch self {
        case .fp32: "fp32 products (OpenBLAS sgemm)"
        case .bf16: "bf16 products, fp32 sums (vdpbf16ps, AVX512_BF16)"
        }
    }
}
