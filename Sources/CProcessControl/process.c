#define _GNU_SOURCE
#include "aetrain_process.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sched.h>
#include <sys/syscall.h>

// MARK: signals

static volatile sig_atomic_t received = 0;

// Schedulers repeat SIGTERM (Slurm at a time limit sends SIGTERM, SIGCONT, SIGTERM within a
// millisecond) and follow it with SIGKILL after their grace time: a repeated SIGTERM must not
// abort the checkpoint the first one asked for. Only a person at a terminal presses Ctrl-C
// twice to mean "now", so only a second SIGINT ends the process at once.
static void on_signal(int sig) {
    if (received) {
        if (sig == SIGINT) _exit(128 + SIGINT);
        return;  // a repeated SIGTERM: the stop under way goes on
    }
    received = sig;
}

void aet_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int aet_signal_received(void) { return (int)received; }

void aet_signal_raise(int sig) { kill(getpid(), sig); }

// MARK: watchdog

// Longest accepted timeout: 1e6 s (11.6 days) keeps timeout·1e9 ns, plus any allowance and
// CLOCK_MONOTONIC's value, far inside a 64-bit nanosecond count.
#define AET_MAX_TIMEOUT_S 1e6
// How much longer a rank other than 0 waits before it reports: if rank 0 is alive, it reports
// first, exits, and mpirun ends the others before they print a copy of the message. Rank r > 0
// waits a further (r - 1) steps, so that when rank 0 is the one stopped, rank 1 reports alone
// and mpirun ends ranks 2, 3, ... before their turn (the lowest rank alive reports; ranks past
// AET_STAGGER_RANKS share the last step).
#define AET_NONROOT_GRACE_NS (5LL * 1000000000LL)
#define AET_STAGGER_NS (2LL * 1000000000LL)
#define AET_STAGGER_RANKS 30

static atomic_llong deadline_ns;  // 0: disarmed
static atomic_int armed_what;     // AET_WAIT_*
static atomic_llong timeout_ns;
static atomic_int started;
static int rank_reporting;        // this process's rank (0 reports first)
static pthread_mutex_t message_lock = PTHREAD_MUTEX_INITIALIZER;
static char message[1024];        // guarded by message_lock

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long clamped_ns(double seconds) {
    if (!(seconds > 0)) return 0;  // also NaN
    if (seconds > AET_MAX_TIMEOUT_S) seconds = AET_MAX_TIMEOUT_S;
    return (long long)(seconds * 1e9);
}

static void report_and_exit(void) {
    char line[1400];
    static const char *names[] = {"a collective", "MPI_Allreduce", "MPI_Bcast", "MPI_Gatherv", "MPI_Finalize",
                                  "MPI_Init", "MPI_Barrier"};
    int what = atomic_load(&armed_what);
    pthread_mutex_lock(&message_lock);
    int n = snprintf(line, sizeof line, "error: no progress for %g s in %s (the peer timeout, --peer-timeout): %s\n",
                     (double)atomic_load(&timeout_ns) / 1e9, names[what >= 1 && what <= 6 ? what : 0], message);
    pthread_mutex_unlock(&message_lock);
    if (n > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)ignored;
    }
    _exit(1);
}

static void *watch(void *unused) {
    (void)unused;
    for (;;) {
        usleep(200 * 1000);
        long long d = atomic_load(&deadline_ns);
        if (d == 0) continue;
        if (rank_reporting != 0) {
            int steps = rank_reporting - 1 < AET_STAGGER_RANKS ? rank_reporting - 1 : AET_STAGGER_RANKS;
            d += AET_NONROOT_GRACE_NS + (long long)steps * AET_STAGGER_NS;
        }
        if (now_ns() > d) report_and_exit();
    }
    return NULL;
}

void aet_watchdog_start(double timeout_seconds, const char *text, int rank) {
    atomic_store(&timeout_ns, clamped_ns(timeout_seconds));
    aet_watchdog_set_message(text);
    if (atomic_exchange(&started, 1)) return;  // already watching: new timeout and message only
    rank_reporting = rank;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&thread, &attr, watch, NULL);
    pthread_attr_destroy(&attr);
}

void aet_watchdog_set_message(const char *text) {
    pthread_mutex_lock(&message_lock);
    snprintf(message, sizeof message, "%s", text);
    pthread_mutex_unlock(&message_lock);
}

void aet_watchdog_arm(int what) { aet_watchdog_arm_allowing(what, 0); }

void aet_watchdog_arm_allowing(int what, double extra_seconds) {
    if (!atomic_load(&started)) return;
    atomic_store(&armed_what, what);
    atomic_store(&deadline_ns, now_ns() + atomic_load(&timeout_ns) + clamped_ns(extra_seconds));
}

void aet_watchdog_disarm(void) { atomic_store(&deadline_ns, 0); }

// MARK: affinity

#define AET_MAX_THREADS 256
static pid_t saved_tids[AET_MAX_THREADS];
static cpu_set_t saved_masks[AET_MAX_THREADS];
static int saved_count;

int aet_affinity_widen(void) {
    cpu_set_t all;
    CPU_ZERO(&all);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < cpus && c < CPU_SETSIZE; c++) CPU_SET((int)c, &all);
    saved_count = 0;
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return 0;
    struct dirent *e;
    while ((e = readdir(dir)) && saved_count < AET_MAX_THREADS) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0) continue;
        if (sched_getaffinity(tid, sizeof(cpu_set_t), &saved_masks[saved_count]) != 0) continue;
        if (sched_setaffinity(tid, sizeof(cpu_set_t), &all) != 0) continue;
        saved_tids[saved_count++] = tid;
    }
    closedir(dir);
    return saved_count;
}

void aet_affinity_restore(void) {
    for (int i = 0; i < saved_count; i++) sched_setaffinity(saved_tids[i], sizeof(cpu_set_t), &saved_masks[i]);
    saved_count = 0;
}

int aet_affinity_cpu_count(void) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof(cpu_set_t), &mask) != 0) return 0;
    return CPU_COUNT(&mask);
}
