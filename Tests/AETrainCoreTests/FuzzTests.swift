import AETrainCore
import Foundation
import XCTest

/// Property-based fuzzing of the two parsers that read files from outside: mutated inputs
/// must give a `UserError` or a valid result, never a crash. Bounded in time (about 2 s each).
/// Each run draws other cases: the seed is printed, and `AETRAIN_TEST_SEED=S` repeats a run.
final class FuzzTests: XCTestCase {
    /// `AETRAIN_TEST_SEED` if set, else one from the clock; printed either way.
    func seed(_ test: String) -> UInt64 {
        let given = ProcessInfo.processInfo.environment["AETRAIN_TEST_SEED"].flatMap { UInt64($0) }
        let seed = given ?? UInt64(Date().timeIntervalSince1970 * 1e6) % 1_000_000_007
        print("\(test): seed \(seed) (AETRAIN_TEST_SEED=\(seed) repeats this run)")
        return seed
    }

    func mutate(_ bytes: [UInt8], _ rng: inout Xoshiro256) -> [UInt8] {
        var b = bytes
        switch rng.below(5) {
        case 0:  // flip bits
            for _ in 0...rng.below(4) where !b.isEmpty { b[rng.below(b.count)] ^= UInt8(1 << rng.below(8)) }
        case 1:  // random bytes
            for _ in 0...rng.below(8) where !b.isEmpty { b[rng.below(b.count)] = UInt8(rng.below(256)) }
        case 2:  // truncate
            b = Array(b.prefix(rng.below(b.count + 1)))
        case 3:  // insert or delete a run of bytes
            let at = rng.below(b.count + 1)
            if rng.below(2) == 0 { b.insert(contentsOf: (0..<rng.below(16)).map { _ in UInt8(rng.below(256)) }, at: at) }
            else { b.removeSubrange(at..<min(b.count, at + rng.below(16))) }
        default:  // interesting ASCII in the text part
            let alphabet = Array("(),:'\" {}0123456789-<>|fuTrueFalse\n".utf8)
            for _ in 0...rng.below(6) where b.count > 10 { b[10 + rng.below(b.count - 10)] = alphabet[rng.below(alphabet.count)] }
        }
        return b
    }

    func testNPYHeaderParser() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(UUID().uuidString).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        try [Float](repeating: 1, count: 12).withUnsafeBufferPointer { try NPYWriter.write($0, shape: [3, 2, 2], to: url) }
        let seed = [UInt8](try Data(contentsOf: url))
        let runSeed = self.seed("npy header fuzz")
        var rng = Xoshiro256(seed: runSeed)
        var parsed = 0, rejected = 0
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            let input = mutate(seed, &rng)
            do {
                let header = try NPYHeader.parse(input, path: "fuzz")
                XCTAssertTrue(header.shape.allSatisfy { $0 >= 0 }, "seed \(runSeed): \(input)")
                parsed += 1
            } catch is UserError { rejected += 1 }
        }
        XCTAssertGreaterThan(parsed + rejected, 1000, "seed \(runSeed)")
        XCTAssertGreaterThan(rejected, 100, "seed \(runSeed)")
        print("npy header fuzz: \(parsed) parsed, \(rejected) rejected")
    }

    func testCheckpointDecoder() throws {
        let shard = try DatasetShard.load(.synthetic(SyntheticSpec(examples: 12, shape: ImageShape(height: 3, width: 3)), seed: 0),
                                          imageShape: nil, comm: SingleProcess())
        var settings = TrainSettings()
        settings.hidden = 4
        settings.batchSize = 5
        let model = try SparseAutoencoder(shard: shard, settings: settings, comm: SingleProcess())
        for i in 0..<3 { _ = try model.iterate(i, stop: false) }
        let state = try model.checkpointState()
        let header = Checkpoint.Header(model: .sparseAutoencoder, iteration: 3, settings: settings, datasetFingerprint: shard.info.fingerprint,
                                       examples: shard.info.examples, shape: model.shape, samplerRNG: state.samplerRNG?.map { String($0, radix: 16) },
                                       ranks: 1, written: "now")
        let seed = [UInt8](try Checkpoint(header: header, values: state.sections).encode())
        let good = try Checkpoint.decode(Data(seed), path: "fuzz")
        XCTAssertEqual(good.header.iteration, 3)

        let runSeed = self.seed("checkpoint fuzz")
        var rng = Xoshiro256(seed: runSeed)
        // Where the payload starts: a mutation after it, of the same length, leaves the header.
        let headerEnd = 16 + (0..<8).reduce(0) { $0 | Int(seed[8 + $1]) << (8 * $1) }  // the u64 header length H after the magic
        var counts = (identical: 0, refused: 0, resealedRefused: 0, resealedDecoded: 0, payloadOnly: 0)
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            var input = mutate(seed, &rng)
            let context = "seed \(runSeed), case \(counts), \(input.count) bytes"
            if input == seed {
                // A mutation that changed nothing (a byte set to its own value, nothing cut).
                let c = try Checkpoint.decode(Data(input), path: "fuzz")
                XCTAssertEqual(c.header, good.header, context)
                XCTAssertEqual(try c.encode(), try good.encode(), context)
                counts.identical += 1
                continue
            }
            // Unsealed: any change is detected. The checksum is FNV-1a, whose steps are each a
            // bijection of its state, so a change confined to one byte always changes it; wider
            // changes collide with probability 2⁻⁶⁴.
            if rng.below(2) == 0 {
                let why = input.count < 24 || Array(input.prefix(8)) != Array("AETCKPT1".utf8) ? "bad magic" : "checksum mismatch"
                do {
                    _ = try Checkpoint.decode(Data(input), path: "fuzz")
                    XCTFail("a damaged checkpoint was accepted: \(context)")
                } catch let e as UserError {
                    XCTAssertEqual(e.message, "fuzz: damaged checkpoint (\(why))", context)
                }
                counts.refused += 1
                continue
            }
            // Re-sealed, so that the parser behind the checksum is exercised: it refuses with a
            // one-line UserError, or what it decodes is exactly what the bytes say.
            if input.count >= 8 {
                let hash = FNV1a.hash(input.dropLast(8))
                for i in 0..<8 { input[input.count - 8 + i] = UInt8((hash >> (8 * UInt64(i))) & 0xff) }
            }
            let c: Checkpoint
            do {
                c = try Checkpoint.decode(Data(input), path: "fuzz")
            } catch let e as UserError {
                XCTAssertTrue(e.message.hasPrefix("fuzz: damaged checkpoint (") && !e.message.contains("\n"), "\(e.message): \(context)")
                counts.resealedRefused += 1
                continue
            }
            counts.resealedDecoded += 1
            XCTAssertEqual(c.header.sections?.count, c.values.count, context)
            XCTAssertEqual(c.header.sections?.map(\.name), c.values.map(\.name), context)
            if input.count == seed.count, input.prefix(headerEnd) == seed.prefix(headerEnd) {
                // Only payload bytes changed: the header is the original's, and encoding what
                // was decoded gives back the input, byte for byte (values are bit patterns).
                XCTAssertEqual(c.header, good.header, context)
                XCTAssertEqual([UInt8](try c.encode()), input, context)
                counts.payloadOnly += 1
            } else {
                // The header changed and still parsed: what was decoded encodes and decodes again to itself.
                XCTAssertEqual(try Checkpoint.decode(try c.encode(), path: "again").header, c.header, context)
            }
            // A decoded checkpoint restores into a trainer it fits, or is refused with a UserError.
            let fresh = try SparseAutoencoder(shard: shard, settings: settings, comm: SingleProcess())
            do { try fresh.restore(c, file: "fuzz") } catch is UserError {}
        }
        XCTAssertGreaterThan(counts.refused, 100, "seed \(runSeed): \(counts)")
        XCTAssertGreaterThan(counts.resealedRefused + counts.resealedDecoded, 100, "seed \(runSeed): \(counts)")
        XCTAssertGreaterThan(counts.payloadOnly, 10, "seed \(runSeed): \(counts)")
        print("checkpoint fuzz: \(counts)")
    }
}
