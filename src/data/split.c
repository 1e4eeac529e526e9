/* split.c: stratified seeded splitting (see split.h). */
#include "data/split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

int slm_split_parse(const char *s, double shares[SLM_SPLIT_MAX], slm_err *err) {
    int n = 0;
    const char *p = s;
    double sum = 0;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0) || n == SLM_SPLIT_MAX) {
            slm_err_set(err, SLM_ERR_ARG, "split '%s': expected 2 or 3 positive shares like 0.9,0.1 or 0.8,0.1,0.1", s);
            return 0;
        }
        shares[n++] = v;
        sum += v;
        p = end;
        if (*p == ',') p++;
        else if (*p) {
            slm_err_set(err, SLM_ERR_ARG, "split '%s': unexpected '%c'", s, *p);
            return 0;
        }
    }
    if (n < 2) {
        slm_err_set(err, SLM_ERR_ARG, "split '%s': expected 2 or 3 shares (train,val[,test])", s);
        return 0;
    }
    if (fabs(sum - 100) < 1e-6) sum = 100; /* percentages */
    else if (fabs(sum - 1) > 1e-6) {
        slm_err_set(err, SLM_ERR_ARG, "split '%s': shares add up to %g, not 1 (or 100)", s, sum);
        return 0;
    }
    for (int i = 0; i < n; i++) shares[i] /= sum;
    return n;
}

slm_status slm_split_assign(const int *group, size_t n, int n_groups, const double *shares, int n_splits,
                            uint64_t seed, uint8_t *out, slm_err *err) {
    if (n_splits < 1 || n_splits > SLM_SPLIT_MAX || n_groups < 0)
        return slm_err_set(err, SLM_ERR_ARG, "split: %d splits, %d groups", n_splits, n_groups);
    double sum = 0;
    for (int k = 0; k < n_splits; k++) {
        if (!(shares[k] > 0)) return slm_err_set(err, SLM_ERR_ARG, "split: share %d is not positive", k);
        sum += shares[k];
    }
    if (fabs(sum - 1) > 1e-6) return slm_err_set(err, SLM_ERR_ARG, "split: shares add up to %g, not 1", sum);
    /* items of each group, in input order: counting sort by group */
    size_t *start = calloc((size_t)n_groups + 1, sizeof *start);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!start || !order) {
        free(start);
        free(order);
        return slm_err_set(err, SLM_ERR_NOMEM, "split: out of memory for %zu items", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (group[i] < 0 || group[i] >= n_groups) {
            free(start);
            free(order);
            return slm_err_set(err, SLM_ERR_ARG, "split: item %zu has group %d of %d", i, group[i], n_groups);
        }
        start[group[i] + 1]++;
    }
    for (int g = 0; g < n_groups; g++) start[g + 1] += start[g];
    {
        size_t *fill = calloc((size_t)n_groups + 1, sizeof *fill);
        if (!fill) {
            free(start);
            free(order);
            return slm_err_set(err, SLM_ERR_NOMEM, "split: out of memory");
        }
        for (size_t i = 0; i < n; i++) order[start[group[i]] + fill[group[i]]++] = i;
        free(fill);
    }
    for (int g = 0; g < n_groups; g++) {
        size_t *items = order + start[g], m = start[g + 1] - start[g];
        if (!m) continue;
        slm_rng r;
        slm_rng_seed(&r, seed, (uint64_t)g + 1);
        for (size_t i = m - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = slm_rng_below(&r, (uint32_t)(i + 1));
            size_t t = items[i];
            items[i] = items[j];
            items[j] = t;
        }
        /* floor of each share, then the remainder by largest fraction (earlier split wins ties) */
        size_t cnt[SLM_SPLIT_MAX] = {0}, given = 0;
        double frac[SLM_SPLIT_MAX];
        for (int k = 0; k < n_splits; k++) {
            double want = shares[k] * (double)m;
            cnt[k] = (size_t)floor(want + 1e-9);
            frac[k] = want - (double)cnt[k];
            given += cnt[k];
        }
        while (given < m) {
            /* ties rotate with the group, so no split gains an extra row in every group */
            int best = g % n_splits;
            for (int j = 1; j < n_splits; j++) {
                int k = (g + j) % n_splits;
                if (frac[k] > frac[best] + 1e-12) best = k;
            }
            cnt[best]++;
            frac[best] = -1;
            given++;
        }
        if (cnt[0] == 0) { /* the training split must see every label */
            int big = 1;
            for (int k = 2; k < n_splits; k++)
                if (cnt[k] > cnt[big]) big = k;
            cnt[big]--;
            cnt[0]++;
        }
        size_t at = 0;
        for (int k = 0; k < n_splits; k++)
            for (size_t c = 0; c < cnt[k]; c++) out[items[at++]] = (uint8_t)k;
    }
    free(start);
    free(order);
    return SLM_OK;
}
