#include "aetrain_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sched.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define AET_PAUSE() _mm_pause()
#else
#define AET_PAUSE()
#endif

// One helper thread for aetrain's own element-wise kernels (Adam), so that a process that has
// a second core (one rank on a 2-core node) does not run them on one core while the other
// idles. OpenBLAS's threads do the same for the products.
//
// The helper waits on a futex between jobs after a short spin (a few µs): a longer spin would
// take its core from OpenBLAS's worker during the next product. No allocation per job.

static atomic_uint job_generation;   // bumped for every job (the futex word)
static atomic_int helper_sleeping;
// The job's chunks are claimed from `ticket` = generation << 32 | next chunk, by either thread:
// the caller takes whatever the helper has not claimed, so a helper that wakes late (a busy
// machine) costs nothing but the hand-over. The job's fields are read only after a claim
// succeeds, which proves the job is still the current one.
static _Atomic unsigned long long ticket;
static atomic_size_t chunks_done;
static void (*job_fn)(void *, size_t, size_t);
static void *job_ctx;
static size_t job_n, job_chunk, job_chunks;
static int kernel_threads = 1;
static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static int helper_ok;

/// Runs chunks of job `generation` until none is left.
static void run_chunks(unsigned generation) {
    for (;;) {
        unsigned long long t = atomic_load_explicit(&ticket, memory_order_acquire);
        if ((unsigned)(t >> 32) != generation) return;
        size_t c = (size_t)(t & 0xffffffffu);
        if (c >= job_chunks) return;  // job_chunks is the current job's: the generation matched
        if (!atomic_compare_exchange_weak_explicit(&ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        size_t begin = c * job_chunk, end = begin + job_chunk < job_n ? begin + job_chunk : job_n;
        job_fn(job_ctx, begin, end);
        atomic_fetch_add_explicit(&chunks_done, 1, memory_order_release);
    }
}

static long futex(atomic_uint *word, int op, unsigned value) {
    return syscall(SYS_futex, (unsigned *)word, op, value, NULL, NULL, 0);
}

static void *helper_main(void *unused) {
    (void)unused;
    aet_flush_denormals();
    unsigned seen = atomic_load(&job_generation);
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&job_generation, memory_order_acquire) == seen) {
            if (++spins < 4000) { AET_PAUSE(); continue; }
            atomic_store(&helper_sleeping, 1);
            if (atomic_load(&job_generation) == seen) futex(&job_generation, FUTEX_WAIT_PRIVATE, seen);
            atomic_store(&helper_sleeping, 0);
            spins = 0;
        }
        seen = atomic_load_explicit(&job_generation, memory_order_acquire);
        run_chunks(seen);
    }
    return NULL;
}

static void start_helper(void) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    helper_ok = pthread_create(&t, &attr, helper_main, NULL) == 0;
    pthread_attr_destroy(&attr);
}

void aet_set_kernel_threads(int n) {
    kernel_threads = n >= 2 ? 2 : 1;
    if (kernel_threads == 2) pthread_once(&start_once, start_helper);
}

int aet_kernel_threads(void) { return kernel_threads == 2 && helper_ok ? 2 : 1; }

void aet_parallel_for(size_t n, size_t align, void (*fn)(void *, size_t, size_t), void *ctx) {
    // Too little work to pay for the hand-over (about 5–10 µs): run it here.
    if (aet_kernel_threads() < 2 || n < 65536) { fn(ctx, 0, n); return; }
    enum { chunks = 16 };
    size_t chunk = (n + chunks - 1) / chunks;
    chunk = (chunk + align - 1) / align * align;
    job_fn = fn; job_ctx = ctx; job_n = n; job_chunk = chunk; job_chunks = (n + chunk - 1) / chunk;
    atomic_store_explicit(&chunks_done, 0, memory_order_relaxed);
    unsigned generation = atomic_load(&job_generation) + 1;
    atomic_store_explicit(&ticket, (unsigned long long)generation << 32, memory_order_release);
    atomic_store_explicit(&job_generation, generation, memory_order_release);
    if (atomic_load(&helper_sleeping)) futex(&job_generation, FUTEX_WAKE_PRIVATE, 1);
    run_chunks(generation);
    // Only a chunk the helper is running is left.
    for (unsigned spins = 0; atomic_load_explicit(&chunks_done, memory_order_acquire) != job_chunks; spins++) {
        if (spins < 20000) AET_PAUSE(); else sched_yield();
    }
}
