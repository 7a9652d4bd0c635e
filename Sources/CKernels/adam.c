#include "aetrain_kernels.h"
#include <math.h>

#define AET_ADAM(NAME, T, SQRT)                                                          \
    void NAME(T *restrict p, T *restrict m, T *restrict v, const T *restrict g, size_t n, \
              T b1, T b2, T step_size, T inv_sqrt_bc2, T eps) {                           \
        const T c1 = 1 - b1, c2 = 1 - b2;                                                 \
        for (size_t i = 0; i < n; i++) {                                                  \
            const T gi = g[i];                                                            \
            const T mi = b1 * m[i] + c1 * gi;                                             \
            const T vi = b2 * v[i] + c2 * gi * gi;                                        \
            m[i] = mi;                                                                    \
            v[i] = vi;                                                                    \
            p[i] -= step_size * mi / (SQRT(vi) * inv_sqrt_bc2 + eps);                     \
        }                                                                                 \
    }

AET_ADAM(aet_adam_f32, float, sqrtf)
AET_ADAM(aet_adam_f64, double, sqrt)
