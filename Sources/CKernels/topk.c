#include "aetrain_kernels.h"
#include "dispatch.h"
#include <stdint.h>

// TopK's selection over one row of pre-activations (TopK.swift has the rule). It is the
// step's one pass over all of π that no product does, so both of its paths look at most
// entries only through vector compares: the tiled path (no `allowed`, k ≪ h) bounds the k-th
// value by group maxima and offers the heap only the groups that reach the bound; the scan
// (AuxK's `allowed`, or k not small against h) skips blocks of 16 below the heap's minimum.
// The heap logic is scalar and the same in every variant, so every variant keeps the same
// entries.

typedef float aet_v16f __attribute__((ext_vector_type(16)));
typedef double aet_v16d __attribute__((ext_vector_type(16)));

#define AET_TOPK_HEAP(T)                                                                   \
    /* a leaves the heap before b: a lower value, or the same value and a higher unit. */  \
    static inline int before_##T(const int32_t *u, const T *v, size_t a, size_t b) {       \
        return v[a] < v[b] || (v[a] == v[b] && u[a] > u[b]);                               \
    }                                                                                      \
    static inline void swap_##T(int32_t *u, T *v, size_t a, size_t b) {                    \
        int32_t tu = u[a]; T tv = v[a];                                                    \
        u[a] = u[b]; v[a] = v[b]; u[b] = tu; v[b] = tv;                                    \
    }                                                                                      \
    static inline void push_##T(int32_t *u, T *v, size_t count, int32_t unit, T value) {   \
        u[count] = unit; v[count] = value;                                                 \
        size_t c = count;                                                                  \
        while (c > 0 && before_##T(u, v, c, (c - 1) / 2)) {                                \
            swap_##T(u, v, c, (c - 1) / 2); c = (c - 1) / 2;                               \
        }                                                                                  \
    }                                                                                      \
    static inline void replace_##T(int32_t *u, T *v, size_t k, int32_t unit, T value) {    \
        u[0] = unit; v[0] = value;                                                         \
        size_t p = 0;                                                                      \
        for (;;) {                                                                         \
            size_t l = 2 * p + 1, r = l + 1, least = p;                                    \
            if (l < k && before_##T(u, v, l, least)) least = l;                            \
            if (r < k && before_##T(u, v, r, least)) least = r;                            \
            if (least == p) break;                                                         \
            swap_##T(u, v, p, least); p = least;                                           \
        }                                                                                  \
    }

AET_TOPK_HEAP(float)
AET_TOPK_HEAP(double)

// One entry j of the scan: enters the heap if it beats the floor (and is allowed).
#define AET_TOPK_OFFER(T, j)                                                               \
    {                                                                                      \
        const T x = row[j];                                                                \
        if (x > floor && (!allowed || allowed[j])) {                                       \
            if (n < k) {                                                                   \
                push_##T(hu, hv, n, (int32_t)(j), x);                                      \
                n++;                                                                       \
                if (n == k) floor = hv[0];                                                 \
            } else {                                                                       \
                replace_##T(hu, hv, k, (int32_t)(j), x);                                   \
                floor = hv[0];                                                             \
            }                                                                              \
        }                                                                                  \
    }

// A min-heap of values alone (pass 1: the k-th largest block maximum).
#define AET_VALUE_HEAP(T)                                                                  \
    static inline void value_push_##T(T *v, size_t count, T value) {                       \
        v[count] = value;                                                                  \
        size_t c = count;                                                                  \
        while (c > 0 && v[c] < v[(c - 1) / 2]) {                                           \
            T t = v[c]; v[c] = v[(c - 1) / 2]; v[(c - 1) / 2] = t; c = (c - 1) / 2;        \
        }                                                                                  \
    }                                                                                      \
    static inline void value_replace_##T(T *v, size_t k, T value) {                        \
        v[0] = value;                                                                      \
        size_t p = 0;                                                                      \
        for (;;) {                                                                         \
            size_t l = 2 * p + 1, r = l + 1, least = p;                                    \
            if (l < k && v[l] < v[least]) least = l;                                       \
            if (r < k && v[r] < v[least]) least = r;                                       \
            if (least == p) break;                                                         \
            T t = v[p]; v[p] = v[least]; v[least] = t; p = least;                          \
        }                                                                                  \
    }

AET_VALUE_HEAP(float)
AET_VALUE_HEAP(double)

// The general selection: one scan of the row, skipping blocks of 16 below the heap's minimum,
// then the kept set from the blocks that reach it.
#define AET_TOPK_SCAN_BODY(T, V)                                                           \
    {                                                                                      \
        size_t n = 0;                                                                      \
        T floor = 0;                                                                       \
        size_t j = 0;                                                                      \
        for (; j + 16 <= h; j += 16) {                                                     \
            V block;                                                                       \
            __builtin_memcpy(&block, row + j, sizeof block);                               \
            if (!__builtin_reduce_or(block > floor)) continue;                             \
            for (size_t e = j; e < j + 16; e++) AET_TOPK_OFFER(T, e)                       \
        }                                                                                  \
        for (; j < h; j++) AET_TOPK_OFFER(T, j)                                            \
        if (n == 0) return 0;                                                              \
        /* The kept set in ascending unit order: above the minimum, or equal to it up to  \
           its index. */                                                                   \
        const T min_value = n < k ? 0 : hv[0];                                             \
        const int32_t min_unit = n < k ? (int32_t)h : hu[0];                               \
        size_t out = 0;                                                                    \
        for (size_t i = 0; i < h; i++) {                                                   \
            const T x = row[i];                                                            \
            if (!(x >= min_value && x > 0)) continue;                                      \
            if (x == min_value && (int32_t)i > min_unit) continue;                         \
            if (allowed && !allowed[i]) continue;                                          \
            units[out] = (int32_t)i; values[out] = x;                                      \
            out++;                                                                         \
        }                                                                                  \
        return out;                                                                        \
    }

// The selection without `allowed`, for k ≪ h: the row in tiles of 128 entries, each tile's
// entries in 8 groups (lane l of its 16 vectors of 8: entries 8r + l), whose maxima are 15
// vector max operations per tile.
//  1. floor0 = the k-th largest positive group maximum. There are k entries ≥ floor0, so every
//     entry of the top k is ≥ floor0, and only groups whose maximum reaches it can hold one:
//     at most about k groups of h/16.
//  2. the heap over those groups' entries under the strict order (value, then the lower unit):
//     the order in which entries arrive does not matter.
//  3. the heap's entries sorted by unit.
#define AET_TOPK_MAX_GROUPS 4096
#define AET_TOPK_TILED_BODY(T, V8)                                                         \
    {                                                                                      \
        const size_t tiles = h / 128;                                                      \
        T group_max[AET_TOPK_MAX_GROUPS];                                                  \
        for (size_t t = 0; t < tiles; t++) {                                               \
            V8 m;                                                                          \
            __builtin_memcpy(&m, row + 128 * t, sizeof m);                                 \
            for (size_t r = 1; r < 16; r++) {                                              \
                V8 v;                                                                      \
                __builtin_memcpy(&v, row + 128 * t + 8 * r, sizeof v);                     \
                m = v > m ? v : m;                                                         \
            }                                                                              \
            __builtin_memcpy(group_max + 8 * t, &m, sizeof m);                             \
        }                                                                                  \
        const size_t groups = 8 * tiles;                                                   \
        size_t c = 0;                                                                      \
        T fl = 0;                                                                          \
        for (size_t g = 0; g < groups; g++) {                                              \
            const T top = group_max[g];                                                    \
            if (!(top > fl)) continue;                                                     \
            if (c < k) {                                                                   \
                value_push_##T(hv, c, top);                                                \
                c++;                                                                       \
                if (c == k) fl = hv[0];                                                    \
            } else {                                                                       \
                value_replace_##T(hv, k, top);                                             \
                fl = hv[0];                                                                \
            }                                                                              \
        }                                                                                  \
        const T floor0 = c == k ? hv[0] : 0;                                               \
        size_t n = 0;                                                                      \
        for (size_t g = 0; g < groups; g++) {                                              \
            if (!(group_max[g] >= floor0 && group_max[g] > 0)) continue;                   \
            const size_t base = 128 * (g / 8) + g % 8;                                     \
            for (size_t r = 0; r < 16; r++) AET_TOPK_OFFER_ANY_ORDER(T, base + 8 * r)      \
        }                                                                                  \
        for (size_t j = 128 * tiles; j < h; j++) AET_TOPK_OFFER_ANY_ORDER(T, j)            \
        /* Ascending unit order: a heap sort of the n entries by unit. */                  \
        for (size_t e = 0; e < n; e++) { units[e] = hu[e]; values[e] = hv[e]; }            \
        for (size_t e = n / 2; e-- > 0;) sift_by_unit_##T(units, values, e, n);            \
        for (size_t end = n; end-- > 1;) {                                                 \
            swap_##T(units, values, 0, end);                                               \
            sift_by_unit_##T(units, values, 0, end);                                       \
        }                                                                                  \
        return n;                                                                          \
    }

// One entry j offered in any order: enters if it is better than the heap's minimum under
// (value, then the lower unit).
#define AET_TOPK_OFFER_ANY_ORDER(T, J)                                                     \
    {                                                                                      \
        const size_t j_ = (J);                                                             \
        const T x = row[j_];                                                               \
        if (n < k) {                                                                       \
            if (x > 0) { push_##T(hu, hv, n, (int32_t)j_, x); n++; }                       \
        } else if (x > hv[0] || (x == hv[0] && (int32_t)j_ < hu[0])) {                     \
            replace_##T(hu, hv, k, (int32_t)j_, x);                                        \
        }                                                                                  \
    }

#define AET_SIFT_BY_UNIT(T)                                                                \
    /* Max-heap by unit over u[0..<n], from position p down. */                            \
    static inline void sift_by_unit_##T(int32_t *u, T *v, size_t p, size_t n) {           \
        for (;;) {                                                                         \
            size_t l = 2 * p + 1, r = l + 1, top = p;                                      \
            if (l < n && u[l] > u[top]) top = l;                                           \
            if (r < n && u[r] > u[top]) top = r;                                           \
            if (top == p) return;                                                          \
            swap_##T(u, v, p, top); p = top;                                               \
        }                                                                                  \
    }

AET_SIFT_BY_UNIT(float)
AET_SIFT_BY_UNIT(double)

typedef float aet_v8f __attribute__((ext_vector_type(8)));
typedef double aet_v8d __attribute__((ext_vector_type(8)));

#define AET_TOPK_BODY(T, V, V8)                                                            \
    {                                                                                      \
        if (k == 0) return 0;                                                              \
        if (!allowed && h >= 128 && h / 16 <= AET_TOPK_MAX_GROUPS && 8 * (h / 128) >= 4 * k) \
            AET_TOPK_TILED_BODY(T, V8)                                                     \
        AET_TOPK_SCAN_BODY(T, V)                                                           \
    }

AET_MULTIVERSION(static size_t, topk_f32,
                 (const float *restrict row, const _Bool *restrict allowed, size_t h, size_t k,
                  int32_t *restrict hu, float *restrict hv, int32_t *restrict units, float *restrict values),
                 AET_TOPK_BODY(float, aet_v16f, aet_v8f))
AET_MULTIVERSION(static size_t, topk_f64,
                 (const double *restrict row, const _Bool *restrict allowed, size_t h, size_t k,
                  int32_t *restrict hu, double *restrict hv, int32_t *restrict units, double *restrict values),
                 AET_TOPK_BODY(double, aet_v16d, aet_v8d))

size_t aet_topk_f32(const float *row, const _Bool *allowed, size_t h, size_t k,
                    int32_t *heap_units, float *heap_values, int32_t *units, float *values) {
    AET_DISPATCH_RETURN(topk_f32, (row, allowed, h, k, heap_units, heap_values, units, values))
}
size_t aet_topk_f64(const double *row, const _Bool *allowed, size_t h, size_t k,
                    int32_t *heap_units, double *heap_values, int32_t *units, double *values) {
    AET_DISPATCH_RETURN(topk_f64, (row, allowed, h, k, heap_units, heap_values, units, values))
}
