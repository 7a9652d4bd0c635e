import AETrainCore
import Foundation
import XCTest

/// Property-based fuzzing of the two parsers that read files from outside: mutated inputs
/// must give a `UserError` or a valid result, never a crash. Bounded in time (about 2 s each).
final class FuzzTests: XCTestCase {
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
        var rng = Xoshiro256(seed: 1)
        var parsed = 0, rejected = 0
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            let input = mutate(seed, &rng)
            do {
                let header = try NPYHeader.parse(input, path: "fuzz")
                XCTAssertTrue(header.shape.allSatisfy { $0 >= 0 })
                parsed += 1
            } catch is UserError { rejected += 1 }
        }
        XCTAssertGreaterThan(parsed + rejected, 1000)
        XCTAssertGreaterThan(rejected, 100)
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

        var rng = Xoshiro256(seed: 2)
        var decoded = 0, rejected = 0
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            var input = mutate(seed, &rng)
            // Half the time, re-seal the checksum so that the parser behind it is exercised too.
            if rng.below(2) == 0, input.count >= 8 {
                let hash = FNV1a.hash(input.dropLast(8))
                for i in 0..<8 { input[input.count - 8 + i] = UInt8((hash >> (8 * UInt64(i))) & 0xff) }
            }
            do {
                let c = try Checkpoint.decode(Data(input), path: "fuzz")
                XCTAssertEqual(c.header.sections?.count, c.values.count)
                decoded += 1
                // A decoded checkpoint never restores into a trainer it does not fit.
                let fresh = try SparseAutoencoder(shard: shard, settings: settings, comm: SingleProcess())
                do { try fresh.restore(c, file: "fuzz") } catch is UserError {}
            } catch is UserError { rejected += 1 }
        }
        XCTAssertGreaterThan(decoded + rejected, 200)
        XCTAssertGreaterThan(rejected, 100)
        print("checkpoint fuzz: \(decoded) decoded, \(rejected) rejected")
    }
}
