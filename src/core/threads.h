/* threads.h: one fixed pool of worker threads, shared by the kernels and stages of a process part.
 *
 * slm_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once for every ith in [0, nth) — the caller
 * runs ith = 0 itself — and returns when all calls have finished. Work is split statically by
 * ith, so results do not depend on scheduling (training is reproducible run to run).
 * A NULL pool means "run on the caller alone" (nth = 1).
 */
#ifndef SLM_CORE_THREADS_H
#define SLM_CORE_THREADS_H

#include <stddef.h>

#include "core/error.h"

typedef struct slm_pool slm_pool;
typedef void (*slm_pool_fn)(void *ctx, int ith, int nth);

/* n_threads counts the caller; n_threads <= 0 means one per online CPU. */
slm_pool *slm_pool_new(int n_threads, slm_err *err);
void slm_pool_free(slm_pool *pool);
int slm_pool_size(const slm_pool *pool);
void slm_pool_run(slm_pool *pool, slm_pool_fn fn, void *ctx);

/* The slice [*begin, *end) of n items that thread ith of nth owns (contiguous, balanced). */
static inline void slm_pool_slice(size_t n, int ith, int nth, size_t *begin, size_t *end) {
    size_t per = n / (size_t)nth, extra = n % (size_t)nth, i = (size_t)ith;
    *begin = i * per + (i < extra ? i : extra);
    *end = *begin + per + (i < extra ? 1 : 0);
}

/* Number of online CPUs (at least 1). */
int slm_cpu_count(void);

#endif
