/* membw.c: the machine's limits — STREAM triad bandwidth and peak sgemm (see bench.h).
 *
 * Each thread owns a contiguous slice of the arrays (first-touched by that thread), so the triad
 * measures what all cores together can stream, the figure token generation is bounded by.
 */
#include "bench/bench.h"

#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "kernels/kernels.h"

typedef struct {
    float *a, *b, *c;
    size_t n;
    int init;
} triad_job;

static void triad_tramp(void *ctx, int ith, int nth) {
    triad_job *j = ctx;
    size_t b0, e0;
    slm_pool_slice(j->n, ith, nth, &b0, &e0);
    float *a = j->a, *b = j->b, *c = j->c;
    if (j->init) {
        for (size_t i = b0; i < e0; i++) a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
        return;
    }
    const float s = 3.0f;
    for (size_t i = b0; i < e0; i++) a[i] = b[i] + s * c[i];
}

slm_status slm_bench_membw(slm_pool *pool, size_t total_bytes, int reps, double *gbs, slm_err *err) {
    size_t n = total_bytes / 3 / sizeof(float);
    n = n / 16 * 16;
    triad_job j = {aligned_alloc(64, n * sizeof(float)), aligned_alloc(64, n * sizeof(float)),
                   aligned_alloc(64, n * sizeof(float)), n, 1};
    if (!j.a || !j.b || !j.c) {
        free(j.a), free(j.b), free(j.c);
        return slm_err_set(err, SLM_ERR_NOMEM, "membw: cannot allocate %zu MiB", total_bytes >> 20);
    }
    slm_pool_run(pool, triad_tramp, &j);
    j.init = 0;
    double best = 0;
    for (int r = 0; r < (reps < 1 ? 1 : reps) + 1; r++) { /* the first pass warms up */
        double t0 = slm_time_now();
        slm_pool_run(pool, triad_tramp, &j);
        double dt = slm_time_now() - t0;
        double g = 3.0 * (double)n * sizeof(float) / dt / 1e9;
        if (r > 0 && g > best) best = g;
    }
    free(j.a), free(j.b), free(j.c);
    *gbs = best;
    return SLM_OK;
}

typedef struct {
    const float *a, *b;
    float *c;
    int n;
} gemm_job;

static void gemm_tramp(void *ctx, int ith, int nth) {
    gemm_job *j = ctx;
    size_t b0, e0;
    slm_pool_slice((size_t)j->n, ith, nth, &b0, &e0);
    if (e0 > b0)
        slm_gemm(0, 1, (int)(e0 - b0), j->n, j->n, 1.0f, j->a + b0 * j->n, j->n, j->b, j->n, 0.0f,
                 j->c + b0 * j->n, j->n);
}

slm_status slm_bench_sgemm(slm_pool *pool, int n, int reps, double *gflops, slm_err *err) {
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return slm_err_set(err, SLM_ERR_NOMEM, "sgemm bench: out of memory");
    }
    for (size_t i = 0; i < nn; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    gemm_job j = {a, b, c, n};
    double best = 0;
    for (int r = 0; r < (reps < 1 ? 1 : reps) + 1; r++) {
        double t0 = slm_time_now();
        slm_pool_run(pool, gemm_tramp, &j);
        double dt = slm_time_now() - t0;
        double g = 2.0 * (double)nn * n / dt / 1e9;
        if (r > 0 && g > best) best = g;
    }
    free(a), free(b), free(c);
    *gflops = best;
    return SLM_OK;
}
