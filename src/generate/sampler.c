/* sampler.c: token sampling (see sampler.h). Buffers are sized once per sampler. */
#include "generate/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

struct slm_sampler {
    slm_sampler_params p;
    int n_vocab;
    slm_rng rng;
    float *work;      /* (V) penalised logits */
    int32_t *idx;     /* (V) candidate ids */
    float *prob;      /* (V) candidate probabilities */
    int32_t *recent;  /* (repeat_last_n) ring of recent tokens */
    int n_recent, head;
};

void slm_sampler_params_default(slm_sampler_params *p) {
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 1;
}

slm_sampler *slm_sampler_new(const slm_sampler_params *p, int n_vocab, slm_err *err) {
    if (!(p->temperature >= 0) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) ||
        !(p->repeat_penalty > 0) || p->repeat_last_n < 0 || n_vocab < 1) {
        slm_err_set(err, SLM_ERR_ARG, "sampler: need temperature >= 0, top_k >= 0, 0 < top_p <= 1, "
                    "repeat_penalty > 0, repeat_last_n >= 0 (got %g, %d, %g, %g, %d)",
                    p->temperature, p->top_k, p->top_p, p->repeat_penalty, p->repeat_last_n);
        return NULL;
    }
    slm_sampler *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->p = *p;
    s->n_vocab = n_vocab;
    slm_rng_seed(&s->rng, p->seed, 0x5a11);
    s->work = malloc((size_t)n_vocab * sizeof(float));
    s->idx = malloc((size_t)n_vocab * sizeof(int32_t));
    s->prob = malloc((size_t)n_vocab * sizeof(float));
    s->recent = malloc((size_t)(p->repeat_last_n > 0 ? p->repeat_last_n : 1) * sizeof(int32_t));
    if (!s->work || !s->idx || !s->prob || !s->recent) goto nomem;
    return s;
nomem:
    slm_sampler_free(s);
    slm_err_set(err, SLM_ERR_NOMEM, "sampler: out of memory");
    return NULL;
}

void slm_sampler_free(slm_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->idx);
    free(s->prob);
    free(s->recent);
    free(s);
}

void slm_sampler_accept(slm_sampler *s, int32_t token) {
    if (s->p.repeat_last_n <= 0) return;
    s->recent[s->head] = token;
    s->head = (s->head + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

/* Orders candidate ids by logit descending, ties by lower id (deterministic). */
static int by_logit_desc(const void *a, const void *b, void *keys) {
    const float *w = keys;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (w[x] != w[y]) return w[x] > w[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Moves the k largest of work[idx[0..n)] to the front, sorted (partial selection, then qsort). */
static void top_k_sorted(const float *work, int32_t *idx, int n, int k) {
    /* for small k an insertion list beats sorting the whole vocabulary */
    if (k < n && k <= 256) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            int32_t id = idx[i];
            if (m == k && !(work[id] > work[idx[m - 1]])) continue;
            int j = m < k ? m++ : m - 1;
            while (j > 0 && (work[idx[j - 1]] < work[id] || (work[idx[j - 1]] == work[id] && idx[j - 1] > id))) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = id;
        }
        return;
    }
    qsort_r(idx, (size_t)n, sizeof *idx, by_logit_desc, (void *)work);
}

int32_t slm_sampler_sample(slm_sampler *s, const float *logits) {
    const int V = s->n_vocab;
    float *w = s->work;
    memcpy(w, logits, (size_t)V * sizeof(float));
    if (s->p.repeat_penalty != 1.0f) {
        for (int i = 0; i < s->n_recent; i++) {
            int32_t id = s->recent[i];
            if (id < 0 || id >= V) continue;
            /* a token seen twice is penalised once: mark by a NaN-free flag via idx */
            s->idx[id] = -1;
        }
        for (int i = 0; i < s->n_recent; i++) {
            int32_t id = s->recent[i];
            if (id < 0 || id >= V || s->idx[id] != -1) continue;
            w[id] = w[id] > 0 ? w[id] / s->p.repeat_penalty : w[id] * s->p.repeat_penalty;
            s->idx[id] = 0;
        }
    }
    if (s->p.temperature == 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (w[i] > w[best]) best = i;
        return best;
    }
    for (int i = 0; i < V; i++) s->idx[i] = i;
    int n = V;
    int k = s->p.top_k > 0 && s->p.top_k < V ? s->p.top_k : V;
    top_k_sorted(w, s->idx, n, k);
    n = k;
    /* softmax at the temperature over the sorted candidates */
    float maxv = w[s->idx[0]];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float e = expf((w[s->idx[i]] - maxv) / s->p.temperature);
        s->prob[i] = e;
        sum += e;
    }
    /* nucleus: the smallest prefix whose mass reaches top_p */
    if (s->p.top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i] / sum;
            if (cum >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
        sum = 0;
        for (int i = 0; i < n; i++) sum += s->prob[i];
    }
    double r = (double)slm_rng_float(&s->rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (r < acc) return s->idx[i];
    }
    return s->idx[n - 1];
}
