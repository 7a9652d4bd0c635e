// The shared-memory gradient sum across nodes (SharedMemoryReduction.sumOverRanks): each rank adds its
// node's partial gradients over its own part of the parameters, before the sum across nodes.
#include "aetrain_kernels.h"
#include "dispatch.h"

// dst[i] = ((src[i] + src[stride + i]) + src[2·stride + i]) + …, in row order (the order the
// reduction promises). dst may be one of the rows: each element is read before it is written.
#define AET_SUM_ROWS_BODY(T)                                                                   \
    {                                                                                          \
        if (rows == 2) {                                                                       \
            const T *a = src, *b = src + stride;                                               \
            for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];                               \
            return;                                                                            \
        }                                                                                      \
        for (size_t i = 0; i < n; i++) {                                                       \
            T total = src[i];                                                                  \
            for (size_t r = 1; r < rows; r++) total += src[r * stride + i];                    \
            dst[i] = total;                                                                    \
        }                                                                                      \
    }

AET_MULTIVERSION(static void, sum_rows_f32, (float *dst, const float *src, size_t stride, size_t rows, size_t n),
                 AET_SUM_ROWS_BODY(float))
AET_MULTIVERSION(static void, sum_rows_f64, (double *dst, const double *src, size_t stride, size_t rows, size_t n),
                 AET_SUM_ROWS_BODY(double))

void aet_sum_rows_f32(float *dst, const float *src, size_t stride, size_t rows, size_t n) {
    AET_DISPATCH(sum_rows_f32, (dst, src, stride, rows, n))
}
void aet_sum_rows_f64(double *dst, const double *src, size_t stride, size_t rows, size_t n) {
    AET_DISPATCH(sum_rows_f64, (dst, src, stride, rows, n))
}
