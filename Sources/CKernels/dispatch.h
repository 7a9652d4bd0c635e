// One C loop compiled for several x86 instruction sets, the widest the CPU has chosen at run
// time. The package builds for baseline x86-64 (SSE2), which leaves AVX2 and AVX-512 machines
// at a quarter of their vector width on the element-wise loops, of which Adam, over every
// parameter each step, is the one that counts (its time per variant: docs/performance.md).
//
// Contraction into FMA is off in every file that includes this: a variant must give the same
// bits as any other, so that the trajectory does not depend on the machine. Where a kernel
// wants an FMA (to match OpenBLAS's axpy), it calls fma()/fmaf() explicitly.
#ifndef AETRAIN_DISPATCH_H
#define AETRAIN_DISPATCH_H
#pragma clang fp contract(off)

#if defined(__x86_64__) && defined(__clang__)
/// The instruction sets of levels 2 and 1 (`aet_isa_level`), as `target` attributes take them.
#define AET_TARGET_AVX512 "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"
#define AET_TARGET_AVX2 "avx2,fma"

#define AET_MULTIVERSION(RET, NAME, PARAMS, BODY)                                              \
    __attribute__((target(AET_TARGET_AVX512))) RET NAME##_avx512 PARAMS BODY                    \
    __attribute__((target(AET_TARGET_AVX2))) RET NAME##_avx2 PARAMS BODY                        \
    RET NAME##_base PARAMS BODY

/// 2: AVX-512, 1: AVX2 and FMA, 0: the baseline. Decided once (a benign race: every thread
/// computes the same value).
static inline int aet_isa_level(void) {
    static int level = -1;
    if (level < 0) {
        __builtin_cpu_init();
        level = (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) ? 2
              : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    }
    return level;
}

#define AET_DISPATCH(NAME, ARGS)                                                               \
    switch (aet_isa_level()) {                                                                 \
    case 2: NAME##_avx512 ARGS; break;                                                         \
    case 1: NAME##_avx2 ARGS; break;                                                           \
    default: NAME##_base ARGS; break;                                                          \
    }
#define AET_DISPATCH_RETURN(NAME, ARGS)                                                        \
    switch (aet_isa_level()) {                                                                 \
    case 2: return NAME##_avx512 ARGS;                                                         \
    case 1: return NAME##_avx2 ARGS;                                                           \
    default: return NAME##_base ARGS;                                                          \
    }
#else
#define AET_MULTIVERSION(RET, NAME, PARAMS, BODY) RET NAME##_base PARAMS BODY
#define AET_DISPATCH(NAME, ARGS) NAME##_base ARGS;
#define AET_DISPATCH_RETURN(NAME, ARGS) return NAME##_base ARGS;
#endif

#endif
