#include "aetrain_kernels.h"
#include "dispatch.h"
#include <math.h>

// The sparse autoencoder's element-wise passes over (rows, h) activations, one pass each,
// vectorized (Swift keeps these loops scalar: its pointers may alias). Sums over rows run in
// row order, as the Swift loops did, so every variant gives the same bits.

#define AET_RELU_BODY(T)                                                                   \
    {                                                                                      \
        size_t active = 0;                                                                 \
        for (size_t i = 0; i < rows; i++) {                                                \
            T *restrict row = z + i * h;                                                   \
            for (size_t j = 0; j < h; j++) {                                               \
                const T p = row[j] + b[j];                                                 \
                const T zij = p > 0 ? p : 0;                                               \
                row[j] = zij;                                                              \
                column_sums[j] += zij;                                                     \
                active += p > 0 ? 1 : 0;                                                   \
            }                                                                              \
        }                                                                                  \
        return active;                                                                     \
    }

AET_MULTIVERSION(static size_t, relu_f32, (float *restrict z, float *restrict column_sums, const float *restrict b,
                                           size_t rows, size_t h), AET_RELU_BODY(float))
AET_MULTIVERSION(static size_t, relu_f64, (double *restrict z, double *restrict column_sums, const double *restrict b,
                                           size_t rows, size_t h), AET_RELU_BODY(double))

size_t aet_relu_bias_f32(float *z, float *column_sums, const float *b, size_t rows, size_t h) {
    AET_DISPATCH_RETURN(relu_f32, (z, column_sums, b, rows, h))
}
size_t aet_relu_bias_f64(double *z, double *column_sums, const double *b, size_t rows, size_t h) {
    AET_DISPATCH_RETURN(relu_f64, (z, column_sums, b, rows, h))
}

#define AET_RELU_BACKWARD_BODY(T)                                                          \
    {                                                                                      \
        for (size_t i = 0; i < rows; i++) {                                                \
            T *restrict gi = gz + i * h;                                                   \
            const T *restrict zi = z + i * h;                                              \
            for (size_t j = 0; j < h; j++) {                                               \
                const T gp = zi[j] > 0 ? gi[j] + l1_gradient + coefficient[j] : 0;         \
                gi[j] = gp;                                                                \
                db[j] += gp;                                                               \
            }                                                                              \
        }                                                                                  \
    }

AET_MULTIVERSION(static void, relu_backward_f32,
                 (float *restrict gz, float *restrict db, const float *restrict z, const float *restrict coefficient,
                  float l1_gradient, size_t rows, size_t h), AET_RELU_BACKWARD_BODY(float))
AET_MULTIVERSION(static void, relu_backward_f64,
                 (double *restrict gz, double *restrict db, const double *restrict z, const double *restrict coefficient,
                  double l1_gradient, size_t rows, size_t h), AET_RELU_BACKWARD_BODY(double))

void aet_relu_backward_f32(float *gz, float *db, const float *z, const float *coefficient, float l1_gradient, size_t rows, size_t h) {
    AET_DISPATCH(relu_backward_f32, (gz, db, z, coefficient, l1_gradient, rows, h))
}
void aet_relu_backward_f64(double *gz, double *db, const double *z, const double *coefficient, double l1_gradient, size_t rows, size_t h) {
    AET_DISPATCH(relu_backward_f64, (gz, db, z, coefficient, l1_gradient, rows, h))
}

// The regularizer after the allreduce, one pass over W: dW += 2η W as an FMA (what OpenBLAS's
// saxpy computes, except in the tail of each of its threads' chunks, so the result no longer
// depends on the BLAS thread count), and ‖W‖² in double over 16 fixed lanes (every
// variant and any thread count gives the same sum; w² is exact in double).
#define AET_REGULARIZER_BODY(T, FMA)                                                       \
    {                                                                                      \
        double lane[16] = {0};                                                             \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            for (size_t l = 0; l < 16; l++) {                                              \
                const T w = W[i + l];                                                      \
                dW[i + l] = FMA(two_eta, w, dW[i + l]);                                    \
                lane[l] += (double)w * (double)w;                                          \
            }                                                                              \
        }                                                                                  \
        for (size_t l = 0; i < n; i++, l++) {                                              \
            const T w = W[i];                                                              \
            dW[i] = FMA(two_eta, w, dW[i]);                                                \
            lane[l] += (double)w * (double)w;                                              \
        }                                                                                  \
        double sum = 0;                                                                    \
        for (size_t l = 0; l < 16; l++) sum += lane[l];                                    \
        return sum;                                                                        \
    }

AET_MULTIVERSION(static double, regularizer_f32, (float *restrict dW, const float *restrict W, float two_eta, size_t n),
                 AET_REGULARIZER_BODY(float, fmaf))
AET_MULTIVERSION(static double, regularizer_f64, (double *restrict dW, const double *restrict W, double two_eta, size_t n),
                 AET_REGULARIZER_BODY(double, fma))

double aet_regularizer_f32(float *dW, const float *W, float two_eta, size_t n) {
    AET_DISPATCH_RETURN(regularizer_f32, (dW, W, two_eta, n))
}
double aet_regularizer_f64(double *dW, const double *W, double two_eta, size_t n) {
    AET_DISPATCH_RETURN(regularizer_f64, (dW, W, two_eta, n))
}

// ‖W‖² alone, in the regularizer's lanes (the same bits as its return value): the shared-memory
// step adds 2ηW per rank over its own part of dW, but reports reg over all of W.
#define AET_SQUARED_NORM_BODY(T)                                                           \
    {                                                                                      \
        double lane[16] = {0};                                                             \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            for (size_t l = 0; l < 16; l++) lane[l] += (double)W[i + l] * (double)W[i + l]; \
        }                                                                                  \
        for (size_t l = 0; i < n; i++, l++) lane[l] += (double)W[i] * (double)W[i];        \
        double sum = 0;                                                                    \
        for (size_t l = 0; l < 16; l++) sum += lane[l];                                    \
        return sum;                                                                        \
    }

AET_MULTIVERSION(static double, squared_norm_f32, (const float *restrict W, size_t n), AET_SQUARED_NORM_BODY(float))
AET_MULTIVERSION(static double, squared_norm_f64, (const double *restrict W, size_t n), AET_SQUARED_NORM_BODY(double))

double aet_squared_norm_f32(const float *W, size_t n) { AET_DISPATCH_RETURN(squared_norm_f32, (W, n)) }
double aet_squared_norm_f64(const double *W, size_t n) { AET_DISPATCH_RETURN(squared_norm_f64, (W, n)) }
