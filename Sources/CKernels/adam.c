#include "aetrain_kernels.h"
#include "dispatch.h"
#include <math.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

// Adam's update, PyTorch's rule (Adam.swift has the maths), in plain functions:
//
//   adam_f32          the loop, for any gradient shape (inlined, so each call below is a loop of its own)
//   adam_f32_shapes   the shapes the callers use, each with constant rows and regularize
//   adam_f32_avx512, adam_f32_avx2, adam_f32_base
//                     the same, compiled for each instruction set (dispatch.h)
//   aet_adam_sum_f32  the entry: denormals flushed, the widest instruction set the CPU has
//
// and the same for double. Element-wise only, with no contraction into FMA (dispatch.h): every
// instruction set gives the same bits as the SSE2 baseline.

// Late in training many gradients are tiny and g² underflows to a denormal, which x86 handles
// far more slowly than a normal number. The loop runs with denormals flushed to zero (FTZ and
// DAZ), then restores the caller's mode. Numerically harmless: a moment below 1.2e-38 moves a
// weight by under 1e-30 (eps = 1e-8).
static inline unsigned flush_denormals(void) {
#if defined(__x86_64__)
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040);
    return saved;
#else
    return 0;
#endif
}

static inline void restore_denormals(unsigned saved) {
#if defined(__x86_64__)
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

// One Adam step over n elements. Element i's gradient is the sum of `rows` gradients `stride`
// apart, added in row order (one row: g itself), then, if `regularize`, 2η·p added by an
// explicit FMA (what the regularizer kernel does to dW).
static inline __attribute__((always_inline)) void
adam_f32(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, size_t stride, size_t rows,
         size_t n, int regularize, float two_eta, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps) {
    const float c1 = 1 - b1, c2 = 1 - b2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        for (size_t r = 1; r < rows; r++) gi += g[r * stride + i];
        if (regularize) gi = fmaf(two_eta, p[i], gi);
        const float mi = b1 * m[i] + c1 * gi;
        const float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

static inline __attribute__((always_inline)) void
adam_f64(double *restrict p, double *restrict m, double *restrict v, const double *restrict g, size_t stride, size_t rows,
         size_t n, int regularize, double two_eta, double b1, double b2, double step_size, double inv_sqrt_bc2, double eps) {
    const double c1 = 1 - b1, c2 = 1 - b2;
    for (size_t i = 0; i < n; i++) {
        double gi = g[i];
        for (size_t r = 1; r < rows; r++) gi += g[r * stride + i];
        if (regularize) gi = fma(two_eta, p[i], gi);
        const double mi = b1 * m[i] + c1 * gi;
        const double vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (sqrt(vi) * inv_sqrt_bc2 + eps);
    }
}

// The gradient shapes the callers use, each a loop of its own with constant rows and
// regularize, so that it vectorizes: one gradient (Adam.step; the shared-memory step across
// nodes, whose sum is done), two ranks' (the common shared-memory case), any other count.
static inline __attribute__((always_inline)) void
adam_f32_shapes(float *p, float *m, float *v, const float *g, size_t stride, size_t rows, size_t n, int regularize,
                float two_eta, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps) {
    if (rows == 1 && regularize) adam_f32(p, m, v, g, stride, 1, n, 1, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (rows == 1) adam_f32(p, m, v, g, stride, 1, n, 0, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (rows == 2 && regularize) adam_f32(p, m, v, g, stride, 2, n, 1, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (rows == 2) adam_f32(p, m, v, g, stride, 2, n, 0, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (regularize) adam_f32(p, m, v, g, stride, rows, n, 1, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else adam_f32(p, m, v, g, stride, rows, n, 0, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
}

static inline __attribute__((always_inline)) void
adam_f64_shapes(double *p, double *m, double *v, const double *g, size_t stride, size_t rows, size_t n, int regularize,
                double two_eta, double b1, double b2, double step_size, double inv_sqrt_bc2, double eps) {
    if (rows == 1 && regularize) adam_f64(p, m, v, g, stride, 1, n, 1, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (rows == 1) adam_f64(p, m, v, g, stride, 1, n, 0, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (rows == 2 && regularize) adam_f64(p, m, v, g, stride, 2, n, 1, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (rows == 2) adam_f64(p, m, v, g, stride, 2, n, 0, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else if (regularize) adam_f64(p, m, v, g, stride, rows, n, 1, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
    else adam_f64(p, m, v, g, stride, rows, n, 0, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
}

#if defined(__x86_64__) && defined(__clang__)
// The same shapes compiled for AVX-512 and for AVX2 (the package builds for the SSE2 baseline).
__attribute__((target(AET_TARGET_AVX512))) static void
adam_f32_avx512(float *p, float *m, float *v, const float *g, size_t stride, size_t rows, size_t n, int regularize,
                float two_eta, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps) {
    adam_f32_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
}

__attribute__((target(AET_TARGET_AVX2))) static void
adam_f32_avx2(float *p, float *m, float *v, const float *g, size_t stride, size_t rows, size_t n, int regularize,
              float two_eta, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps) {
    adam_f32_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
}

__attribute__((target(AET_TARGET_AVX512))) static void
adam_f64_avx512(double *p, double *m, double *v, const double *g, size_t stride, size_t rows, size_t n, int regularize,
                double two_eta, double b1, double b2, double step_size, double inv_sqrt_bc2, double eps) {
    adam_f64_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
}

__attribute__((target(AET_TARGET_AVX2))) static void
adam_f64_avx2(double *p, double *m, double *v, const double *g, size_t stride, size_t rows, size_t n, int regularize,
              double two_eta, double b1, double b2, double step_size, double inv_sqrt_bc2, double eps) {
    adam_f64_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
}
#endif

void aet_adam_sum_f32(float *p, float *m, float *v, const float *g, size_t stride, size_t rows, size_t n,
                      int regularize, float two_eta, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps) {
    unsigned saved = flush_denormals();
#if defined(__x86_64__) && defined(__clang__)
    switch (aet_isa_level()) {
    case 2: adam_f32_avx512(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps); break;
    case 1: adam_f32_avx2(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps); break;
    default: adam_f32_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps); break;
    }
#else
    adam_f32_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
#endif
    restore_denormals(saved);
}

void aet_adam_sum_f64(double *p, double *m, double *v, const double *g, size_t stride, size_t rows, size_t n,
                      int regularize, double two_eta, double b1, double b2, double step_size, double inv_sqrt_bc2, double eps) {
    unsigned saved = flush_denormals();
#if defined(__x86_64__) && defined(__clang__)
    switch (aet_isa_level()) {
    case 2: adam_f64_avx512(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps); break;
    case 1: adam_f64_avx2(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps); break;
    default: adam_f64_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps); break;
    }
#else
    adam_f64_shapes(p, m, v, g, stride, rows, n, regularize, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps);
#endif
    restore_denormals(saved);
}

// Plain Adam: one gradient, no regularizer.
void aet_adam_f32(float *p, float *m, float *v, const float *g, size_t n,
                  float b1, float b2, float step_size, float inv_sqrt_bc2, float eps) {
    aet_adam_sum_f32(p, m, v, g, 0, 1, n, 0, 0, b1, b2, step_size, inv_sqrt_bc2, eps);
}

void aet_adam_f64(double *p, double *m, double *v, const double *g, size_t n,
                  double b1, double b2, double step_size, double inv_sqrt_bc2, double eps) {
    aet_adam_sum_f64(p, m, v, g, 0, 1, n, 0, 0, b1, b2, step_size, inv_sqrt_bc2, eps);
}

void aet_flush_denormals(void) {
#if defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}
