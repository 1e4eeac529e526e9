/* test_model.c: the transformer as a whole — gradients against finite differences for every
 * tensor (tied and untied, GQA, batched and per-token attention paths), the batched forward against
 * token-by-token decoding through the KV cache, independent sequences sharing a batch, thread-count
 * independence, GGUF save/load, the error values of bad batches and configs, and preset sizes.
 * The real-model check (stories260K) and the PyTorch reference have their own test programs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "kernels/kernels.h"
#include "kernels/blas_threads.h"
#include "model/workspace.h" /* to force or forbid the pool splits */
#include "util/testutil.h"
#include "util/test_models.h"

#define FD_EPS 1e-2   /* step for parameters of scale ~0.3-1 */
#define FD_TOL 2e-3   /* |fd - g| <= FD_TOL · (max|g| of the tensor) + FD_TOL · |g| */
#define SAME_TOL 2e-5 /* two ways of computing the same logits or gradients, relative to their scale */

enum { MAXT = 64 };

typedef struct {
    int n;
    int32_t tok[MAXT], pos[MAXT], seq[MAXT], tgt[MAXT];
    int8_t out[MAXT];
} tbatch;

static slm_batch as_batch(const tbatch *t, int with_output) {
    slm_batch b = {t->n, t->tok, t->pos, t->seq, with_output ? t->out : NULL};
    return b;
}

static void push(tbatch *t, int tok, int pos, int seq, int tgt) {
    t->tok[t->n] = tok;
    t->pos[t->n] = pos;
    t->seq[t->n] = seq;
    t->tgt[t->n] = tgt;
    t->out[t->n] = 1;
    t->n++;
}

static slm_model_config tiny_cfg(int tied) {
    slm_model_config c = {.n_vocab = 32, .dim = 16, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                          .hidden_dim = 24, .ctx_len = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                          .tied_output = tied};
    return c;
}

/* Parameters of scale ~0.4 (weights) and ~1 (norms, embedding) so activations and gradients are
 * O(1)-ish and finite differences are well conditioned. */
static slm_model *rand_model(const slm_model_config *cfg, uint64_t seed) {
    return tu_rand_model(cfg, seed, 0.4f);
}

static void random_tokens(tbatch *t, int n_seq, int len, int V, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed, 7);
    t->n = 0;
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < len; p++)
            push(t, (int)slm_rng_below(&r, (uint32_t)V), p, s, (int)slm_rng_below(&r, (uint32_t)V));
}

static double max_abs(const float *x, size_t n) {
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(x[i]));
    return mx;
}

/* forward + loss; returns the mean loss */
static double eval_loss(const slm_model *m, slm_ctx *c, slm_kv_cache *kv, const tbatch *t) {
    slm_batch b = as_batch(t, 0);
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    int counted;
    float loss = slm_model_loss(c, t->tgt, 1.0f, &counted);
    assert_true(isfinite(loss));
    return loss;
}

enum { SPLIT_DEFAULT, SPLIT_ALL_BUT_PRODUCTS, SPLIT_ALL };

static void set_splits(slm_ctx *c, int split) {
    if (split == SPLIT_DEFAULT) return;
    c->att_split_min = 0;
    c->split_min_macs = split == SPLIT_ALL ? 0 : 1e300;
}

/* zeroes g, then forward, loss and backward into it (with dropout p under key DROP_KEY) */
#define DROP_KEY 0x5eedULL
static double grads_drop(const slm_model *m, slm_pool *pool, const tbatch *t, float *g, int split, float p) {
    slm_ctx *c = slm_ctx_new(&m->cfg, MAXT, 1, pool, tu_err());
    set_splits(c, split);
    TU_OK(slm_ctx_set_dropout(c, p, DROP_KEY, tu_err()));
    slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, 4, m->cfg.ctx_len, tu_err());
    assert_non_null(c);
    assert_non_null(kv);
    memset(g, 0, sizeof(float) * m->n_params);
    double loss = eval_loss(m, c, kv, t);
    slm_batch b = as_batch(t, 0);
    TU_OK(slm_model_backward(m, c, kv, &b, g, tu_err()));
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    return loss;
}

static double grads_split(const slm_model *m, slm_pool *pool, const tbatch *t, float *g, int split) {
    return grads_drop(m, pool, t, g, split, 0);
}

static double grads_of(const slm_model *m, slm_pool *pool, const tbatch *t, float *g) {
    return grads_split(m, pool, t, g, SPLIT_DEFAULT);
}

/* Finite differences on a sample of entries of every tensor; with dropout p > 0 both the gradient
 * and the differences are of the function with one fixed mask (a train workspace, one key). */
static void fd_model(int tied, const tbatch *t, const char *what, float drop) {
    slm_model_config cfg = tiny_cfg(tied);
    slm_model *m = rand_model(&cfg, 11 + tied);
    float *g = malloc(sizeof(float) * m->n_params);
    grads_drop(m, NULL, t, g, SPLIT_DEFAULT, drop);
    slm_ctx *c = slm_ctx_new(&cfg, MAXT, drop > 0, NULL, tu_err());
    TU_OK(slm_ctx_set_dropout(c, drop, DROP_KEY, tu_err()));
    slm_kv_cache *kv = slm_kv_cache_new(&cfg, 4, cfg.ctx_len, tu_err());
    slm_rng r;
    slm_rng_seed(&r, 99, 0);
    double worst = 0;
    char worst_name[160] = "";
    int nt = slm_model_n_tensors(&cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        size_t n = info.ne[0] * info.ne[1];
        double gmax = 0;
        for (size_t j = 0; j < n; j++) gmax = fmax(gmax, fabs(g[info.offset + j]));
        assert_true(gmax > 0); /* every tensor gets a gradient */
        for (int k = 0; k < 6; k++) {
            size_t j = info.offset + slm_rng_below(&r, (uint32_t)n);
            float v = m->params[j];
            float vp = (float)(v + FD_EPS), vm = (float)(v - FD_EPS);
            m->params[j] = vp;
            double lp = eval_loss(m, c, kv, t);
            m->params[j] = vm;
            double lm = eval_loss(m, c, kv, t);
            m->params[j] = v;
            double fd = (lp - lm) / ((double)vp - (double)vm);
            double ratio = fabs(fd - g[j]) / (FD_TOL * (gmax + fabs(g[j])));
            if (ratio > worst) {
                worst = ratio;
                snprintf(worst_name, sizeof worst_name, "%s[%zu] fd %.6g g %.6g", info.name,
                         j - info.offset, fd, (double)g[j]);
            }
        }
    }
    if (getenv("SLM_TEST_VERBOSE")) print_message("%s: worst %.3f at %s\n", what, worst, worst_name);
    if (worst > 1.0) fail_msg("%s: gradient mismatch at %s", what, worst_name);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    free(g);
    slm_model_free(m);
}

static void test_grad_fd_untied_batched(void **state) {
    (void)state;
    tbatch t;
    random_tokens(&t, 2, 7, 32, 1); /* two rows of 7: the sgemm attention path */
    fd_model(0, &t, "untied, batched attention", 0);
}

static void test_grad_fd_tied_per_token(void **state) {
    (void)state;
    /* two sequences interleaved token by token, plus a third of length 2 and an ignored target:
     * the per-token attention paths, forward and backward */
    tbatch t = {0};
    slm_rng r;
    slm_rng_seed(&r, 5, 5);
    for (int p = 0; p < 5; p++) {
        push(&t, (int)slm_rng_below(&r, 32), p, 1, (int)slm_rng_below(&r, 32));
        push(&t, (int)slm_rng_below(&r, 32), p, 3, (int)slm_rng_below(&r, 32));
        if (p < 2) push(&t, (int)slm_rng_below(&r, 32), p, 0, p == 1 ? -1 : (int)slm_rng_below(&r, 32));
    }
    fd_model(1, &t, "tied, per-token attention", 0);
}

/* Dropout's backward: finite differences of the loss under one fixed mask, both attention paths. */
static void test_grad_fd_dropout(void **state) {
    (void)state;
    tbatch t;
    random_tokens(&t, 2, 7, 32, 3);
    fd_model(0, &t, "dropout 0.3, batched attention", 0.3f);
    fd_model(1, &t, "dropout 0.1, tied", 0.1f);
}

/* The mask: a pure function of the key (same key, same logits; another key, others), p = 0 is the
 * plain pass bit for bit, about p of the attention outputs are zeroed and the rest scaled by
 * 1/(1 - p), and bad settings are refused. */
static void test_dropout_mask(void **state) {
    (void)state;
    slm_model_config cfg = tiny_cfg(0);
    cfg.ctx_len = 64;
    slm_model *m = rand_model(&cfg, 4);
    tbatch t;
    random_tokens(&t, 4, 16, 32, 9);
    slm_batch b = as_batch(&t, 0);
    slm_ctx *c = slm_ctx_new(&cfg, MAXT, 1, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&cfg, 4, cfg.ctx_len, tu_err());
    size_t nl = (size_t)t.n * cfg.n_vocab, na = (size_t)t.n * c->qd;
    float *plain = malloc(nl * sizeof(float)), *a = malloc(nl * sizeof(float));
    float *att_plain = malloc(na * sizeof(float));
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    memcpy(plain, slm_ctx_logits(c), nl * sizeof(float));
    memcpy(att_plain, c->att, na * sizeof(float)); /* layer 0's attention output */
    TU_OK(slm_ctx_set_dropout(c, 0, 123, tu_err()));
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    assert_memory_equal(plain, slm_ctx_logits(c), nl * sizeof(float));

    const float p = 0.25f;
    TU_OK(slm_ctx_set_dropout(c, p, 123, tu_err()));
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    memcpy(a, slm_ctx_logits(c), nl * sizeof(float));
    size_t zeroed = 0;
    for (size_t i = 0; i < na; i++) {
        if (c->att[i] == 0.0f) {
            zeroed++;
        } else {
            assert_float_equal(c->att[i], att_plain[i] / (1 - p), 1e-5 * (1 + fabs(att_plain[i])));
        }
    }
    double share = (double)zeroed / (double)na; /* 1,024 draws: p ± 4.5 sd */
    assert_true(fabs(share - p) < 4.5 * sqrt(p * (1 - p) / (double)na));
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    assert_memory_equal(a, slm_ctx_logits(c), nl * sizeof(float));
    TU_OK(slm_ctx_set_dropout(c, p, 124, tu_err()));
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    assert_true(memcmp(a, slm_ctx_logits(c), nl * sizeof(float)) != 0);
    assert_true(memcmp(a, plain, nl * sizeof(float)) != 0);

    assert_int_equal(slm_ctx_set_dropout(c, 1.0f, 1, tu_err()), SLM_ERR_ARG);
    assert_int_equal(slm_ctx_set_dropout(c, -0.1f, 1, tu_err()), SLM_ERR_ARG);
    slm_ctx *ci = slm_ctx_new(&cfg, MAXT, 0, NULL, tu_err());
    assert_int_equal(slm_ctx_set_dropout(ci, 0.1f, 1, tu_err()), SLM_ERR_ARG);
    assert_non_null(strstr(tu_err()->msg, "inference"));
    TU_OK(slm_ctx_set_dropout(ci, 0, 1, tu_err()));
    slm_ctx_free(ci);
    free(plain);
    free(a);
    free(att_plain);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
}

/* The same tokens in another batch order take the other attention paths; gradients agree. */
static void test_grad_paths_agree(void **state) {
    (void)state;
    slm_model_config cfg = tiny_cfg(0);
    slm_model *m = rand_model(&cfg, 3);
    tbatch a, b = {0};
    random_tokens(&a, 2, 9, 32, 2);
    for (int p = 0; p < 9; p++)
        for (int s = 1; s >= 0; s--) push(&b, a.tok[s * 9 + p], p, s, a.tgt[s * 9 + p]);
    float *ga = malloc(sizeof(float) * m->n_params), *gb = malloc(sizeof(float) * m->n_params);
    double la = grads_of(m, NULL, &a, ga), lb = grads_of(m, NULL, &b, gb);
    assert_true(fabs(la - lb) < 1e-5);
    double gmax = 0;
    for (size_t i = 0; i < m->n_params; i++) gmax = fmax(gmax, fabs(ga[i]));
    assert_true(tu_max_excess(gb, ga, m->n_params, 1e-4) <= SAME_TOL * gmax);
    free(ga);
    free(gb);
    slm_model_free(m);
}

/* Elementwise phases, attention, norm-weight and embedding gradients and the loss are split so that
 * their results do not depend on the thread count: with every split but the products' forced, a
 * pool of 3 gives the same bits as one thread. */
static void test_threads_bitwise(void **state) {
    (void)state;
    slm_model_config cfg = tiny_cfg(1);
    slm_model *m = rand_model(&cfg, 4);
    tbatch t;
    random_tokens(&t, 3, 10, 32, 3);
    float *g1 = malloc(sizeof(float) * m->n_params), *g3 = malloc(sizeof(float) * m->n_params);
    slm_pool *pool = slm_pool_new(3, tu_err());
    double l1 = grads_of(m, NULL, &t, g1), l3 = grads_split(m, pool, &t, g3, SPLIT_ALL_BUT_PRODUCTS);
    assert_true(l1 == l3);
    assert_memory_equal(g1, g3, sizeof(float) * m->n_params);
    slm_pool_free(pool);
    free(g1);
    free(g3);
    slm_model_free(m);
}

/* On a shape whose products are split across the pool (by rows, by output columns, by gemv
 * slices) a run repeats itself bit for bit, and agrees with one thread to rounding (OpenBLAS's
 * blocking depends on the slice sizes). */
static void test_threads_split_products(void **state) {
    (void)state;
    slm_model_config cfg = {.n_vocab = 512, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                            .hidden_dim = 160, .ctx_len = 32, .rope_theta = 10000.0f,
                            .norm_eps = 1e-5f, .tied_output = 1};
    slm_model *m = rand_model(&cfg, 4);
    tbatch t;
    random_tokens(&t, 2, 32, 512, 3);
    size_t np = m->n_params;
    int blas_before = slm_blas_threads();
    slm_blas_set_threads(1); /* the library splits products only when OpenBLAS runs one thread */
    float *g1 = malloc(sizeof(float) * np), *g3 = malloc(sizeof(float) * np), *g3b = malloc(sizeof(float) * np);
    slm_pool *pool = slm_pool_new(3, tu_err());
    double l1 = grads_of(m, NULL, &t, g1), l3 = grads_split(m, pool, &t, g3, SPLIT_ALL),
           l3b = grads_split(m, pool, &t, g3b, SPLIT_ALL);
    assert_true(l3 == l3b);
    assert_memory_equal(g3, g3b, sizeof(float) * np);
    assert_true(fabs(l1 - l3) < 1e-6 * fabs(l1));
    assert_true(tu_max_excess(g3, g1, np, 0) <= SAME_TOL * max_abs(g1, np));
    for (int n = 5; n >= 1; n -= 4) { /* a few tokens, then one */
        float *z[2];
        for (int k = 0; k < 2; k++) {
            slm_ctx *c = slm_ctx_new(&cfg, 8, 0, k ? pool : NULL, tu_err());
            set_splits(c, SPLIT_ALL);
            slm_kv_cache *kv = slm_kv_cache_new(&cfg, 1, 32, tu_err());
            slm_batch b = {n, t.tok, t.pos, t.seq, NULL};
            TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
            z[k] = malloc(sizeof(float) * n * 512);
            memcpy(z[k], slm_ctx_logits(c), sizeof(float) * n * 512);
            slm_ctx_free(c);
            slm_kv_cache_free(kv);
        }
        assert_true(tu_max_excess(z[1], z[0], (size_t)n * 512, 0) <= SAME_TOL * max_abs(z[0], (size_t)n * 512));
        free(z[0]);
        free(z[1]);
    }
    slm_blas_set_threads(blas_before);
    slm_pool_free(pool);
    free(g1);
    free(g3);
    free(g3b);
    slm_model_free(m);
}

/* ---- forward: batched vs token by token, sequences sharing a batch ---- */

static void logits_of_run(const slm_model *m, slm_ctx *c, slm_kv_cache *kv, const tbatch *t, float *out) {
    slm_batch b = as_batch(t, 1);
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    memcpy(out, slm_ctx_logits(c), sizeof(float) * (size_t)slm_ctx_n_outputs(c) * m->cfg.n_vocab);
}

static void test_batched_equals_token_by_token(void **state) {
    (void)state;
    for (int tied = 0; tied <= 1; tied++) {
        slm_model_config cfg = tiny_cfg(tied);
        slm_model *m = rand_model(&cfg, 20 + tied);
        int V = cfg.n_vocab, T = 16;
        tbatch all;
        random_tokens(&all, 1, T, V, 4);
        slm_ctx *c = slm_ctx_new(&cfg, T, 0, NULL, tu_err());
        slm_kv_cache *kv = slm_kv_cache_new(&cfg, 1, T, tu_err());
        float *ref = malloc(sizeof(float) * T * V), *one = malloc(sizeof(float) * T * V);
        logits_of_run(m, c, kv, &all, ref);
        /* one token per call through the cache */
        slm_kv_cache_clear(kv, -1);
        for (int p = 0; p < T; p++) {
            tbatch t = {0};
            push(&t, all.tok[p], p, 0, 0);
            logits_of_run(m, c, kv, &t, one + p * V);
        }
        double scale = max_abs(ref, (size_t)T * V);
        assert_true(tu_max_excess(one, ref, (size_t)T * V, 0) <= SAME_TOL * scale);
        /* a prompt of 5 then 11 more in one call (a batched run starting at position 5) */
        slm_kv_cache_clear(kv, -1);
        tbatch a = {0}, b = {0};
        for (int p = 0; p < T; p++) push(p < 5 ? &a : &b, all.tok[p], p, 0, 0);
        logits_of_run(m, c, kv, &a, one);
        logits_of_run(m, c, kv, &b, one + 5 * V);
        assert_true(tu_max_excess(one, ref, (size_t)T * V, 0) <= SAME_TOL * scale);
        /* only the last token's logits */
        for (int i = 0; i < T; i++) all.out[i] = i == T - 1;
        logits_of_run(m, c, kv, &all, one);
        assert_int_equal(slm_ctx_n_outputs(c), 1);
        assert_true(tu_max_excess(one, ref + (T - 1) * V, (size_t)V, 0) <= SAME_TOL * scale);
        /* a workspace with room for one output row: the same; asking for all is out of range */
        slm_ctx *c1 = slm_ctx_new_outputs(&cfg, T, 1, 0, NULL, tu_err());
        assert_non_null(c1);
        logits_of_run(m, c1, kv, &all, one);
        assert_true(tu_max_excess(one, ref + (T - 1) * V, (size_t)V, 0) <= SAME_TOL * scale);
        slm_batch every = as_batch(&all, 0);
        slm_err e;
        assert_int_equal(slm_model_forward(m, c1, kv, &every, &e), SLM_ERR_RANGE);
        assert_non_null(strstr(e.msg, "outputs"));
        assert_null(slm_ctx_new_outputs(&cfg, T, T + 1, 0, NULL, &e));
        slm_ctx_free(c1);
        free(ref);
        free(one);
        slm_ctx_free(c);
        slm_kv_cache_free(kv);
        slm_model_free(m);
    }
}

static void test_sequences_share_a_batch(void **state) {
    (void)state;
    slm_model_config cfg = tiny_cfg(0);
    slm_model *m = rand_model(&cfg, 30);
    int V = cfg.n_vocab;
    tbatch s1, s2;
    random_tokens(&s1, 1, 11, V, 5);
    random_tokens(&s2, 1, 6, V, 6);
    slm_ctx *c = slm_ctx_new(&cfg, 32, 0, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&cfg, 3, 16, tu_err());
    float r1[11 * 32], r2[6 * 32], both[17 * 32];
    logits_of_run(m, c, kv, &s1, r1);
    logits_of_run(m, c, kv, &s2, r2);
    /* interleave: slot 2 holds the first, slot 0 the second; the cache is dirty from before */
    tbatch t = {0};
    int i1 = 0, i2 = 0, where1[11], where2[6];
    while (i1 < 11 || i2 < 6) {
        if (i1 < 11) {
            where1[i1] = t.n;
            push(&t, s1.tok[i1], i1, 2, 0);
            i1++;
        }
        if ((i1 % 2 == 0 || i1 == 11) && i2 < 6) {
            where2[i2] = t.n;
            push(&t, s2.tok[i2], i2, 0, 0);
            i2++;
        }
    }
    logits_of_run(m, c, kv, &t, both);
    float got1[11 * 32], got2[6 * 32];
    for (int i = 0; i < 11; i++) memcpy(got1 + i * V, both + where1[i] * V, sizeof(float) * V);
    for (int i = 0; i < 6; i++) memcpy(got2 + i * V, both + where2[i] * V, sizeof(float) * V);
    assert_true(tu_max_excess(got1, r1, 11 * 32, 0) <= SAME_TOL * max_abs(r1, 11 * 32));
    assert_true(tu_max_excess(got2, r2, 6 * 32, 0) <= SAME_TOL * max_abs(r2, 6 * 32));
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
}

/* ---- loss API ---- */

static void test_loss_api(void **state) {
    (void)state;
    slm_model_config cfg = tiny_cfg(1);
    slm_model *m = rand_model(&cfg, 40);
    tbatch t;
    random_tokens(&t, 1, 6, 32, 8);
    slm_ctx *c = slm_ctx_new(&cfg, 8, 1, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&cfg, 1, 16, tu_err());
    slm_batch b = as_batch(&t, 0);
    int counted = -1;
    assert_true(isnan(slm_model_loss(c, t.tgt, 1.0f, &counted))); /* no forward yet */
    float *g = calloc(m->n_params, sizeof(float));
    assert_int_equal(slm_model_backward(m, c, kv, &b, g, tu_err()), SLM_ERR_ARG);
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    /* the mean over counted tokens, by hand */
    double ref = 0;
    const float *z = slm_ctx_logits(c);
    t.tgt[2] = -1;
    for (int i = 0; i < 6; i++) {
        if (t.tgt[i] < 0) continue;
        double mx = -1e30, s = 0;
        for (int v = 0; v < 32; v++) mx = fmax(mx, z[i * 32 + v]);
        for (int v = 0; v < 32; v++) s += exp(z[i * 32 + v] - mx);
        ref += log(s) + mx - z[i * 32 + t.tgt[i]];
    }
    ref /= 5;
    int32_t keep = t.tgt[4];
    t.tgt[4] = 32; /* out of vocab: NAN, nothing changed */
    assert_true(isnan(slm_model_loss(c, t.tgt, 1.0f, &counted)));
    t.tgt[4] = keep;
    double p_t1; /* softmax probability of row 1's target, for its gradient */
    {
        double mx = -1e30, s = 0;
        for (int v = 0; v < 32; v++) mx = fmax(mx, z[32 + v]);
        for (int v = 0; v < 32; v++) s += exp(z[32 + v] - mx);
        p_t1 = exp(z[32 + t.tgt[1]] - mx) / s;
    }
    float loss = slm_model_loss(c, t.tgt, 2.0f, &counted);
    assert_int_equal(counted, 5);
    assert_true(fabs(loss - ref) < 1e-5 * ref);
    assert_true(isnan(slm_model_loss(c, t.tgt, 1.0f, &counted))); /* logits already replaced */
    /* d(2·mean)/dz: zero on the ignored row, 2/5·(p - onehot) on a counted one */
    const float *d = slm_ctx_logits(c);
    double s0 = 0, s1 = 0;
    for (int v = 0; v < 32; v++) {
        s0 += fabs(d[2 * 32 + v]);
        s1 += d[1 * 32 + v];
    }
    assert_true(s0 == 0 && fabs(s1) < 1e-6);
    assert_true(fabs(d[32 + t.tgt[1]] - 0.4 * (p_t1 - 1.0)) < 1e-6);
    assert_true(isfinite(loss) && loss > 0);
    TU_OK(slm_model_backward(m, c, kv, &b, g, tu_err()));
    /* a different batch than the forward's is refused */
    t.tok[0] = (t.tok[0] + 1) % 32;
    assert_int_equal(slm_model_backward(m, c, kv, &b, g, tu_err()), SLM_ERR_ARG);
    free(g);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
}

/* A loss computed by the caller on a subset of output tokens (slm_ctx_dlogits, the gather and
 * scatter of the output rows) gives the gradients slm_model_loss gives with the others ignored. */
static void test_backward_output_subset(void **state) {
    (void)state;
    slm_model_config cfg = tiny_cfg(1);
    slm_model *m = rand_model(&cfg, 45);
    tbatch t;
    random_tokens(&t, 2, 7, 32, 12);
    int n_out = 0;
    for (int i = 0; i < t.n; i++) {
        t.out[i] = (int8_t)(i % 3 == 1);
        n_out += t.out[i];
    }
    tbatch tfull = t;
    for (int i = 0; i < t.n; i++)
        if (!t.out[i]) tfull.tgt[i] = -1;
    float *g_full = malloc(sizeof(float) * m->n_params), *g_sub = calloc(m->n_params, sizeof(float));
    grads_of(m, NULL, &tfull, g_full);

    slm_ctx *c = slm_ctx_new(&cfg, MAXT, 1, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&cfg, 2, 16, tu_err());
    assert_null(slm_ctx_dlogits(c)); /* nothing run yet */
    slm_batch b = as_batch(&t, 1);
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    assert_int_equal(slm_ctx_n_outputs(c), n_out);
    int counted;
    assert_true(isnan(slm_model_loss(c, t.tgt, 1.0f, &counted))); /* not every token has logits */
    float *d = slm_ctx_dlogits(c);
    for (int i = 0, row = 0; i < t.n; i++)
        if (t.out[i]) slm_cross_entropy_row(d + (size_t)row++ * 32, 32, t.tgt[i], 1.0f / n_out);
    TU_OK(slm_model_backward(m, c, kv, &b, g_sub, tu_err()));
    assert_true(tu_max_excess(g_sub, g_full, m->n_params, 0) <= SAME_TOL * max_abs(g_full, m->n_params));
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    free(g_full);
    free(g_sub);
    slm_model_free(m);
}

/* ---- errors ---- */

static void expect_range(const slm_model *m, slm_ctx *c, slm_kv_cache *kv, tbatch *t, const char *needle) {
    slm_batch b = as_batch(t, 0);
    slm_err e;
    assert_int_equal(slm_model_forward(m, c, kv, &b, &e), SLM_ERR_RANGE);
    if (!strstr(e.msg, needle)) fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void test_bad_batches(void **state) {
    (void)state;
    slm_model_config cfg = tiny_cfg(0);
    slm_model *m = rand_model(&cfg, 50);
    slm_ctx *c = slm_ctx_new(&cfg, 8, 1, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&cfg, 2, 8, tu_err());
    tbatch t;
    random_tokens(&t, 1, 5, 32, 9);
    t.tok[3] = 32;
    expect_range(m, c, kv, &t, "batch token 3");
    t.tok[3] = -1;
    expect_range(m, c, kv, &t, "token id -1");
    t.tok[3] = 0;
    t.pos[4] = 8; /* the cache holds 8 positions */
    expect_range(m, c, kv, &t, "batch token 4: pos 8");
    t.pos[4] = 4;
    t.seq[1] = 2;
    expect_range(m, c, kv, &t, "batch token 1: seq 2");
    t.seq[1] = 0;
    tbatch big;
    random_tokens(&big, 2, 5, 32, 9); /* 10 tokens, the workspace holds 8 */
    expect_range(m, c, kv, &big, "exceeds");
    /* repeated (seq, pos), empty batch */
    slm_err e;
    t.pos[2] = 1;
    slm_batch b = as_batch(&t, 0);
    assert_int_equal(slm_model_forward(m, c, kv, &b, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "batch token 2"));
    b.n_tokens = 0;
    assert_int_equal(slm_model_forward(m, c, kv, &b, &e), SLM_ERR_ARG);
    /* backward needs every attended position in the batch */
    tbatch tail = {0};
    push(&tail, 1, 3, 0, 2);
    push(&tail, 2, 4, 0, 3);
    b = as_batch(&tail, 0);
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    int counted;
    assert_true(isfinite(slm_model_loss(c, tail.tgt, 1.0f, &counted)));
    float *g = calloc(m->n_params, sizeof(float));
    assert_int_equal(slm_model_backward(m, c, kv, &b, g, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "batch token 0"));
    /* an inference workspace cannot run the backward */
    slm_ctx *ci = slm_ctx_new(&cfg, 8, 0, NULL, tu_err());
    TU_OK(slm_model_forward(m, ci, kv, &b, tu_err()));
    assert_true(isfinite(slm_model_loss(ci, tail.tgt, 1.0f, &counted)));
    assert_int_equal(slm_model_backward(m, ci, kv, &b, g, &e), SLM_ERR_ARG);
    /* a cache longer than the model's context is refused */
    assert_null(slm_kv_cache_new(&cfg, 1, 17, &e));
    assert_int_equal(e.code, SLM_ERR_RANGE);
    free(g);
    slm_ctx_free(ci);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
}

static void test_config_check(void **state) {
    (void)state;
    slm_model_config good = tiny_cfg(0), c;
    slm_err e;
    TU_OK(slm_model_config_check(&good, tu_err()));
    c = good; c.dim = 18;             /* not a multiple of 4 heads */
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "n_heads"));
    c = good; c.n_kv_heads = 3;       /* 4 % 3 */
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "n_kv_heads"));
    c = good; c.dim = 12; c.n_heads = 4; c.n_kv_heads = 4; /* head_dim 3 is odd */
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "even"));
    c = good; c.n_vocab = 0;
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "n_vocab"));
    c = good; c.n_layers = -1;
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    c = good; c.hidden_dim = 0;
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    c = good; c.ctx_len = 0;
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    c = good; c.norm_eps = 0;
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    c = good; c.rope_theta = NAN;
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    c = good; c.tied_output = 2;
    assert_int_equal(slm_model_config_check(&c, &e), SLM_ERR_ARG);
    assert_null(slm_model_new(&c, &e));
    assert_null(slm_ctx_new(&c, 4, 0, NULL, &e));
}

static void test_presets(void **state) {
    (void)state;
    slm_model_config c;
    TU_OK(slm_model_preset("small", 32000, 256, &c, tu_err()));
    assert_int_equal(c.dim, 288);
    assert_int_equal(c.n_layers, 6);
    assert_int_equal(c.n_heads, 6);
    assert_int_equal(c.hidden_dim, 768);
    assert_int_equal(c.ctx_len, 256);
    size_t n = slm_model_param_count(&c);
    assert_true(n > 15000000 && n < 15400000); /* 15,191,712 */
    TU_OK(slm_model_preset("tiny", 4096, 256, &c, tu_err()));
    n = slm_model_param_count(&c);
    assert_true(n > 900000 && n < 1200000);
    TU_OK(slm_model_preset("medium", 32000, 1024, &c, tu_err()));
    n = slm_model_param_count(&c);
    assert_true(n > 41000000 && n < 43000000);
    TU_OK(slm_model_preset("base", 32000, 1024, &c, tu_err()));
    n = slm_model_param_count(&c);
    assert_true(n > 105000000 && n < 115000000);
    slm_err e;
    assert_int_equal(slm_model_preset("huge", 32000, 256, &c, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "tiny, small, medium, base"));
    assert_int_equal(slm_model_preset("small", 0, 256, &c, &e), SLM_ERR_ARG);
}

/* The table, the carve and the count agree: tensors tile the block exactly, in order. */
static void test_tensor_table(void **state) {
    (void)state;
    for (int tied = 0; tied <= 1; tied++) {
        slm_model_config cfg = tiny_cfg(tied);
        int nt = slm_model_n_tensors(&cfg);
        assert_int_equal(nt, 1 + 9 * 2 + 1 + !tied);
        size_t off = 0;
        for (int i = 0; i < nt; i++) {
            slm_model_tensor_info info;
            slm_model_tensor_at(&cfg, i, &info);
            assert_int_equal(info.offset, off);
            off += info.ne[0] * info.ne[1];
        }
        assert_int_equal(off, slm_model_param_count(&cfg));
        slm_model_tensor_info q;
        slm_model_tensor_at(&cfg, 1 + 9 + 2, &q);
        assert_string_equal(q.name, "blk.1.attn_k.weight");
        assert_int_equal(q.ne[0], 16);
        assert_int_equal(q.ne[1], 8);
        slm_model *m = slm_model_new(&cfg, tu_err());
        assert_true(tied ? m->w.output == m->w.token_embd : m->w.output != m->w.token_embd);
        /* init: norms 1, deterministic, residual projections scaled down */
        slm_model_init_random(m, 7);
        assert_true(m->w.layers[0].attn_norm[3] == 1.0f);
        float first = m->w.layers[1].wq[5];
        slm_model_init_random(m, 7);
        assert_true(m->w.layers[1].wq[5] == first);
        slm_model_free(m);
    }
}

/* ---- GGUF ---- */

static void test_gguf_round_trip(void **state) {
    (void)state;
    for (int tied = 0; tied <= 1; tied++) {
        slm_model_config cfg = tiny_cfg(tied);
        slm_model *m = rand_model(&cfg, 60 + tied);
        slm_gguf_writer *w = slm_gguf_writer_new();
        TU_OK(slm_model_save(m, w, tu_err()));
        const char *path = tu_tmp_path(tied ? "tied.gguf" : "untied.gguf");
        TU_OK(slm_gguf_writer_write(w, path, tu_err()));
        slm_gguf_writer_free(w);
        slm_gguf *g = slm_gguf_open(path, tu_err());
        assert_non_null(g);
        assert_int_equal(slm_gguf_find_tensor(g, "output.weight") == NULL, tied);
        slm_model *back = slm_model_load(g, tu_err());
        if (!back) fail_msg("load: %s", tu_err_last());
        assert_memory_equal(&back->cfg, &m->cfg, sizeof cfg);
        assert_int_equal(back->n_params, m->n_params);
        assert_memory_equal(back->params, m->params, sizeof(float) * m->n_params);
        slm_model_free(back);
        slm_gguf_close(g);
        slm_model_free(m);
    }
}

/* Writes cfg's tensors with one changed by edit (type or shape) and returns the load error. */
static slm_status load_edited(const char *file, const char *victim, uint32_t type, uint64_t ne1_delta,
                              int drop, slm_err *e) {
    slm_model_config cfg = tiny_cfg(0);
    slm_model *m = rand_model(&cfg, 70);
    slm_gguf_writer *w = slm_gguf_writer_new();
    slm_gguf_set_str(w, "general.architecture", "llama");
    slm_gguf_set_u32(w, "llama.context_length", 16);
    slm_gguf_set_u32(w, "llama.embedding_length", 16);
    slm_gguf_set_u32(w, "llama.block_count", 2);
    slm_gguf_set_u32(w, "llama.feed_forward_length", 24);
    slm_gguf_set_u32(w, "llama.attention.head_count", 4);
    slm_gguf_set_u32(w, "llama.attention.head_count_kv", 2);
    slm_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    uint16_t *half = malloc(sizeof(uint16_t) * m->n_params);
    for (size_t i = 0; i < m->n_params; i++) half[i] = slm_f32_to_f16(m->params[i]);
    int nt = slm_model_n_tensors(&cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        int hit = victim && strcmp(info.name, victim) == 0;
        if (hit && drop) continue;
        uint64_t ne[2] = {info.ne[0], info.ne[1] + (hit ? ne1_delta : 0)};
        uint32_t ty = hit || !victim ? type : SLM_GGML_F32;
        const void *data = ty == SLM_GGML_F16 || ty == SLM_GGML_BF16 ? (const void *)(half + info.offset)
                                                                     : (const void *)(m->params + info.offset);
        TU_OK(slm_gguf_add_tensor(w, info.name, ty, info.n_dims == 1 && !hit ? 1 : 2, ne, data, tu_err()));
    }
    const char *path = tu_tmp_path(file);
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_non_null(g);
    slm_model *back = slm_model_load(g, e);
    slm_status st = back ? SLM_OK : e->code;
    if (back && !victim && type == SLM_GGML_F16) /* all F16: each parameter is its half value */
        for (size_t i = 0; i < m->n_params; i++) assert_true(back->params[i] == slm_f16_to_f32(half[i]));
    slm_model_free(back);
    slm_gguf_close(g);
    free(half);
    slm_model_free(m);
    return st;
}

static void test_gguf_load_types_and_errors(void **state) {
    (void)state;
    slm_err e;
    /* F16 everywhere converts; llama.vocab_size absent (taken from token_embd) */
    assert_int_equal(load_edited("f16.gguf", NULL, SLM_GGML_F16, 0, 0, &e), SLM_OK);
    /* a type with a dequantizer converts (BF16 here; block types in test_quantize) */
    assert_int_equal(load_edited("bf16.gguf", "blk.1.ffn_up.weight", SLM_GGML_BF16, 0, 0, &e), SLM_OK);
    /* a type without one is refused, naming the tensor and the type */
    assert_int_equal(load_edited("i32.gguf", "blk.1.ffn_up.weight", SLM_GGML_I32, 0, 0, &e), SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "blk.1.ffn_up.weight"));
    assert_non_null(strstr(e.msg, "i32"));
    /* a misshapen tensor names the tensor, the found and the expected shape */
    assert_int_equal(load_edited("shape.gguf", "blk.0.attn_v.weight", SLM_GGML_F32, 1, 0, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "blk.0.attn_v.weight"));
    assert_non_null(strstr(e.msg, "[16, 9]"));
    assert_non_null(strstr(e.msg, "expected [16, 8]"));
    /* a missing tensor is named */
    assert_int_equal(load_edited("missing.gguf", "blk.1.ffn_norm.weight", SLM_GGML_F32, 0, 1, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "blk.1.ffn_norm.weight"));
    /* another architecture is refused by name */
    slm_gguf_writer *w = slm_gguf_writer_new();
    slm_gguf_set_str(w, "general.architecture", "gpt2");
    const char *path = tu_tmp_path("gpt2.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_null(slm_model_load(g, &e));
    assert_int_equal(e.code, SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "gpt2"));
    slm_gguf_close(g);
}

/* ---- the real model: stories260K ---- */

static void test_stories260k_greedy(void **state) {
    (void)state;
    static const char expected[] =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
        "One day, she saw a big, red ball. She wanted to play with it, but it was too high.";
    slm_gguf *g = slm_gguf_open("data/models/stories260K/stories260K.gguf", tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_model *m = slm_model_load(g, tu_err());
    if (!m) fail_msg("%s", tu_err_last());
    assert_int_equal(m->cfg.dim, 64);
    assert_int_equal(m->cfg.hidden_dim, 172);
    assert_int_equal(m->cfg.n_layers, 5);
    assert_int_equal(m->cfg.n_heads, 8);
    assert_int_equal(m->cfg.n_kv_heads, 4);
    assert_int_equal(m->cfg.n_vocab, 512);
    /* llama.cpp's converter writes the tied output as an explicit copy: loaded as untied, equal */
    assert_int_equal(m->cfg.tied_output, 0);
    assert_memory_equal(m->w.output, m->w.token_embd, sizeof(float) * 512 * 64);
    const slm_gguf_kv *tokens;
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &tokens, tu_err()));
    assert_int_equal(tokens->arr_n, 512);

    enum { CTX = 256 };
    slm_ctx *c = slm_ctx_new(&m->cfg, 1, 0, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, 1, CTX, tu_err());
    char text[1024];
    size_t len = 0;
    int32_t tok = 1, pos = 0, seq = 0; /* BOS */
    int32_t ids[CTX + 1] = {1};
    while (len < sizeof expected - 1 && pos < CTX) {
        slm_batch b = {1, &tok, &pos, &seq, NULL};
        TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
        const float *z = slm_ctx_logits(c);
        int best = 0;
        for (int v = 1; v < m->cfg.n_vocab; v++)
            if (z[v] > z[best]) best = v;
        const slm_gguf_str *piece = &tokens->arr_strs[best];
        size_t before = len;
        len = tu_append_spm_piece(text, len, sizeof text, piece->ptr, piece->len);
        if (pos == 0 && len > before && text[before] == ' ') { /* no leading space after BOS */
            memmove(text + before, text + before + 1, len - before - 1);
            len--;
        }
        tok = best;
        ids[++pos] = best;
    }
    text[len] = 0;
    if (getenv("SLM_TEST_VERBOSE")) print_message("stories260K: %s\n", text);
    if (strncmp(text, expected, sizeof expected - 1) != 0)
        fail_msg("greedy text differs:\n got: %s\nwant: %s", text, expected);
    /* the whole text as one batch (batched attention path): each row's argmax is the next token */
    int n = pos;
    slm_ctx *cb = slm_ctx_new(&m->cfg, n, 0, NULL, tu_err());
    int32_t bpos[CTX], bseq[CTX] = {0};
    for (int i = 0; i < n; i++) bpos[i] = i;
    slm_batch b = {n, ids, bpos, bseq, NULL};
    TU_OK(slm_model_forward(m, cb, kv, &b, tu_err()));
    for (int i = 0; i < n; i++) {
        const float *z = slm_ctx_logits(cb) + (size_t)i * m->cfg.n_vocab;
        int best = 0;
        for (int v = 1; v < m->cfg.n_vocab; v++)
            if (z[v] > z[best]) best = v;
        assert_int_equal(best, ids[i + 1]);
    }
    slm_ctx_free(cb);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
    slm_gguf_close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_fd_untied_batched),
        cmocka_unit_test(test_grad_fd_tied_per_token),
        cmocka_unit_test(test_grad_fd_dropout),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_grad_paths_agree),
        cmocka_unit_test(test_threads_bitwise),
        cmocka_unit_test(test_threads_split_products),
        cmocka_unit_test(test_batched_equals_token_by_token),
        cmocka_unit_test(test_sequences_share_a_batch),
        cmocka_unit_test(test_loss_api),
        cmocka_unit_test(test_backward_output_subset),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_tensor_table),
        cmocka_unit_test(test_gguf_round_trip),
        cmocka_unit_test(test_gguf_load_types_and_errors),
        cmocka_unit_test(test_stories260k_greedy),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
