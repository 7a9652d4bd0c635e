#include "aetrain_kernels.h"
#include "dispatch.h"
#include <stdint.h>

// The sparse backward for one unit j (Objective.sparseBackwardUnits has the maths): its main
// entries (rows ascending, values Z_ij, rows of g) and its AuxK entries (rows ascending,
// values relu(π_ij), rows of ga; none: n_aux = 0):
//   dW_j  = Σ_main Z_ij g_i + Σ_aux relu(π_ij) ga_i       (main first, each in row order)
//   gp    = src_i · W_j  (src: g for a main entry, ga for AuxK's; a row's main entry first)
//   db_j  = Σ gp,  dVᵀ_j = Σ gp x_i                        (both lists merged by row)
// The dot products in 8 lanes summed in a fixed order, so every variant gives the same bits.
#define AET_UNIT_BACKWARD_BODY(T)                                                          \
    {                                                                                      \
        for (size_t k = 0; k < d; k++) dwj[k] = 0;                                         \
        for (size_t e = 0; e < n_main; e++) {                                              \
            const T z = main_values[e];                                                    \
            const T *restrict gi = g + (size_t)main_rows[e] * d;                           \
            for (size_t k = 0; k < d; k++) dwj[k] += z * gi[k];                            \
        }                                                                                  \
        for (size_t e = 0; e < n_aux; e++) {                                               \
            const T z = aux_values[e];                                                     \
            const T *restrict gi = ga + (size_t)aux_rows[e] * d;                           \
            for (size_t k = 0; k < d; k++) dwj[k] += z * gi[k];                            \
        }                                                                                  \
        T sum = 0;                                                                         \
        size_t e = 0, f = 0;                                                               \
        while (e < n_main || f < n_aux) {                                                  \
            const int from_main = f == n_aux || (e < n_main && main_rows[e] <= aux_rows[f]); \
            const size_t i = from_main ? (size_t)main_rows[e] : (size_t)aux_rows[f];       \
            const T *restrict src = (from_main ? g : ga) + i * d;                          \
            if (from_main) e++; else f++;                                                  \
            T lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                          \
            size_t k = 0;                                                                  \
            for (; k + 8 <= d; k += 8)                                                     \
                for (size_t l = 0; l < 8; l++) lane[l] += src[k + l] * wj[k + l];          \
            for (; k < d; k++) lane[0] += src[k] * wj[k];                                  \
            const T gp = ((lane[0] + lane[1]) + (lane[2] + lane[3]))                       \
                       + ((lane[4] + lane[5]) + (lane[6] + lane[7]));                      \
            sum += gp;                                                                     \
            const T *restrict xi = x + i * d;                                              \
            for (size_t k2 = 0; k2 < d; k2++) dvtj[k2] += gp * xi[k2];                     \
        }                                                                                  \
        *db_j = sum;                                                                       \
    }

AET_MULTIVERSION(static void, unit_backward_f32,
                 (float *restrict dwj, float *restrict dvtj, float *restrict db_j, const float *restrict wj,
                  const float *restrict g, const float *restrict ga, const float *restrict x,
                  const int32_t *restrict main_rows, const float *restrict main_values, size_t n_main,
                  const int32_t *restrict aux_rows, const float *restrict aux_values, size_t n_aux, size_t d),
                 AET_UNIT_BACKWARD_BODY(float))
AET_MULTIVERSION(static void, unit_backward_f64,
                 (double *restrict dwj, double *restrict dvtj, double *restrict db_j, const double *restrict wj,
                  const double *restrict g, const double *restrict ga, const double *restrict x,
                  const int32_t *restrict main_rows, const double *restrict main_values, size_t n_main,
                  const int32_t *restrict aux_rows, const double *restrict aux_values, size_t n_aux, size_t d),
                 AET_UNIT_BACKWARD_BODY(double))

void aet_unit_backward_f32(float *dwj, float *dvtj, float *db_j, const float *wj, const float *g, const float *ga, const float *x,
                           const int32_t *main_rows, const float *main_values, size_t n_main,
                           const int32_t *aux_rows, const float *aux_values, size_t n_aux, size_t d) {
    AET_DISPATCH(unit_backward_f32, (dwj, dvtj, db_j, wj, g, ga, x, main_rows, main_values, n_main, aux_rows, aux_values, n_aux, d))
}
void aet_unit_backward_f64(double *dwj, double *dvtj, double *db_j, const double *wj, const double *g, const double *ga, const double *x,
                           const int32_t *main_rows, const double *main_values, size_t n_main,
                           const int32_t *aux_rows, const double *aux_values, size_t n_aux, size_t d) {
    AET_DISPATCH(unit_backward_f64, (dwj, dvtj, db_j, wj, g, ga, x, main_rows, main_values, n_main, aux_rows, aux_values, n_aux, d))
}
