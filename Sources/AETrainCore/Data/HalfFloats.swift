/// The 16-bit float formats that activation files come in, widened to float32 exactly.
///
///     F16  (IEEE binary16): sign 1, exponent 5, mantissa 10; subnormals, ±0, ±inf, NaN
///     BF16 (bfloat16):      sign 1, exponent 8, mantissa 7: the upper half of a float32
///
/// Every value of both formats is representable in float32, so the widening loses nothing;
/// NaN stays NaN and infinities stay infinite (the data check refuses both afterwards).
public enum HalfFloats {
    /// A binary16 bit pattern as Float, in integer arithmetic: exact whatever the FPU's mode
    /// (a run flushes subnormals to zero, and `Float(Float16)` may take a path through float
    /// arithmetic that would flush binary16's subnormals, which are normal float32 values).
    @inline(__always) public static func float(f16 bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F, mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0x1F:  // ±inf, NaN (payload kept)
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        case 0:
            guard mantissa != 0 else { return Float(bitPattern: sign) }  // ±0
            // Subnormal m·2⁻²⁴: shift the leading 1 into the implicit bit, s places.
            var m = mantissa, s: UInt32 = 0
            while m & 0x400 == 0 { m <<= 1; s += 1 }
            return Float(bitPattern: sign | (113 - s) << 23 | (m & 0x3FF) << 13)
        default:    // normal: rebias 15 → 127
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }

    /// A bfloat16 bit pattern as Float: its 16 bits above 16 zero bits.
    @inline(__always) public static func float(bf16 bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
