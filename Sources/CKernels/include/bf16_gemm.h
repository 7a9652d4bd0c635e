// bf16 matrix product with fp32 accumulation on AVX512_BF16 (vdpbf16ps), a drop-in for the
// fp32 cblas_sgemm calls of a training step.
//
//   C(m,n) = alpha · op(A)(m,k) · op(B)(k,n) + beta · C        (row-major, BLAS-like transposes)
//
// ARITHMETIC (exact, what aet_bf16_gemm_reference reproduces bit for bit):
//   1. Every input element is rounded to bf16 when it is packed: round to nearest, ties to even,
//      on the fp32 bits; overflow goes to ±inf; a NaN stays a NaN (quieted: bit 0x0040 set,
//      sign and upper payload kept); fp32 denormals round like any other value (no DAZ here).
//   2. k is split into pairs (0,1), (2,3), …; an odd k is padded with a zero element in both
//      A and B (so the pad product is +0·+0).
//   3. For each element, acc starts at +0.0f and, for pair p = 0, 1, … in order, does what
//      vdpbf16ps does per lane (Intel SDM; measured on Zen 4, see REPORT.md):
//         acc = FTZ(RNE(acc + a[2p+1]·b[2p+1]))     (odd element of the pair first)
//         acc = FTZ(RNE(acc + a[2p]  ·b[2p]))
//      where bf16 denormal inputs count as ±0 (DAZ), each step is one rounding of the exact
//      value (a bf16×bf16 product is exact), and a denormal result is flushed to ±0 (FTZ).
//   4. C = alpha·acc (one fp32 multiply) when beta == 0 (C is then never read: it may hold
//      NaN garbage); otherwise C = (alpha·acc) + (beta·C), two multiplies and an add, each
//      rounded (no FMA), in the thread's MXCSR mode (the default: round to nearest, no FTZ).
//
// DETERMINISM: the bits of C[i][j] depend only on row i of op(A), column j of op(B), k, alpha,
// beta and C[i][j]; never on m, n, the column range [n0,n1), the position of the row in A, the
// cache blocking, or how a caller splits rows or columns across threads. (The k sum is carried
// from one cache block to the next in fp32, which is exactly what the register holds, so the
// blocking does not enter the bits.) Nothing here splits k.
//
// MEMORY: no function allocates; the caller gives scratch. No alignment is required of any
// pointer. Strides are in elements (floats), ≥ the row width.
//
// CPU: the products need AVX512F/VL/BW/DQ and AVX512_BF16; check aet_bf16_supported() first
// (calling the products on a CPU without them is undefined: illegal instruction). Packing and
// the reference are plain C and run anywhere.
#ifndef AET_BF16_GEMM_H
#define AET_BF16_GEMM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 if this CPU has AVX512F, VL, BW, DQ and AVX512_BF16 (decided once).
int aet_bf16_supported(void);

/// The width of a packed-B column panel (columns): packed B is stored as panels of this many
/// columns; column ranges that start at a multiple of it let threads pack disjoint panels.
size_t aet_bf16_panel_width(void);

/// fp32 → bf16, round to nearest even, NaN kept (quieted). The rounding of step 1 above.
uint16_t aet_bf16_round(float x);

/// Number of uint16_t elements of packed B for a (k, n) op(B).
size_t aet_bf16_packed_b_count(size_t k, size_t n);

/// Packs op(B) (k, n): b[kk·ldb + j] if trans_b == 0, b[j·ldb + kk] if trans_b != 0, into
/// `packed` (aet_bf16_packed_b_count(k, n) elements), rounding each element to bf16.
/// Layout (for reference; the products read it): panels of W = aet_bf16_panel_width() columns,
/// panel q at packed + q·ceil(k/2)·W·2, inside a panel [k/2][W][2] (pairs along k, low half the
/// even k); pad columns and the odd-k pad are zero.
void aet_bf16_pack_b(int trans_b, size_t k, size_t n, const float *b, size_t ldb, uint16_t *packed);

/// The same, but only the panels that hold columns [j0, j1) (so that threads can each pack a
/// part of one packed B; disjoint if j0, j1 are multiples of aet_bf16_panel_width()). Same
/// layout and bits as the whole call.
void aet_bf16_pack_b_range(int trans_b, size_t k, size_t n, const float *b, size_t ldb, uint16_t *packed,
                           size_t j0, size_t j1);

/// Scratch (uint16_t elements) that aet_bf16_gemm_packed needs for (m, n, k): packed panels of A
/// and, when k exceeds the cache block, an fp32 block of partial sums. Any column range of an
/// n-column product fits in this.
size_t aet_bf16_packed_scratch_count(size_t m, size_t n, size_t k);

/// Scratch (uint16_t elements) that either product needs: the above plus packed B (for the
/// one-call form aet_bf16_gemm).
size_t aet_bf16_scratch_count(size_t m, size_t n, size_t k);

/// C[:, n0:n1) = alpha·op(A)·op(B)[:, n0:n1) + beta·C[:, n0:n1), op(B) packed by aet_bf16_pack_b
/// for (k, n). op(A) is a[i·lda + kk] if trans_a == 0, a[kk·lda + i] if trans_a != 0. c points to
/// C(0,0); only columns [n0, min(n1,n)) of the m rows are read (beta ≠ 0) and written.
/// scratch: aet_bf16_packed_scratch_count(m, n, k) elements, private to the call (one per thread).
/// Threads may share `packed_b` and split either the column range, or the rows (by passing
/// a + i0·lda (or a + i0 if trans_a), c + i0·ldc and the row count): the bits are the same.
void aet_bf16_gemm_packed(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                          const uint16_t *packed_b, size_t n0, size_t n1, float beta, float *c, size_t ldc,
                          uint16_t *scratch);

/// The one-call form: packs op(B) into scratch, then aet_bf16_gemm_packed over all columns.
/// scratch: aet_bf16_scratch_count(m, n, k) elements.
void aet_bf16_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                   const float *b, size_t ldb, float beta, float *c, size_t ldc, uint16_t *scratch);

/// Scalar reference: the ARITHMETIC above written out element by element in portable C (fmaf
/// for the single roundings). Gives the same bits as the products. Slow; for tests.
void aet_bf16_gemm_reference(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                             const float *a, size_t lda, const float *b, size_t ldb, float beta,
                             float *c, size_t ldc);

/// One lane of vdpbf16ps as the reference models it: acc + a1·b1, then + a0·b0 (DAZ, FTZ, RNE).
/// a0, b0: the even (low) bf16 of the pair; a1, b1: the odd (high) one.
float aet_bf16_dot2_reference(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1);

#ifdef __cplusplus
}
#endif
#endif
