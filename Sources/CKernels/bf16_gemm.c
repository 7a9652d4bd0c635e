// bf16 GEMM with fp32 accumulation on vdpbf16ps (AVX512_BF16). Contract: bf16_gemm.h.
//
// Structure (GotoBLAS-like, with the k sum carried in fp32 so that blocking never enters the
// bits):
//   B is packed once into column panels of NR = 16·NV columns, pairs along k: [k/2][NR] words
//     of two bf16 (low half = even k). A panel is read by the micro-kernel as NV zmm loads per
//     k pair.
//   A is packed per (MC rows × KC k) block into tiles of MR rows, [kc/2][MR] words, so that the
//     micro-kernel broadcasts one 32-bit word (a pair of bf16) per row and k pair (folded into
//     vdpbf16ps as an embedded {1to16} broadcast).
//   Loops: rows in blocks of MC → k in blocks of KC (A block packed, stays in L2) → B panels of
//     the column range (KC×NR panel: L1) → MR-row tiles → micro-kernel MR × NR accumulators,
//     k pairs in order. Between k blocks the accumulators go to an fp32 scratch block (exact:
//     that is what the register holds), so every element sees the same chain of vdpbf16ps
//     steps whatever the blocking, m, n or column range. alpha/beta are applied once, after
//     the last k block.
#pragma clang fp contract(off)
#include "bf16_gemm.h"
#include <float.h>
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma")))

// Register blocking: MR rows × NV zmm (16 columns each) of accumulators. 8 × 3 = 24 of the 32
// zmm registers, + 3 for B, 1 spare (broadcasts come from memory). Chosen by measurement
// (REPORT.md).
#ifndef AET_BF16_MR
#define AET_BF16_MR 8
#endif
#ifndef AET_BF16_NV
#define AET_BF16_NV 3
#endif
// Cache blocking: KC k (even) per A block; MC rows (multiple of MR) per A block.
#ifndef AET_BF16_KC
#define AET_BF16_KC 1024
#endif
#ifndef AET_BF16_MC
#define AET_BF16_MC 96
#endif
#define MR AET_BF16_MR
#define NV AET_BF16_NV
#define NR (16 * NV)
#define KC AET_BF16_KC
#define MC AET_BF16_MC
_Static_assert(KC % 2 == 0 && KC > 0, "KC must be even");
_Static_assert(MC % MR == 0, "MC must be a multiple of MR");
_Static_assert(MR <= 16 && NV <= 4, "tile too large");

// ---------------------------------------------------------------------------------------------
// Rounding and the scalar reference (portable C).

uint16_t aet_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); // NaN: quiet, keep sign
    u += 0x7fffu + ((u >> 16) & 1u);                                            // RNE on the low 16 bits
    return (uint16_t)(u >> 16);
}

static float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float daz(float x) { return (fabsf(x) < FLT_MIN) ? copysignf(0.0f, x) : x; }

float aet_bf16_dot2_reference(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1) {
    acc = daz(acc);
    acc = daz(fmaf(daz(bf16_to_float(a1)), daz(bf16_to_float(b1)), acc)); // odd pair element first
    acc = daz(fmaf(daz(bf16_to_float(a0)), daz(bf16_to_float(b0)), acc)); // (daz doubles as FTZ)
    return acc;
}

void aet_bf16_gemm_reference(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                             const float *a, size_t lda, const float *b, size_t ldb, float beta,
                             float *c, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t kk = 0; kk < k; kk += 2) {
                float a0 = trans_a ? a[kk * lda + i] : a[i * lda + kk];
                float b0 = trans_b ? b[j * ldb + kk] : b[kk * ldb + j];
                uint16_t a1 = 0, b1 = 0;
                if (kk + 1 < k) {
                    a1 = aet_bf16_round(trans_a ? a[(kk + 1) * lda + i] : a[i * lda + kk + 1]);
                    b1 = aet_bf16_round(trans_b ? b[j * ldb + kk + 1] : b[(kk + 1) * ldb + j]);
                }
                acc = aet_bf16_dot2_reference(acc, aet_bf16_round(a0), a1, aet_bf16_round(b0), b1);
            }
            float t = alpha * acc;
            if (beta != 0.0f) t = t + beta * c[i * ldc + j];
            c[i * ldc + j] = t;
        }
}

// ---------------------------------------------------------------------------------------------
// Sizes.

static size_t round_up(size_t x, size_t r) { return (x + r - 1) / r * r; }
static size_t min_size(size_t x, size_t y) { return x < y ? x : y; }

size_t aet_bf16_panel_width(void) { return NR; }

size_t aet_bf16_packed_b_count(size_t k, size_t n) { return round_up(n, NR) * round_up(k, 2); }

// Scratch of the packed product: [64-byte slack][A block: mce × kcap bf16][slack][partials:
// mce × width fp32, only if k > KC].
static size_t a_block_rows(size_t m) { return min_size(MC, round_up(m, MR)); }
static size_t a_block_k(size_t k) { return min_size(KC, round_up(k, 2)); }

size_t aet_bf16_packed_scratch_count(size_t m, size_t n, size_t k) {
    size_t count = 32 + a_block_rows(m) * a_block_k(k);
    if (k > KC) count += 32 + 2 * a_block_rows(m) * round_up(n, NR);
    return count;
}

size_t aet_bf16_scratch_count(size_t m, size_t n, size_t k) {
    return 32 + aet_bf16_packed_b_count(k, n) + aet_bf16_packed_scratch_count(m, n, k);
}

static void *align64(void *p) { return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

int aet_bf16_supported(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    static int supported = -1; // benign race: every thread computes the same value
    if (supported < 0) {
        __builtin_cpu_init();
        supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
                 && __builtin_cpu_supports("avx512bf16");
    }
    return supported;
#else
    return 0;
#endif
}

#if defined(__x86_64__)
// ---------------------------------------------------------------------------------------------
// Packing (AVX-512). Both A and B are packed into "pair panels" of W columns (W = MR for A,
// NR for B): dst[p·W + w] = bf16(x[2p][w]) | bf16(x[2p+1][w]) << 16, zero beyond the valid
// columns and beyond kc. Two source layouts: k-major (consecutive columns contiguous: A
// transposed, B not) and column-major (consecutive k contiguous: A not transposed, B transposed).

// 16 floats → bf16 (RNE, NaN quieted) in the low half of each 32-bit lane (high half zero).
TARGET static inline __m512i round16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

static inline __mmask16 mask_first(size_t count) { // lanes [0, count), count clamped to 16
    return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1u);
}

// k-major source: element (kk, w) at src[kk·ld + w]; ncols valid columns, packed as
// ceil(ncols/W) consecutive panels of W columns ([kp][W] each, the last zero-padded); kc rows of
// k. The k loop is outside the panel loop so that each source row is read once, contiguously
// (the rows are far apart when A is transposed: one row of Z is 8192 floats).
TARGET static void pack_kmajor(const float *src, size_t ld, size_t ncols, size_t W, size_t kc, uint32_t *dst) {
    size_t kp = (kc + 1) / 2;
    size_t panels = (ncols + W - 1) / W;
    for (size_t p = 0; p < kp; p++) {
        const float *r0 = src + 2 * p * ld;
        int has1 = 2 * p + 1 < kc;
        for (size_t q = 0; q < panels; q++)
            for (size_t w = 0; w < W; w += 16) {
                size_t col = q * W + w;
                __mmask16 m = ncols > col ? mask_first(ncols - col) : 0;
                if (W - w < 16) m &= mask_first(W - w);
                __mmask16 mw = mask_first(W - w);
                __m512i lo = round16(_mm512_maskz_loadu_ps(m, r0 + col));
                __m512i hi = has1 ? round16(_mm512_maskz_loadu_ps(m, r0 + ld + col)) : _mm512_setzero_si512();
                _mm512_mask_storeu_epi32(dst + (q * kp + p) * W + w, mw, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
            }
    }
}

// r[0..15] (16 rows of 16 words) transposed in place: afterwards r[j] holds word j of every row,
// row 0 first. Unpacks within 128-bit lanes (4×4 blocks), then lane shuffles.
TARGET static inline void transpose16(__m512i r[16]) {
    __m512i a[16], b[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);     // lane L: r0[4L], r1[4L], r0[4L+1], r1[4L+1]
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]); //         r0[4L+2], r1[4L+2], r0[4L+3], r1[4L+3]
    }
    for (int i = 0; i < 4; i++) { // b[4i+j], lane L: rows 4i … 4i+3 of word 4L+j
        b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    for (int j = 0; j < 4; j++) { // word 4L+j: lane L of b[j], b[4+j], b[8+j], b[12+j]
        __m512i c01 = _mm512_shuffle_i32x4(b[j], b[4 + j], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i c23 = _mm512_shuffle_i32x4(b[j], b[4 + j], _MM_SHUFFLE(3, 2, 3, 2));
        __m512i d01 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i d23 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], _MM_SHUFFLE(3, 2, 3, 2));
        r[j] = _mm512_shuffle_i32x4(c01, d01, _MM_SHUFFLE(2, 0, 2, 0));
        r[4 + j] = _mm512_shuffle_i32x4(c01, d01, _MM_SHUFFLE(3, 1, 3, 1));
        r[8 + j] = _mm512_shuffle_i32x4(c23, d23, _MM_SHUFFLE(2, 0, 2, 0));
        r[12 + j] = _mm512_shuffle_i32x4(c23, d23, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

// Column-major source: element (kk, w) at src[w·ld + kk]. Blocks of up to 16
// columns × 16 k pairs: each column's 32 floats rounded and paired into 16 words (one row of the
// block), the block transposed in registers, and each pair's words stored contiguously.
TARGET static void pack_colmajor(const float *src, size_t ld, size_t ncols, size_t W, size_t kc, uint32_t *dst) {
    size_t kp = (kc + 1) / 2;
    // word index 2i of (v0, v1) → the bf16 of element i, i = 0..31
    const __m512i pick = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32,
                                          30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (size_t w0 = 0; w0 < W; w0 += 16) {
        size_t g = W - w0 < 16 ? W - w0 : 16; // columns in this block (16, or 8 at the end)
        for (size_t p0 = 0; p0 < kp; p0 += 16) {
            size_t k0 = 2 * p0;
            __mmask16 m0 = kc > k0 ? mask_first(kc - k0) : 0;
            __mmask16 m1 = kc > k0 + 16 ? mask_first(kc - k0 - 16) : 0;
            __m512i r[16];
            for (size_t c = 0; c < 16; c++) {
                if (c >= g || w0 + c >= ncols) { r[c] = _mm512_setzero_si512(); continue; } // pad column: zero
                const float *row = src + (w0 + c) * ld;
                __m512i v0 = round16(_mm512_maskz_loadu_ps(m0, row + k0));
                __m512i v1 = round16(_mm512_maskz_loadu_ps(m1, row + k0 + 16));
                r[c] = _mm512_permutex2var_epi16(v0, pick, v1);
            }
            transpose16(r);
            size_t np = kp - p0 < 16 ? kp - p0 : 16;
            __mmask16 mg = mask_first(g);
            for (size_t p = 0; p < np; p++) _mm512_mask_storeu_epi32(dst + (p0 + p) * W + w0, mg, r[p]);
        }
    }
}

// op(X) (rows × cols) panel: columns [c0, c0+ncols) of a (kc × ·) slab starting at k = k0.
// trans == 0: element (kk, j) at x[kk·ld + j] (k-major); else at x[j·ld + kk].
TARGET static void pack_panel(int colmajor, const float *x, size_t ld, size_t k0, size_t c0, size_t ncols,
                              size_t W, size_t kc, uint32_t *dst) {
    if (colmajor) pack_colmajor(x + c0 * ld + k0, ld, ncols, W, kc, dst);
    else pack_kmajor(x + k0 * ld + c0, ld, ncols, W, kc, dst);
}

TARGET static void pack_b_avx512(int trans_b, size_t k, size_t n, const float *b, size_t ldb, uint16_t *packed,
                                 size_t j0, size_t j1) {
    size_t kp = (k + 1) / 2;
    for (size_t q = j0 / NR; q * NR < j1; q++) {
        size_t c0 = q * NR;
        pack_panel(trans_b != 0, b, ldb, 0, c0, min_size(NR, n - c0), NR, k, (uint32_t *)packed + q * kp * NR);
    }
}

// ---------------------------------------------------------------------------------------------
// Micro-kernel: acc (MR × NR) over kp pairs; A tile [kp][MR] words, B panel [kp][NR] words.
// first: acc starts at +0, else loaded from part (row stride ldp); last: C = alpha·acc (+ beta·C)
// for rows < mr and the columns in cmask, else acc stored to part (all MR rows, NR columns).
TARGET static inline void micro_kernel(size_t kp, const uint32_t *restrict A, const uint32_t *restrict B,
                                       size_t mr, uint64_t cmask, int first, int last, float *part, size_t ldp,
                                       float *c, size_t ldc, float alpha, float beta) {
    __m512 acc[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++)
            acc[r][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + r * ldp + 16 * v);
    for (size_t p = 0; p < kp; p++) {
        __m512i bv[NV];
        for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_si512(B + p * NR + 16 * v);
        for (int r = 0; r < MR; r++) {
            __m512i av = _mm512_set1_epi32((int)A[p * MR + r]);
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)bv[v], (__m512bh)av);
        }
    }
    if (!last) {
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(part + r * ldp + 16 * v, acc[r][v]);
        return;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
        if ((size_t)r >= mr) break;
        for (int v = 0; v < NV; v++) {
            __mmask16 m = (__mmask16)(cmask >> (16 * v));
            if (!m) continue;
            __m512 x = _mm512_mul_ps(va, acc[r][v]);
            if (beta != 0.0f) x = _mm512_add_ps(x, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, c + r * ldc + 16 * v)));
            _mm512_mask_storeu_ps(c + r * ldc + 16 * v, m, x);
        }
    }
}

TARGET static void gemm_packed_avx512(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a,
                                      size_t lda, const uint16_t *packed_b, size_t n0, size_t n1, float beta,
                                      float *c, size_t ldc, uint16_t *scratch) {
    if (n1 > n) n1 = n;
    if (m == 0 || n0 >= n1) return;
    size_t kp_all = (k + 1) / 2;
    size_t q0 = n0 / NR, q1 = (n1 + NR - 1) / NR; // panels holding [n0, n1)
    size_t width = (q1 - q0) * NR;                 // partial block row stride
    uint32_t *apack = align64(scratch);
    float *part = align64(apack + a_block_rows(m) * a_block_k(k) / 2);
    const uint32_t *pb = (const uint32_t *)packed_b;
    for (size_t i0 = 0; i0 < m; i0 += MC) {
        size_t mc = min_size(MC, m - i0);
        size_t pc = 0;
        do { // at least once: k == 0 still writes alpha·0 (+ beta·C)
            size_t kc = min_size(KC, k - pc), kp = (kc + 1) / 2;
            int first = pc == 0, last = pc + KC >= k;
            if (trans_a) // all tiles of the block in one pass over the rows of the stored A
                pack_panel(0, a, lda, pc, i0, mc, MR, kc, apack);
            else
                for (size_t t = 0; t < mc; t += MR)
                    pack_panel(1, a, lda, pc, i0 + t, min_size(MR, mc - t), MR, kc, apack + t * kp);
            for (size_t q = q0; q < q1; q++) {
                size_t j_lo = q * NR > n0 ? q * NR : n0, j_hi = min_size(q * NR + NR, n1);
                uint64_t cmask = (j_hi - j_lo == 64 ? ~0ull : ((1ull << (j_hi - j_lo)) - 1)) << (j_lo - q * NR);
                const uint32_t *bp = pb + (q * kp_all + pc / 2) * NR;
                for (size_t t = 0; t < mc; t += MR)
                    micro_kernel(kp, apack + t * kp, bp, min_size(MR, mc - t), cmask, first, last,
                                 part + t * width + (q - q0) * NR, width, c + (i0 + t) * ldc + q * NR, ldc, alpha,
                                 beta);
            }
            pc += KC;
        } while (pc < k);
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// Public entry points.

void aet_bf16_pack_b_range(int trans_b, size_t k, size_t n, const float *b, size_t ldb, uint16_t *packed,
                           size_t j0, size_t j1) {
    if (j1 > n) j1 = n;
    if (j0 >= j1) return;
#if defined(__x86_64__)
    if (aet_bf16_supported()) {
        pack_b_avx512(trans_b, k, n, b, ldb, packed, j0, j1);
        return;
    }
#endif
    size_t kp = (k + 1) / 2;
    for (size_t q = j0 / NR; q * NR < j1; q++)
        for (size_t p = 0; p < kp; p++)
            for (size_t w = 0; w < NR; w++) {
                size_t j = q * NR + w, kk = 2 * p;
                uint16_t lo = 0, hi = 0;
                if (j < n) {
                    lo = aet_bf16_round(trans_b ? b[j * ldb + kk] : b[kk * ldb + j]);
                    if (kk + 1 < k) hi = aet_bf16_round(trans_b ? b[j * ldb + kk + 1] : b[(kk + 1) * ldb + j]);
                }
                packed[((q * kp + p) * NR + w) * 2] = lo;
                packed[((q * kp + p) * NR + w) * 2 + 1] = hi;
            }
}

void aet_bf16_pack_b(int trans_b, size_t k, size_t n, const float *b, size_t ldb, uint16_t *packed) {
    aet_bf16_pack_b_range(trans_b, k, n, b, ldb, packed, 0, n);
}

void aet_bf16_gemm_packed(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                          const uint16_t *packed_b, size_t n0, size_t n1, float beta, float *c, size_t ldc,
                          uint16_t *scratch) {
#if defined(__x86_64__)
    gemm_packed_avx512(trans_a, m, n, k, alpha, a, lda, packed_b, n0, n1, beta, c, ldc, scratch);
#else
    (void)trans_a; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)packed_b;
    (void)n0; (void)n1; (void)beta; (void)c; (void)ldc; (void)scratch;
#endif
}

void aet_bf16_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                   const float *b, size_t ldb, float beta, float *c, size_t ldc, uint16_t *scratch) {
    uint16_t *packed = align64(scratch);
    aet_bf16_pack_b(trans_b, k, n, b, ldb, packed);
    aet_bf16_gemm_packed(trans_a, m, n, k, alpha, a, lda, packed, 0, n, beta, c, ldc,
                         packed + aet_bf16_packed_b_count(k, n));
}
