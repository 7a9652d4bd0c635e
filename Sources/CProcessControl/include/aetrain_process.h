// Process-level safety nets that must run outside Swift's control: signal handlers (only
// async-signal-safe code may run there) and a watchdog thread that ends the process when a
// collective call makes no progress (a dead or unreachable peer).
#ifndef AETRAIN_PROCESS_H
#define AETRAIN_PROCESS_H

/// Installs SIGTERM and SIGINT handlers. The first signal sets a flag that the trainer reads at
/// the next step boundary, where it checkpoints and exits 0. Later SIGTERMs (a scheduler sends
/// several, with SIGCONT between them) change nothing: the stop under way goes on, and the
/// scheduler's SIGKILL after its grace time is the hard stop. A later SIGINT (a second Ctrl-C,
/// after a first SIGINT or SIGTERM) ends the process at once with exit status 130.
void aet_signals_install(void);
/// The first signal received (SIGTERM or SIGINT), or 0.
int aet_signal_received(void);
/// Sends `sig` to this process (tests use it to inject a signal at a chosen step).
void aet_signal_raise(int sig);

/// Starts the watchdog: while armed for longer than `timeout_seconds` (clamped to 1e6 s), it
/// writes `message` to stderr and ends the process with exit status 1. Rank 0 reports at once,
/// other ranks a few seconds later, so that while rank 0 lives only its line is printed.
/// Called again, it only sets the timeout and the message (the rank is kept).
void aet_watchdog_start(double timeout_seconds, const char *message, int rank);
/// Replaces the message (e.g. to name the run's checkpoints once they exist).
void aet_watchdog_set_message(const char *message);
/// What the process waits in while armed.
enum {
    AET_WAIT_ALLREDUCE = 1, AET_WAIT_BROADCAST = 2, AET_WAIT_GATHER = 3, AET_WAIT_FINALIZE = 4, AET_WAIT_INIT = 5,
    AET_WAIT_BARRIER = 6
};
/// Arms the watchdog (entering a collective) and disarms it (leaving it). No-op before start.
void aet_watchdog_arm(int what);
/// Arms it with `extra_seconds` more than the timeout (a wait known to include others' work).
void aet_watchdog_arm_allowing(int what, double extra_seconds);
void aet_watchdog_disarm(void);

/// Lets every thread of this process run on every online CPU (mpirun binds each rank to a
/// core), remembering the old masks; `aet_affinity_restore` puts them back. For benchmarks
/// that measure one rank with all of the node's cores. Returns the number of threads changed.
int aet_affinity_widen(void);
void aet_affinity_restore(void);
/// How many CPUs this process may run on (its affinity mask: mpirun's binding, taskset, a
/// cpuset), or 0 where the mask cannot be read.
int aet_affinity_cpu_count(void);

#endif
