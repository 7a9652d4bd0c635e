import AETrainCore
import CAllocationCounter
import XCTest

/// The training loop allocates nothing per step: buffers are sized once from the model and
/// the batch. Counted with an interposed malloc over 100 steps at the sheet's real size.
final class AllocationTests: XCTestCase {
    func allocationsPerStep(lambda: Double, blasThreads: Int, kernels: KernelChoice = .auto, traced: Bool = false, deterministic: Bool = false,
                            architecture: ArchitectureSettings? = nil, precision: Precision? = nil) throws -> Double {
        BLASThreads.set(blasThreads)
        defer { BLASThreads.set(ProcessInfo.processInfo.activeProcessorCount) }
        let spec = SyntheticSpec(examples: 2000, shape: ImageShape(height: 37, width: 28))
        let shard = try DatasetShard.load(.synthetic(spec, seed: 0), imageShape: nil, comm: SingleProcess())
        var settings = TrainSettings()
        settings.objective = ObjectiveSettings(lambda: lambda)
        settings.architecture = architecture
        settings.precision = precision
        let model = try SparseAutoencoder(shard: shard, settings: settings, comm: SingleProcess(), options: StepOptions(kernels: kernels, deterministic: deterministic, threads: blasThreads))
        let trace = traced ? try TraceRecorder(maxSteps: 200, otherSpans: 0, comm: SingleProcess()) : nil
        if let trace { model.record(into: trace) }
        for i in 0..<5 { trace?.beginStep(i); _ = try model.iterate(i, stop: false); trace?.endStep() }  // OpenBLAS sets up its buffers

        aet_count_allocations(1)
        let before = aet_allocations()
        for i in 5..<105 { trace?.beginStep(i); _ = try model.iterate(i, stop: false); trace?.endStep() }
        let after = aet_allocations()
        aet_count_allocations(0)
        return Double(after - before) / 100
    }

    /// With one BLAS thread per rank (what `mpirun -n P` with P = cores gives): none at all.
    func testTrainingStepsAllocateNothing() throws {
        for lambda in [0.0, 1.0] {
            XCTAssertEqual(try allocationsPerStep(lambda: lambda, blasThreads: 1), 0, "λ = \(lambda)")
        }
        XCTAssertEqual(try allocationsPerStep(lambda: 1, blasThreads: 1, kernels: .sparse), 0, "sparse kernels")
    }

    /// topk, batchtopk (its selection's counts and quotas) and jumprelu, AuxK with latents dead
    /// from the second step (⟨dead-steps⟩ 1), batchtopk on the deterministic step: none either.
    func testArchitectureStepsAllocateNothing() throws {
        for activation in [ArchitectureSettings.Activation.topk, .batchtopk, .jumprelu] {
            var a = ArchitectureSettings(activation: activation)
            a.deadSteps = 1
            for deterministic in activation == .batchtopk ? [true] : [false] {
                XCTAssertEqual(try allocationsPerStep(lambda: 0, blasThreads: 1, deterministic: deterministic, architecture: a), 0,
                               "\(activation), deterministic \(deterministic)")
            }
        }
    }

    /// topk's fast step on two threads (its selection, sparse kernels and optimizer shared by
    /// `ParallelLoop`, its one product split by rows on one BLAS thread each): none either.
    func testTopKStepsOnTwoThreadsAllocateNothing() throws {
        var a = ArchitectureSettings(activation: .topk)
        a.deadSteps = 1
        XCTAssertEqual(try allocationsPerStep(lambda: 0, blasThreads: 2, architecture: a), 0)
    }

    /// Recording a timeline (`--trace`) adds no allocation: its buffer is made up front.
    /// bf16 products on the rank's two threads (no OpenBLAS product, so none of its job arrays),
    /// and on the deterministic step's chunk workers. Where the CPU lacks AVX512_BF16 the model
    /// is refused instead (BF16Tests checks that line).
    func testBF16StepsAllocateNothing() throws {
        guard Precision.bf16Available else { return XCTAssertThrowsError(try allocationsPerStep(lambda: 1, blasThreads: 2, precision: .bf16)) }
        XCTAssertEqual(try allocationsPerStep(lambda: 1, blasThreads: 2, kernels: .dense, precision: .bf16), 0, "relu")
        var a = ArchitectureSettings(activation: .topk)
        a.deadSteps = 1
        XCTAssertEqual(try allocationsPerStep(lambda: 0, blasThreads: 2, architecture: a, precision: .bf16), 0, "topk")
        XCTAssertEqual(try allocationsPerStep(lambda: 1, blasThreads: 2, kernels: .dense, deterministic: true, precision: .bf16), 0, "deterministic")
    }

    func testTracedStepsAllocateNothing() throws {
        XCTAssertEqual(try allocationsPerStep(lambda: 0, blasThreads: 1, traced: true), 0)
    }

    /// The deterministic step (4 chunks, fixed-order sums) allocates nothing either, with its
    /// chunks on one thread or on two (single-threaded products, so OpenBLAS allocates nothing).
    func testDeterministicStepsAllocateNothing() throws {
        for threads in [1, 2] {
            XCTAssertEqual(try allocationsPerStep(lambda: 1, blasThreads: threads, deterministic: true), 0, "\(threads) thread(s)")
            XCTAssertEqual(try allocationsPerStep(lambda: 1, blasThreads: threads, kernels: .sparse, deterministic: true), 0,
                           "sparse kernels, \(threads) thread(s)")
        }
    }

    /// With several BLAS threads, Debian's OpenBLAS 0.3.21 mallocs one job array per threaded
    /// GEMM call (level3_thread.c), so at most one per matrix product: 5 per step. aetrain's
    /// own code still allocates nothing (the test above).
    func testThreadedBLASAllocatesAtMostOncePerProduct() throws {
        XCTAssertLessThanOrEqual(try allocationsPerStep(lambda: 0, blasThreads: 2), 5)
    }

    func testTheCounterCounts() {
        aet_count_allocations(1)
        let before = aet_allocations()
        let array = [Float](repeating: 1, count: 1000 + Int.random(in: 0..<2))
        let after = aet_allocations()
        aet_count_allocations(0)
        XCTAssertGreaterThan(after - before, 0)
        XCTAssertGreaterThan(array.count, 999)
    }
}
