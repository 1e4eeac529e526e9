/* threads.c: a spin-then-sleep thread pool (see threads.h).
 *
 * A job is published by storing fn/ctx and bumping a 32-bit generation counter; workers that saw
 * the previous generation spin on it (with pause) for a bounded time, then sleep on it with a
 * futex. Completion is a countdown the caller spins on the same way. A dispatch to spinning
 * workers costs a few hundred nanoseconds instead of the few microseconds of a condition-variable
 * wake-up, which matters for token generation (~25-50 dispatches per token). Idle workers stop
 * burning CPU after SLM_POOL_SPIN_NS and sleep until the next job; past SLM_POOL_YIELD_NS a spinning
 * waiter also yields, so a descheduled worker on an oversubscribed machine gets the core back.
 *
 * Wake-up protocol (no lost wake-ups): a waiter increments `sleepers` then futex-waits on the word
 * only while it still holds the value it saw; the publisher changes the word then reads
 * `sleepers` (both sequentially consistent), so either the publisher sees the sleeper and wakes
 * it, or the sleeper's futex_wait sees the new value and returns at once.
 * Work is still split statically by ith (threads.h), so results do not depend on timing.
 */
#include "core/threads.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* how long a waiter spins before sleeping */
#define SLM_POOL_SPIN_NS 100000L
/* after this long, the spin also yields the CPU (matters when cores are oversubscribed) */
#define SLM_POOL_YIELD_NS 20000L

struct slm_pool {
    int n;
    pthread_t *threads;
    _Alignas(64) atomic_uint generation; /* bumped once per job (futex word) */
    atomic_int stop;
    atomic_uint worker_sleepers;         /* workers asleep (or about to) on generation */
    slm_pool_fn fn;
    void *ctx;
    _Alignas(64) atomic_uint pending;    /* workers still running the job (futex word) */
    atomic_uint caller_sleeping;
};

typedef struct {
    slm_pool *pool;
    int ith;
} worker_arg;

static void futex_wait(atomic_uint *word, unsigned expect) {
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *word, int count) {
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Waits until *word != value: spins for SLM_POOL_SPIN_NS, then sleeps on the futex (counting
 * itself in *sleepers while it does). Returns the new value. */
static unsigned wait_change(atomic_uint *word, unsigned value, atomic_uint *sleepers) {
    unsigned v;
    long t0 = 0;
    for (unsigned spins = 0;; spins++) {
        v = atomic_load_explicit(word, memory_order_acquire);
        if (v != value) return v;
        if ((spins & 255) == 255) {
            long t = now_ns();
            if (t0 == 0) {
                t0 = t;
            } else if (t - t0 > SLM_POOL_SPIN_NS) {
                atomic_fetch_add(sleepers, 1);
                while ((v = atomic_load(word)) == value) futex_wait(word, value);
                atomic_fetch_sub(sleepers, 1);
                return v;
            } else if (t - t0 > SLM_POOL_YIELD_NS) {
                sched_yield(); /* oversubscribed: let the thread we wait for run */
            }
        }
        cpu_relax();
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    slm_pool *p = wa->pool;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        seen = wait_change(&p->generation, seen, &p->worker_sleepers);
        if (atomic_load(&p->stop)) return NULL;
        p->fn(p->ctx, ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping))
            futex_wake(&p->pending, 1);
    }
}

int slm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

slm_pool *slm_pool_new(int n_threads, slm_err *err) {
    if (n_threads <= 0) n_threads = slm_cpu_count();
    slm_pool *p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
    if (!p) {
        slm_err_set(err, SLM_ERR_NOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = 1;
    p->threads = NULL;
    atomic_init(&p->generation, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->worker_sleepers, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->caller_sleeping, 0);
    p->fn = NULL;
    p->ctx = NULL;
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        slm_pool_free(p);
        slm_err_set(err, SLM_ERR_NOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = n_threads;
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            p->n = i;
            slm_pool_free(p);
            slm_err_set(err, SLM_ERR_NOMEM, "thread pool: out of memory");
            return NULL;
        }
        wa->pool = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n = i;
            slm_pool_free(p);
            slm_err_set(err, SLM_ERR_IO, "thread pool: cannot start thread %d of %d", i, n_threads);
            return NULL;
        }
    }
    return p;
}

void slm_pool_free(slm_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->generation, 1);
    futex_wake(&p->generation, INT_MAX);
    for (int i = 1; i < p->n; i++)
        if (p->threads) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p);
}

int slm_pool_size(const slm_pool *p) { return p ? p->n : 1; }

void slm_pool_run(slm_pool *p, slm_pool_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, (unsigned)(p->n - 1));
    atomic_fetch_add(&p->generation, 1); /* publishes fn, ctx, pending (seq_cst) */
    if (atomic_load(&p->worker_sleepers)) futex_wake(&p->generation, INT_MAX);

    fn(ctx, 0, p->n);

    unsigned left = atomic_load_explicit(&p->pending, memory_order_acquire);
    while (left != 0) left = wait_change(&p->pending, left, &p->caller_sleeping);
}
