import Foundation

/// TensorBoard's `Event` message, encoded by hand: only the fields aetrain writes. Field
/// numbers from tensorboard/compat/proto/event.proto, summary.proto and histogram.proto:
///
///     Event          { double wall_time = 1; int64 step = 2;
///                      oneof { string file_version = 3; Summary summary = 5; SessionLog session_log = 7; } }
///     SessionLog     { SessionStatus status = 1; }                      // START = 1
///     Summary        { repeated Value value = 1; }
///     Summary.Value  { string tag = 1; oneof { float simple_value = 2; Image image = 4; HistogramProto histo = 5; } }
///     Summary.Image  { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
///     HistogramProto { double min = 1; max = 2; num = 3; sum = 4; sum_squares = 5;
///                      repeated double bucket_limit = 6 [packed]; repeated double bucket = 7 [packed]; }
public enum TensorBoardEvent {
    /// The first event of every file.
    public static func fileVersion(wallTime: Double) -> [UInt8] {
        var e = header(wallTime: wallTime, step: 0)
        e.string(3, "brain.Event:2")
        return e.bytes
    }

    /// A session starts at `step`: TensorBoard drops the events of earlier sessions at
    /// `step` or later (written after the checkpoint a resumed run continues from).
    public static func sessionStart(wallTime: Double, step: Int) -> [UInt8] {
        var log = ProtoMessage()
        log.varint(1, 1)
        var e = header(wallTime: wallTime, step: step)
        e.message(7, log)
        return e.bytes
    }

    /// One summary holding `values`, at `step`.
    public static func summary(wallTime: Double, step: Int, values: [SummaryValue]) -> [UInt8] {
        var summary = ProtoMessage()
        for v in values { summary.message(1, v.message) }
        var e = header(wallTime: wallTime, step: step)
        e.message(5, summary)
        return e.bytes
    }

    private static func header(wallTime: Double, step: Int) -> ProtoMessage {
        var e = ProtoMessage()
        e.double(1, wallTime)
        e.varint(2, UInt64(bitPattern: Int64(step)))
        return e
    }
}

/// One tagged value of a summary.
public enum SummaryValue {
    case scalar(tag: String, value: Float)
    /// `png`: the encoded image; colorspace 1 grey, 3 RGB.
    case image(tag: String, width: Int, height: Int, colorspace: Int, png: [UInt8])
    case histogram(tag: String, Histogram)

    var message: ProtoMessage {
        var v = ProtoMessage()
        switch self {
        case let .scalar(tag, value):
            v.string(1, tag)
            v.float(2, value)
        case let .image(tag, width, height, colorspace, png):
            var image = ProtoMessage()
            image.varint(1, UInt64(height))
            image.varint(2, UInt64(width))
            image.varint(3, UInt64(colorspace))
            image.bytes(4, png)
            v.string(1, tag)
            v.message(4, image)
        case let .histogram(tag, h):
            var histo = ProtoMessage()
            histo.double(1, h.min)
            histo.double(2, h.max)
            histo.double(3, h.num)
            histo.double(4, h.sum)
            histo.double(5, h.sumSquares)
            histo.packedDoubles(6, h.bucketLimits)
            histo.packedDoubles(7, h.buckets)
            v.string(1, tag)
            v.message(5, histo)
        }
        return v
    }
}

/// A histogram in TensorBoard's form: `buckets[i]` values in (bucketLimits[i − 1], bucketLimits[i]],
/// the first from `min`; equal widths over [min, max].
public struct Histogram: Equatable {
    public var min = 0.0, max = 0.0, num = 0.0, sum = 0.0, sumSquares = 0.0
    public var bucketLimits: [Double] = [], buckets: [Double] = []

    /// `values` (finite) in `bins` equal buckets; one bucket when they are all equal.
    public init(_ values: [Double], bins: Int = 30) {
        guard let lo = values.min(), let hi = values.max() else { return }
        min = lo; max = hi; num = Double(values.count)
        sum = values.reduce(0, +); sumSquares = values.reduce(0) { $0 + $1 * $1 }
        let n = hi > lo ? Swift.max(1, bins) : 1
        let width = (hi - lo) / Double(n)
        bucketLimits = (1...n).map { $0 == n ? hi : lo + Double($0) * width }
        buckets = [Double](repeating: 0, count: n)
        for v in values {
            let i = width > 0 ? Swift.min(n - 1, Int((v - lo) / width)) : 0
            buckets[i] += 1
        }
    }
}

/// The protocol-buffer wire format, as far as the messages above need it: varints (wire type 0),
/// 64-bit (1), length-delimited (2) and 32-bit (5) fields. Every field given is written, zero
/// included (a oneof member must be present to be set).
struct ProtoMessage {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ field: Int, _ value: UInt64) {
        key(field, wire: 0)
        writeVarint(value)
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, wire: 1)
        bytes += TFRecord.littleEndian(value.bitPattern)
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, wire: 5)
        bytes += TFRecord.littleEndian(value.bitPattern)
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, wire: 2)
        writeVarint(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }
    mutating func message(_ field: Int, _ value: ProtoMessage) { bytes(field, value.bytes) }

    mutating func packedDoubles(_ field: Int, _ values: [Double]) {
        bytes(field, values.flatMap { TFRecord.littleEndian($0.bitPattern) })
    }

    private mutating func key(_ field: Int, wire: UInt64) { writeVarint(UInt64(field) << 3 | wire) }

    private mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
}
