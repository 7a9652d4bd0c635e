// Element-wise kernels that Swift does not vectorize (square roots and divisions: Swift's
// sqrt keeps a libm fallback that blocks the loop vectorizer). Compiled with -O3.
#ifndef AETRAIN_KERNELS_H
#define AETRAIN_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include "bf16_gemm.h"

/// One Adam step, PyTorch's rule, over n parameters (see Adam.swift for the maths):
///   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;  p -= step_size · m / (sqrt(v) · inv_sqrt_bc2 + eps)
void aet_adam_f32(float *p, float *m, float *v, const float *g, size_t n,
                  float b1, float b2, float step_size, float inv_sqrt_bc2, float eps);
void aet_adam_f64(double *p, double *m, double *v, const double *g, size_t n,
                  double b1, double b2, double step_size, double inv_sqrt_bc2, double eps);

/// Adam over the sum of `rows` gradients (`stride` apart, added in row order), with 2η·p added
/// by FMA first if `regularize`: the shared-memory step's sum, regularizer and Adam in one pass.
void aet_adam_sum_f32(float *p, float *m, float *v, const float *g, size_t stride, size_t rows, size_t n,
                      int regularize, float two_eta, float b1, float b2, float step_size, float inv_sqrt_bc2, float eps);
void aet_adam_sum_f64(double *p, double *m, double *v, const double *g, size_t stride, size_t rows, size_t n,
                      int regularize, double two_eta, double b1, double b2, double step_size, double inv_sqrt_bc2, double eps);

/// Encoder forward after the product, in place over z (rows, h) holding P = X V:
///   z = relu(P + 1 bᵀ);  column_sums[j] += Σ_i z_ij (row order).  Returns #{P + b > 0}.
size_t aet_relu_bias_f32(float *z, float *column_sums, const float *b, size_t rows, size_t h);
size_t aet_relu_bias_f64(double *z, double *column_sums, const double *b, size_t rows, size_t h);

/// Encoder backward through the ReLU, in place over gz (rows, h) holding G Wᵀ:
///   gz = [z > 0] ⊙ ((gz + l1_gradient) + coefficient_j);  db[j] += Σ_i gz_ij (row order).
void aet_relu_backward_f32(float *gz, float *db, const float *z, const float *coefficient, float l1_gradient, size_t rows, size_t h);
void aet_relu_backward_f64(double *gz, double *db, const double *z, const double *coefficient, double l1_gradient, size_t rows, size_t h);

/// The regularizer, one pass: dW = fma(two_eta, W, dW) elementwise; returns ‖W‖² (double, 16 fixed lanes).
double aet_regularizer_f32(float *dW, const float *W, float two_eta, size_t n);
double aet_regularizer_f64(double *dW, const double *W, double two_eta, size_t n);

/// ‖W‖² alone, in the regularizer's 16 lanes (the same value as its return).
double aet_squared_norm_f32(const float *W, size_t n);
double aet_squared_norm_f64(const double *W, size_t n);

/// dst = Σ_r src[r·stride …] over `rows` rows of n elements, added in row order; dst may be a row.
void aet_sum_rows_f32(float *dst, const float *src, size_t stride, size_t rows, size_t n);
void aet_sum_rows_f64(double *dst, const double *src, size_t stride, size_t rows, size_t n);

/// TopK over one row (h) of pre-activations (TopK.swift has the rule): the at most k largest
/// positive entries among the units where `allowed` is true (NULL: all), ties to the lower
/// unit, written to units/values in ascending unit order; returns how many.
/// heap_units, heap_values: scratch (k).
size_t aet_topk_f32(const float *row, const _Bool *allowed, size_t h, size_t k,
                    int32_t *heap_units, float *heap_values, int32_t *units, float *values);
size_t aet_topk_f64(const double *row, const _Bool *allowed, size_t h, size_t k,
                    int32_t *heap_units, double *heap_values, int32_t *units, double *values);

/// The sparse backward of one unit j (Objective.sparseBackwardUnits; CKernels/sparse_backward.c): dW_j
/// (d) written, dVᵀ_j (d) added to, db_j written, from its main entries (rows of g) and AuxK
/// entries (rows of ga; n_aux may be 0 and ga NULL), each list in ascending row order.
void aet_unit_backward_f32(float *dwj, float *dvtj, float *db_j, const float *wj, const float *g, const float *ga, const float *x,
                           const int32_t *main_rows, const float *main_values, size_t n_main,
                           const int32_t *aux_rows, const float *aux_values, size_t n_aux, size_t d);
void aet_unit_backward_f64(double *dwj, double *dvtj, double *db_j, const double *wj, const double *g, const double *ga, const double *x,
                           const int32_t *main_rows, const double *main_values, size_t n_main,
                           const int32_t *aux_rows, const double *aux_values, size_t n_aux, size_t d);

/// Flushes denormal floats to zero (FTZ and DAZ) in the calling thread from now on. Denormals
/// appear late in training (tiny gradients, squared) and take x86's slow microcode path.
void aet_flush_denormals(void);

#endif
