import AETrainCore
import Foundation

/// P ranks as P threads of this process, for the point-to-point and all-to-all calls
/// (`sendReceive`, `exchange`) and shared memory (`sharedSegment`: one allocation every thread
/// sees, `synchronize` a barrier); the other collectives are not needed by the tests that use it.
final class ThreadRanks {
    let size: Int
    private let lock = NSCondition()
    /// Messages in flight, by (from, to), oldest first.
    private var mailboxes: [[[UInt8]]]
    /// `exchange`: what each rank posted, and a generation counter for the barrier.
    private var posted: [(send: UnsafeRawPointer, counts: [Int], offsets: [Int])?]
    private var arrived = 0, generation = 0
    /// `sharedSegment`: the segments handed out, in call order (every rank asks in the same order).
    private var segments: [Segment] = []

    init(size: Int) {
        self.size = size
        mailboxes = Array(repeating: [], count: size * size)
        posted = Array(repeating: nil, count: size)
    }

    /// Runs body(rank's communicator) on `size` threads and waits for them.
    func run(_ body: @escaping (Communicator) throws -> Void) throws {
        final class Failures: @unchecked Sendable {
            let lock = NSLock()
            var errors: [Error] = []
            func add(_ e: Error) { lock.lock(); errors.append(e); lock.unlock() }
        }
        let failures = Failures()
        let group = DispatchGroup()
        for r in 0..<size {
            let thread = Thread {
                do { try body(Rank(self, r)) } catch { failures.add(error) }
                group.leave()
            }
            group.enter()
            thread.start()
        }
        group.wait()
        if let first = failures.errors.first { throw first }
    }

    fileprivate func post(_ bytes: [UInt8], from: Int, to: Int) {
        lock.lock(); mailboxes[from * size + to].append(bytes); lock.broadcast(); lock.unlock()
    }

    fileprivate func take(from: Int, to: Int) -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        while mailboxes[from * size + to].isEmpty { lock.wait() }
        return mailboxes[from * size + to].removeFirst()
    }

    fileprivate func barrier() {
        lock.lock(); defer { lock.unlock() }
        let mine = generation
        arrived += 1
        if arrived == size { arrived = 0; generation += 1; lock.broadcast() } else {
            while generation == mine { lock.wait() }
        }
    }

    /// The n-th segment every rank asks for: made by the first to ask, zero-filled.
    fileprivate func segment(_ n: Int, bytes: Int) -> Segment {
        lock.lock(); defer { lock.unlock() }
        if segments.count == n { segments.append(Segment(self, bytes: bytes)) }
        return segments[n]
    }

    final class Segment: SharedSegment {
        let ranks: ThreadRanks
        let base: UnsafeMutableRawPointer
        init(_ ranks: ThreadRanks, bytes: Int) {
            self.ranks = ranks
            base = .allocate(byteCount: bytes, alignment: 64)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        }
        deinit { base.deallocate() }
        func synchronize() throws { ranks.barrier() }
    }

    fileprivate func exchange(rank r: Int, _ send: UnsafeRawPointer, _ sendCounts: [Int], _ sendOffsets: [Int],
                              into receive: UnsafeMutableRawPointer, _ receiveCounts: [Int], _ receiveOffsets: [Int]) {
        lock.lock(); posted[r] = (send, sendCounts, sendOffsets); lock.unlock()
        barrier()
        for s in 0..<size {
            lock.lock(); let p = posted[s]; lock.unlock()
            guard let p else { continue }
            precondition(p.counts[r] == receiveCounts[s], "rank \(s) sends \(p.counts[r]) bytes to \(r), which expects \(receiveCounts[s])")
            (receive + receiveOffsets[s]).copyMemory(from: p.send + p.offsets[r], byteCount: p.counts[r])
        }
        barrier()
    }

    private final class Rank: Communicator {
        let ranks: ThreadRanks
        let rank: Int
        var segmentsTaken = 0
        init(_ ranks: ThreadRanks, _ rank: Int) { self.ranks = ranks; self.rank = rank }
        func sharedSegment(bytes: Int) throws -> SharedSegment? {
            defer { segmentsTaken += 1 }
            return ranks.segment(segmentsTaken, bytes: bytes)
        }
        var size: Int { ranks.size }
        var localSize: Int { ranks.size }
        var localRank: Int { rank }
        func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws { fatalError("not in ThreadRanks") }
        func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws { fatalError("not in ThreadRanks") }
        func progressReductions() {}
        func finishReductions() throws {}
        func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws { fatalError("not in ThreadRanks") }
        func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws {
            fatalError("not in ThreadRanks")
        }
        func idleBarrier(allowing extraSeconds: Double) throws { ranks.barrier() }
        func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                         bytes receiveBytes: Int, peer: Int) throws {
            precondition(peer != rank)
            ranks.post(Array(UnsafeRawBufferPointer(start: send, count: sendBytes)), from: rank, to: peer)
            let got = ranks.take(from: peer, to: rank)
            precondition(got.count == receiveBytes, "rank \(rank) expects \(receiveBytes) bytes from \(peer), got \(got.count)")
            got.withUnsafeBytes { if let base = $0.baseAddress { receive.copyMemory(from: base, byteCount: receiveBytes) } }
        }
        func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                      into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                      offsets receiveOffsets: UnsafePointer<Int>) throws {
            let n = size
            ranks.exchange(rank: rank, send, Array(UnsafeBufferPointer(start: sendCounts, count: n)),
                           Array(UnsafeBufferPointer(start: sendOffsets, count: n)), into: receive,
                           Array(UnsafeBufferPointer(start: receiveCounts, count: n)),
                           Array(UnsafeBufferPointer(start: receiveOffsets, count: n)))
        }
    }
}
