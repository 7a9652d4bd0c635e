#include "aetrain_kernels.h"
#include "dispatch.h"
#include <math.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

// Late in training many gradients are tiny and g² underflows to a denormal, which x86 handles
// about 100 times slower than a normal number; that alone can make this loop 4× slower. The
// loop runs with denormals flushed to zero (FTZ and DAZ), then restores the caller's mode.
// Numerically harmless: a moment below 1.2e-38 moves a weight by under 1e-30 (eps = 1e-8).
#if defined(__x86_64__)
#define AET_FLUSH_DENORMALS_BEGIN unsigned int saved_csr = _mm_getcsr(); _mm_setcsr(saved_csr | 0x8040);
#define AET_FLUSH_DENORMALS_END _mm_setcsr(saved_csr);
#else
#define AET_FLUSH_DENORMALS_BEGIN
#define AET_FLUSH_DENORMALS_END
#endif

// The loop body, compiled once per instruction set (dispatch.h). Element-wise only, with no
// contraction into FMA: every variant gives the same bits as the SSE2 baseline. GRADIENT is
// element i's gradient; if REGULARIZE, 2η·p is added to it with an explicit FMA first (what the
// regularizer kernel does to dW).
#define AET_ADAM_UPDATE_BODY(T, SQRT, FMA, GRADIENT, REGULARIZE)                          \
    {                                                                                     \
        const T c1 = 1 - b1, c2 = 1 - b2;                                                 \
        for (size_t i = 0; i < n; i++) {                                                  \
            T gi = GRADIENT;                                                              \
            if (REGULARIZE) gi = FMA(two_eta, p[i], gi);                                  \
            const T mi = b1 * m[i] + c1 * gi;                                             \
            const T vi = b2 * v[i] + c2 * gi * gi;                                        \
            m[i] = mi;                                                                    \
            v[i] = vi;                                                                    \
            p[i] -= step_size * mi / (SQRT(vi) * inv_sqrt_bc2 + eps);                     \
        }                                                                                 \
    }
#define AET_NO_FMA(a, b, c) (c)
#define AET_ADAM_BODY(T, SQRT) AET_ADAM_UPDATE_BODY(T, SQRT, AET_NO_FMA, g[i], 0)

#define AET_ADAM(NAME, T, SQRT)                                                                        \
    AET_MULTIVERSION(static void, NAME##_loop,                                                         \
                     (T *restrict p, T *restrict m, T *restrict v, const T *restrict g, size_t n,      \
                      T b1, T b2, T step_size, T inv_sqrt_bc2, T eps),                                 \
                     AET_ADAM_BODY(T, SQRT))                                                           \
    void NAME(T *restrict p, T *restrict m, T *restrict v, const T *restrict g, size_t n,              \
              T b1, T b2, T step_size, T inv_sqrt_bc2, T eps) {                                        \
        AET_FLUSH_DENORMALS_BEGIN                                                                      \
        AET_DISPATCH(NAME##_loop, (p, m, v, g, n, b1, b2, step_size, inv_sqrt_bc2, eps));              \
        AET_FLUSH_DENORMALS_END                                                                        \
    }

AET_ADAM(aet_adam_f32, float, sqrtf)
AET_ADAM(aet_adam_f64, double, sqrt)

// The shared-memory step's update (ParameterStore.adamStep): the ranks' gradients summed in
// rank order, 2η·p added if `regularize`, then Adam: the same bits as the three passes, in one.
// Two ranks (the common case) get loops of their own, so that each vectorizes; more ranks add
// their rows in an inner loop.
static inline float aet_sum_rows_at_f32(const float *g, size_t stride, size_t rows, size_t i) {
    float gi = g[i];
    for (size_t r = 1; r < rows; r++) gi += g[r * stride + i];
    return gi;
}
static inline double aet_sum_rows_at_f64(const double *g, size_t stride, size_t rows, size_t i) {
    double gi = g[i];
    for (size_t r = 1; r < rows; r++) gi += g[r * stride + i];
    return gi;
}

#define AET_ADAM_SUM_VARIANT(NAME, T, SQRT, FMA, GRADIENT, REGULARIZE)                                         \
    AET_MULTIVERSION(static void, NAME,                                                                        \
                     (T *restrict p, T *restrict m, T *restrict v, const T *restrict g, size_t stride,        \
                      size_t rows, size_t n, T two_eta, T b1, T b2, T step_size, T inv_sqrt_bc2, T eps),      \
                     AET_ADAM_UPDATE_BODY(T, SQRT, FMA, GRADIENT, REGULARIZE))

#define AET_ADAM_SUM(NAME, T, SQRT, FMA, SUM_AT)                                                                \
    AET_ADAM_SUM_VARIANT(NAME##_two, T, SQRT, FMA, g[i] + g[stride + i], 0)                                    \
    AET_ADAM_SUM_VARIANT(NAME##_two_reg, T, SQRT, FMA, g[i] + g[stride + i], 1)                                \
    AET_ADAM_SUM_VARIANT(NAME##_rows, T, SQRT, FMA, SUM_AT(g, stride, rows, i), 0)                             \
    AET_ADAM_SUM_VARIANT(NAME##_rows_reg, T, SQRT, FMA, SUM_AT(g, stride, rows, i), 1)                         \
    void NAME(T *p, T *m, T *v, const T *g, size_t stride, size_t rows, size_t n, int regularize, T two_eta,   \
              T b1, T b2, T step_size, T inv_sqrt_bc2, T eps) {                                                \
        AET_FLUSH_DENORMALS_BEGIN                                                                               \
        if (rows == 2 && regularize) {                                                                          \
            AET_DISPATCH(NAME##_two_reg, (p, m, v, g, stride, rows, n, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps)); \
        } else if (rows == 2) {                                                                                 \
            AET_DISPATCH(NAME##_two, (p, m, v, g, stride, rows, n, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps)); \
        } else if (regularize) {                                                                                \
            AET_DISPATCH(NAME##_rows_reg, (p, m, v, g, stride, rows, n, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps)); \
        } else {                                                                                                \
            AET_DISPATCH(NAME##_rows, (p, m, v, g, stride, rows, n, two_eta, b1, b2, step_size, inv_sqrt_bc2, eps)); \
        }                                                                                                       \
        AET_FLUSH_DENORMALS_END                                                                                 \
    }

AET_ADAM_SUM(aet_adam_sum_f32, float, sqrtf, fmaf, aet_sum_rows_at_f32)
AET_ADAM_SUM(aet_adam_sum_f64, double, sqrt, fma, aet_sum_rows_at_f64)

void aet_flush_denormals(void) {
#if defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}
