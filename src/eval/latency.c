/* latency.c: percentiles (linear interpolation, type 7) and latency summaries (see latency.h). */
#include "eval/latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double slm_percentile_sorted(const double *sorted, size_t n, double p) {
    if (n == 0) return NAN;
    if (p < 0) p = 0;
    if (p > 100) p = 100;
    double h = (double)(n - 1) * p / 100.0;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1) return sorted[n - 1];
    double frac = h - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static slm_status sorted_copy(const double *x, size_t n, double **out, slm_err *err) {
    if (n == 0) return slm_err_set(err, SLM_ERR_ARG, "percentile of an empty sample");
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return slm_err_set(err, SLM_ERR_RANGE, "sample value %zu is NaN", i);
    double *s = malloc(n * sizeof *s);
    if (!s) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory sorting %zu samples", n);
    memcpy(s, x, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    *out = s;
    return SLM_OK;
}

slm_status slm_percentile(const double *x, size_t n, double p, double *out, slm_err *err) {
    double *s = NULL;
    slm_status st = sorted_copy(x, n, &s, err);
    if (st != SLM_OK) return st;
    *out = slm_percentile_sorted(s, n, p);
    free(s);
    return SLM_OK;
}

slm_status slm_latency_summarize(const double *x, size_t n, slm_latency_stats *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    double *s = NULL;
    slm_status st = sorted_copy(x, n, &s, err);
    if (st != SLM_OK) return st;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += s[i];
    out->n = (long)n;
    out->mean = sum / (double)n;
    out->min = s[0];
    out->max = s[n - 1];
    out->p50 = slm_percentile_sorted(s, n, 50);
    out->p90 = slm_percentile_sorted(s, n, 90);
    out->p95 = slm_percentile_sorted(s, n, 95);
    out->p99 = slm_percentile_sorted(s, n, 99);
    free(s);
    return SLM_OK;
}
