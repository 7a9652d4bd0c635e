/// The 16-bit float formats that activation files come in, widened to float32 exactly.
///
///     F16  (IEEE binary16): sign 1, exponent 5, mantissa 10; subnormals, ±0, ±inf, NaN
///     BF16 (bfloat16):      sign 1, exponent 8, mantissa 7: the upper half of a float32
///
/// Every value of both formats is representable in float32, so the widening loses nothing;
/// NaN stays NaN and infinities stay infinite (the data check refuses both afterwards).
public enum HalfFloats {
    /// A little-endian binary16 bit pattern as Float.
    @inline(__always) public static func float(f16 bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    /// A bfloat16 bit pattern as Float: its 16 bits above 16 zero bits.
    @inline(__always) public static func float(bf16 bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
