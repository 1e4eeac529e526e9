/* latency.h: summaries of a sample of per-query latencies (or any durations).
 *
 * Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's and
 * R's default): over the n sorted values x[0..n), the p-th percentile (p in [0, 100]) is at
 * position h = (n - 1) * p / 100, i.e. x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h]).
 * So p0 is the minimum, p100 the maximum, p50 of an even sample the mean of the middle two; with
 * few samples a p99 lies between the two largest values rather than jumping to the maximum.
 */
#ifndef SLM_EVAL_LATENCY_H
#define SLM_EVAL_LATENCY_H

#include <stddef.h>

#include "core/error.h"

typedef struct {
    long n;
    double mean, min, max;
    double p50, p90, p95, p99;
} slm_latency_stats;

/* The p-th percentile of sorted[0..n) (ascending, n >= 1, p in [0, 100]; p is clamped). */
double slm_percentile_sorted(const double *sorted, size_t n, double p);

/* Percentile of an unsorted sample (sorted in a copy). Errors: n == 0 (SLM_ERR_ARG), a NaN value
 * (SLM_ERR_RANGE), out of memory. */
slm_status slm_percentile(const double *x, size_t n, double p, double *out, slm_err *err);

/* n, mean, min, max and the p50/p90/p95/p99 of x[0..n) (in x's unit). Same errors. */
slm_status slm_latency_summarize(const double *x, size_t n, slm_latency_stats *out, slm_err *err);

#endif
