/* test_lora.c: LoRA adapters — dA and dB through the whole classify path against finite
 * differences (also under a rank-dropout mask, against a loss through W + s·B·diag(m)·A/(1-P)
 * written out by hand), the rank-dropout mask (pure in its arguments, keep rate 1-P), P = 0 equal
 * bit for bit to no dropout, a synthetic task learned with only the adapter and head training
 * while the base stays bit-identical (also with rank dropout 0.1), the adapter file in llama.cpp's
 * convention, the base + adapter classifier equal to the training-time model and to the merged
 * file, a quantized base, and errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "task/classifier.h"
#include "task/classify_head.h"
#include "task/classify_model.h"
#include "task/finetune.h"
#include "task/lora.h"
#include "task/task_data.h"
#include "util/synth_task.h"
#include "util/test_models.h"
#include "util/testutil.h"

/* ---- gradient check ---- */

typedef struct {
    slm_model *m;
    slm_lora *l;
    float *base;
    slm_ctx *ctx;
    slm_kv_cache *kv;
    int32_t tok[16], pos[16], seq[16], start[3], len[3], y[3];
    int8_t out[16];
    int n;
    float W[3 * 16], b[3];
    uint64_t seed, step; /* the rank-dropout mask (c->l->dropout > 0) */
} lcase;

/* The reference of slm_lora_apply_step: W = base + s/(1-P)·Σ_k m_k·B[:, k]·A[k, :], in double. */
static void ref_apply_step(const slm_lora *l, const float *base, float *params, uint64_t seed, uint64_t step) {
    double c = (double)slm_lora_scale(l) / (1.0 - (double)l->dropout);
    for (int i = 0; i < l->n_pairs; i++) {
        const slm_lora_pair *p = &l->pairs[i];
        for (int o = 0; o < p->out; o++)
            for (int j = 0; j < p->in; j++) {
                double acc = 0;
                for (int k = 0; k < l->rank; k++)
                    if (slm_lora_rank_keep(seed, step, i, k, l->dropout))
                        acc += (double)p->b[o * l->rank + k] * (double)p->a[(size_t)k * p->in + j];
                size_t at = p->offset + (size_t)o * p->in + j;
                params[at] = (float)((double)base[at] + c * acc);
            }
    }
}

static double lpath(lcase *c, float *pooled, float *logits, float *dl) {
    if (c->l->dropout > 0) ref_apply_step(c->l, c->base, c->m->params, c->seed, c->step);
    else slm_lora_apply(c->l, c->base, c->m->params);
    slm_batch b = {c->n, c->tok, c->pos, c->seq, c->out};
    TU_OK(slm_model_forward(c->m, c->ctx, c->kv, &b, tu_err()));
    slm_cls_pool(slm_ctx_hidden(c->ctx), 16, c->start, c->len, 3, SLM_POOL_MEAN, pooled);
    slm_cls_logits(c->W, c->b, pooled, 3, 16, 3, logits);
    return slm_cls_loss(logits, c->y, 3, 3, 0.0f, 1.0f, dl, NULL);
}

/* dA and dB of the training step (rank dropout P; 0: none) against finite differences. */
static void gradient_fd(float P) {
    slm_model_config cfg = {.n_vocab = 24, .dim = 16, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                            .hidden_dim = 24, .ctx_len = 8, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                            .tied_output = 1};
    lcase c = {0};
    c.m = slm_model_new(&cfg, tu_err());
    slm_model_init_random(c.m, 4);
    for (size_t i = 0; i < c.m->n_params; i++) c.m->params[i] *= 10.0f; /* weights of size ~0.2 */
    c.base = malloc(sizeof(float) * c.m->n_params);
    memcpy(c.base, c.m->params, sizeof(float) * c.m->n_params);
    slm_lora_opts lo = {.rank = 3, .alpha = 6.0f, .targets = SLM_LORA_ALL};
    c.l = slm_lora_new(&cfg, &lo, 1, tu_err());
    assert_non_null(c.l);
    assert_int_equal(c.l->n_pairs, 14);
    c.l->dropout = P;
    c.seed = 77;
    c.step = 5;
    int dropped = 0;
    for (int i = 0; i < c.l->n_pairs; i++)
        for (int k = 0; k < c.l->rank; k++) dropped += !slm_lora_rank_keep(c.seed, c.step, i, k, P);
    if (P > 0) assert_true(dropped >= 8 && dropped <= 34); /* of 42 at P = 0.5: some of each */
    else assert_int_equal(dropped, 0);
    slm_rng r;
    slm_rng_seed(&r, 9, 0);
    for (size_t i = 0; i < c.l->n_params; i++) c.l->params[i] = 0.3f * slm_rng_normal(&r); /* B != 0 */
    for (int i = 0; i < 48; i++) c.W[i] = 0.5f * slm_rng_normal(&r);
    c.n = tu_three_examples(&r, c.tok, c.pos, c.seq, c.start, c.len, c.y);
    c.ctx = slm_ctx_new_outputs(&cfg, 16, 1, 1, NULL, tu_err());
    c.kv = slm_kv_cache_new(&cfg, 3, 8, tu_err());
    float pooled[48], logits[9], dl[9], dW[48] = {0}, db[3] = {0}, dp[48], dh[16 * 16] = {0};
    if (P > 0) { /* the library's masked apply is the reference's */
        float *ref = malloc(sizeof(float) * c.m->n_params);
        ref_apply_step(c.l, c.base, ref, c.seed, c.step);
        slm_lora_apply_step(c.l, c.base, c.m->params, c.seed, c.step);
        for (int i = 0; i < c.l->n_pairs; i++) {
            size_t o = c.l->pairs[i].offset, n = (size_t)c.l->pairs[i].out * c.l->pairs[i].in;
            if (tu_max_excess(c.m->params + o, ref + o, n, 1e-5) > 1e-5)
                fail_msg("%s: masked apply", c.l->pairs[i].name);
        }
        free(ref);
    }
    lpath(&c, pooled, logits, dl);
    slm_cls_head_backward(c.W, pooled, dl, 3, 16, 3, dW, db, dp);
    slm_cls_pool_backward(dp, 16, c.start, c.len, 3, SLM_POOL_MEAN, dh);
    float *g = calloc(c.m->n_params, sizeof(float)), *dlora = malloc(sizeof(float) * c.l->n_params);
    slm_batch b = {c.n, c.tok, c.pos, c.seq, c.out};
    TU_OK(slm_model_backward_hidden(c.m, c.ctx, c.kv, &b, dh, g, tu_err()));
    slm_lora_grad_step(c.l, g, dlora, c.seed, c.step);
    double gmax = 0;
    for (size_t i = 0; i < c.l->n_params; i++) gmax = fmax(gmax, fabs(dlora[i]));
    assert_true(gmax > 0);
    int checked = 0;
    for (int pi = 0; pi < c.l->n_pairs; pi++) {
        for (int half = 0; half < 2; half++) {
            float *x = half ? c.l->pairs[pi].b : c.l->pairs[pi].a;
            size_t n = (size_t)c.l->rank * (size_t)(half ? c.l->pairs[pi].out : c.l->pairs[pi].in);
            for (int k = 0; k < 3; k++, checked++) {
                /* under dropout: two kept components and one dropped, where the pair has them */
                size_t j = 0;
                for (int tries = 0; tries < 64; tries++) {
                    j = slm_rng_below(&r, (uint32_t)n);
                    int comp = half ? (int)(j % (size_t)c.l->rank) : (int)(j / (size_t)c.l->pairs[pi].in);
                    if (P == 0 || slm_lora_rank_keep(c.seed, c.step, pi, comp, P) == (k < 2)) break;
                }
                size_t at = (size_t)(x - c.l->params) + j;
                float v = x[j];
                double fd = 0;
                for (int tries = 0; tries < 2; tries++) {
                    float eps = tries ? 1e-3f : 1e-2f;
                    x[j] = v + eps;
                    double lp = lpath(&c, pooled, logits, NULL);
                    x[j] = v - eps;
                    double lm = lpath(&c, pooled, logits, NULL);
                    x[j] = v;
                    fd = (lp - lm) / ((double)(v + eps) - (double)(v - eps));
                    if (fabs(fd - dlora[at]) <= 2e-3 * (gmax + fabs(dlora[at]))) break;
                }
                if (fabs(fd - dlora[at]) > 2e-3 * (gmax + fabs(dlora[at])))
                    fail_msg("%s.lora_%c[%zu]: fd %.6g, gradient %.6g", c.l->pairs[pi].name, half ? 'b' : 'a', j, fd,
                             (double)dlora[at]);
            }
        }
    }
    assert_int_equal(checked, 84);
    /* dropped components: exactly zero gradient (rows of dA, columns of dB); kept ones not */
    for (int pi = 0; pi < c.l->n_pairs; pi++) {
        const slm_lora_pair *pp = &c.l->pairs[pi];
        const float *dA = dlora + (pp->a - c.l->params), *dB = dlora + (pp->b - c.l->params);
        for (int k = 0; k < c.l->rank; k++) {
            int keep = slm_lora_rank_keep(c.seed, c.step, pi, k, P), nonzero = 0;
            for (int j = 0; j < pp->in; j++) nonzero += dA[(size_t)k * pp->in + j] != 0.0f;
            for (int o = 0; o < pp->out; o++) nonzero += dB[(size_t)o * c.l->rank + k] != 0.0f;
            if (keep ? nonzero == 0 : nonzero != 0)
                fail_msg("%s component %d (%s): %d nonzero gradients", pp->name, k, keep ? "kept" : "dropped", nonzero);
        }
    }
    free(g);
    free(dlora);
    free(c.base);
    slm_lora_free(c.l);
    slm_ctx_free(c.ctx);
    slm_kv_cache_free(c.kv);
    slm_model_free(c.m);
}

static void test_lora_gradient_fd(void **state) {
    (void)state;
    gradient_fd(0.0f);
}

static void test_lora_rank_dropout_gradient_fd(void **state) {
    (void)state;
    gradient_fd(0.5f);
}

/* ---- rank dropout: the mask, P = 0, the expectation ---- */

static void test_lora_rank_dropout_mask(void **state) {
    (void)state;
    /* pure: the same for the same arguments, another for another step, seed or matrix */
    enum { NP = 8, R = 16 };
    uint8_t m1[NP * R], m2[NP * R];
    int diff_step = 0, diff_seed = 0, diff_pair = 0;
    for (int i = 0; i < NP; i++)
        for (int k = 0; k < R; k++) {
            m1[i * R + k] = (uint8_t)slm_lora_rank_keep(3, 41, i, k, 0.5f);
            m2[i * R + k] = (uint8_t)slm_lora_rank_keep(3, 41, i, k, 0.5f);
            diff_step += m1[i * R + k] != slm_lora_rank_keep(3, 42, i, k, 0.5f);
            diff_seed += m1[i * R + k] != slm_lora_rank_keep(4, 41, i, k, 0.5f);
            diff_pair += m1[i * R + k] != slm_lora_rank_keep(3, 41, (i + 1) % NP, k, 0.5f);
        }
    assert_memory_equal(m1, m2, sizeof m1);
    assert_true(diff_step > 30 && diff_seed > 30 && diff_pair > 30); /* ~64 of 128 each */
    /* keep rate 1-P over many steps and components, within 4 standard deviations */
    const float ps[] = {0.1f, 0.5f, 0.9f};
    for (int t = 0; t < 3; t++) {
        long kept = 0, n = 0;
        for (uint64_t step = 0; step < 500; step++)
            for (int i = 0; i < NP; i++)
                for (int k = 0; k < R; k++, n++) kept += slm_lora_rank_keep(1, step, i, k, ps[t]);
        double q = 1.0 - ps[t], sd = sqrt(q * (1 - q) / (double)n);
        if (fabs((double)kept / n - q) > 4 * sd)
            fail_msg("P %g: keep rate %.4f, expected %.4f", ps[t], (double)kept / n, q);
    }
    /* P = 0 keeps everything */
    for (uint64_t step = 0; step < 100; step++)
        for (int k = 0; k < R; k++) assert_int_equal(slm_lora_rank_keep(1, step, 0, k, 0.0f), 1);
}

static void test_lora_rank_dropout_apply_grad(void **state) {
    (void)state;
    slm_model_config cfg = {.n_vocab = 24, .dim = 16, .n_layers = 1, .n_heads = 4, .n_kv_heads = 2,
                            .hidden_dim = 24, .ctx_len = 8, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                            .tied_output = 1};
    slm_model *m = slm_model_new(&cfg, tu_err());
    slm_model_init_random(m, 3);
    size_t n = m->n_params;
    slm_lora_opts lo = {.rank = 4, .alpha = 8.0f, .targets = SLM_LORA_ALL};
    slm_lora *l = slm_lora_new(&cfg, &lo, 1, tu_err());
    assert_non_null(l);
    assert_float_equal(l->dropout, 0.0, 0);
    slm_rng r;
    slm_rng_seed(&r, 5, 0);
    for (size_t i = 0; i < l->n_params; i++) l->params[i] = 0.3f * slm_rng_normal(&r);
    float *g = malloc(sizeof(float) * n), *p0 = malloc(sizeof(float) * n), *p1 = malloc(sizeof(float) * n);
    float *mean = calloc(n, sizeof(float));
    float *d0 = malloc(sizeof(float) * l->n_params), *d1 = malloc(sizeof(float) * l->n_params);
    for (size_t i = 0; i < n; i++) g[i] = slm_rng_normal(&r);
    /* P = 0: the step forms are the plain ones, bit for bit */
    memcpy(p0, m->params, sizeof(float) * n);
    memcpy(p1, m->params, sizeof(float) * n);
    slm_lora_apply(l, m->params, p0);
    slm_lora_apply_step(l, m->params, p1, 7, 3);
    assert_memory_equal(p0, p1, sizeof(float) * n);
    slm_lora_grad(l, g, d0);
    slm_lora_grad_step(l, g, d1, 7, 3);
    assert_memory_equal(d0, d1, sizeof(float) * l->n_params);
    /* P = 0.5: only target matrices written; averaged over steps, W_eff is the unmasked one */
    l->dropout = 0.5f;
    int steps = 2000;
    memcpy(p1, m->params, sizeof(float) * n);
    for (int step = 0; step < steps; step++) {
        slm_lora_apply_step(l, m->params, p1, 7, (uint64_t)step);
        for (size_t i = 0; i < n; i++) mean[i] += (p1[i] - m->params[i]) / (float)steps;
    }
    double dmax = 0, emax = 0;
    for (size_t i = 0; i < n; i++) {
        double want = (double)p0[i] - (double)m->params[i];
        dmax = fmax(dmax, fabs(want));
        emax = fmax(emax, fabs((double)mean[i] - want));
    }
    if (getenv("SLM_TEST_VERBOSE")) print_message("rank dropout: mean error %.4g of max %.4g\n", emax, dmax);
    assert_true(dmax > 0.1 && emax < 0.1 * dmax);
    int nt = slm_model_n_tensors(&cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        size_t k = info.ne[0] * (info.n_dims > 1 ? info.ne[1] : 1);
        if (info.n_dims == 2 && strncmp(info.name, "blk.", 4) == 0) continue;
        assert_memory_equal(p1 + info.offset, m->params + info.offset, k * sizeof(float));
    }
    /* a step where every component of a matrix is dropped leaves it the base, with zero gradient */
    l->dropout = 0.999f;
    uint64_t step = 0;
    while (slm_lora_rank_keep(7, step, 0, 0, 0.999f) + slm_lora_rank_keep(7, step, 0, 1, 0.999f) +
           slm_lora_rank_keep(7, step, 0, 2, 0.999f) + slm_lora_rank_keep(7, step, 0, 3, 0.999f)) step++;
    slm_lora_apply_step(l, m->params, p1, 7, step);
    size_t o = l->pairs[0].offset, nw = (size_t)l->pairs[0].out * l->pairs[0].in;
    assert_memory_equal(p1 + o, m->params + o, nw * sizeof(float));
    slm_lora_grad_step(l, g, d1, 7, step);
    for (size_t i = 0; i < (size_t)l->rank * (size_t)(l->pairs[0].in + l->pairs[0].out); i++)
        assert_true(d1[(l->pairs[0].a - l->params) + i] == 0.0f);
    free(g);
    free(p0);
    free(p1);
    free(mean);
    free(d0);
    free(d1);
    slm_lora_free(l);
    slm_model_free(m);
}

/* ---- a synthetic task learned with LoRA ---- */

/* The task both LoRA learning tests use: data and tokenizer (tu_synth_task), a 2-layer body with
 * seeded weights, and the fine-tuning options (100 steps, mean pooling). */
static slm_model *lora_task(const char *name, slm_task_data *d, slm_tokenizer **tok, slm_finetune_opts *o) {
    tu_synth_task(name, 320, 80, 12, d, tok);
    slm_model_config cfg = {.n_vocab = slm_tokenizer_n_vocab(*tok), .dim = 32, .n_layers = 2, .n_heads = 4,
                            .n_kv_heads = 4, .hidden_dim = 64, .ctx_len = 16, .rope_theta = 10000.0f,
                            .norm_eps = 1e-5f, .tied_output = 1};
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    slm_model_init_random(m, 21);
    slm_finetune_opts_default(o);
    o->steps = 100;
    o->batch = 16;
    o->max_len = 12;
    o->lr = 1e-2f;
    o->lr_min = 1e-3f;
    o->pooling = SLM_POOL_MEAN;
    o->eval_every = 25;
    return m;
}

static void test_lora_learns_with_frozen_base(void **state) {
    (void)state;
    slm_task_data d;
    slm_tokenizer *tok;
    slm_finetune_opts o;
    slm_model *m = lora_task("lora-synth", &d, &tok, &o);
    slm_model_config cfg = m->cfg;
    /* the base as a language-model file */
    const char *base_path = tu_tmp_path("lora-base.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_model_save(m, w, tu_err()));
    TU_OK(slm_tokenizer_save(tok, w, tu_err()));
    TU_OK(slm_gguf_writer_write(w, base_path, tu_err()));
    slm_gguf_writer_free(w);
    float *orig = malloc(sizeof(float) * m->n_params);
    memcpy(orig, m->params, sizeof(float) * m->n_params);

    slm_lora_opts lo = {.rank = 4, .alpha = 8.0f, .targets = SLM_LORA_Q | SLM_LORA_V | SLM_LORA_UP | SLM_LORA_DOWN};
    slm_lora *l = slm_lora_new(&cfg, &lo, 2, tu_err());
    assert_non_null(l);
    slm_finetune *t = slm_finetune_new(m, tok, &d, &o, NULL, tu_err());
    assert_non_null(t);
    TU_OK(slm_finetune_set_lora(t, l, tu_err()));
    assert_memory_equal(m->params, orig, sizeof(float) * m->n_params); /* B = 0: starts as the base */
    TU_OK(slm_finetune_run(t, tu_err()));
    float acc = slm_finetune_val_acc(t);
    if (getenv("SLM_TEST_VERBOSE")) print_message("LoRA val acc %.3f\n", acc);
    assert_true(acc >= 0.9f);
    /* the base is bit-identical; only the targets of the working block moved, to base + s·B·A */
    assert_memory_equal(slm_finetune_lora_base(t), orig, sizeof(float) * m->n_params);
    float *expect = malloc(sizeof(float) * m->n_params);
    memcpy(expect, orig, sizeof(float) * m->n_params);
    slm_lora_apply(l, orig, expect);
    int nt = slm_model_n_tensors(&cfg), moved = 0;
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        size_t n = info.ne[0] * (info.n_dims > 1 ? info.ne[1] : 1);
        int target = strstr(info.name, "attn_q") || strstr(info.name, "attn_v") || strstr(info.name, "ffn_up") ||
                     strstr(info.name, "ffn_down");
        if (!target) assert_memory_equal(m->params + info.offset, orig + info.offset, n * sizeof(float));
        else moved += memcmp(m->params + info.offset, orig + info.offset, n * sizeof(float)) != 0;
        for (size_t j = 0; j < n; j++) assert_true(fabsf(m->params[info.offset + j] - expect[info.offset + j]) < 1e-5f);
    }
    assert_int_equal(moved, 8);
    free(expect);

    /* the adapter file: llama.cpp's keys, names and shapes */
    const char *ad = tu_tmp_path("lora-adapter.gguf");
    TU_OK(slm_finetune_save_adapter(t, ad, tu_err()));
    slm_gguf *ga = slm_gguf_open(ad, tu_err());
    assert_non_null(ga);
    slm_gguf_str s;
    TU_OK(slm_gguf_get_str(ga, "general.type", &s, tu_err()));
    assert_true(slm_gguf_str_eq(s, "adapter"));
    TU_OK(slm_gguf_get_str(ga, "adapter.type", &s, tu_err()));
    assert_true(slm_gguf_str_eq(s, "lora"));
    float alpha;
    TU_OK(slm_gguf_get_f32(ga, "adapter.lora.alpha", &alpha, tu_err()));
    assert_float_equal(alpha, 8.0, 0);
    const slm_gguf_tensor *ta = slm_gguf_find_tensor(ga, "blk.1.ffn_up.weight.lora_a");
    const slm_gguf_tensor *tb = slm_gguf_find_tensor(ga, "blk.1.ffn_up.weight.lora_b");
    assert_non_null(ta);
    assert_non_null(tb);
    assert_int_equal(ta->ne[0], 32); /* [in, r] */
    assert_int_equal(ta->ne[1], 4);
    assert_int_equal(tb->ne[0], 4);  /* [r, out] */
    assert_int_equal(tb->ne[1], 64);
    assert_null(slm_gguf_find_tensor(ga, "blk.0.attn_k.weight.lora_a"));
    assert_non_null(slm_gguf_find_tensor(ga, "cls.weight"));
    assert_null(slm_gguf_find_tensor(ga, "token_embd.weight"));
    slm_gguf_close(ga);

    /* base + adapter predicts as the training-time model; the merged file as the pair */
    int n = 40, K = 3;
    const char **texts = malloc(sizeof(char *) * n);
    size_t *lens = malloc(sizeof(size_t) * n);
    for (int i = 0; i < n; i++) texts[i] = d.val.text[i], lens[i] = strlen(texts[i]);
    float *pa = malloc(sizeof(float) * n * K), *pm = malloc(sizeof(float) * n * K), *pq = malloc(sizeof(float) * n * K);
    slm_classifier *c = slm_classifier_load_lora(base_path, ad, NULL, tu_err());
    if (!c) fail_msg("%s", tu_err_last());
    TU_OK(slm_classifier_predict(c, texts, lens, n, pa, tu_err()));
    slm_classifier_free(c);
    double l0, a0;
    TU_OK(slm_finetune_evaluate(t, &d.val, 0, &l0, &a0, tu_err()));
    int correct = 0;
    for (int i = 0; i < n; i++) {
        int am = 0;
        for (int k = 1; k < K; k++) am = pa[i * K + k] > pa[i * K + am] ? k : am;
        correct += am == d.val.label[i];
    }
    assert_true(correct >= (int)(0.85 * n));
    const char *merged = tu_tmp_path("lora-merged.gguf");
    TU_OK(slm_classify_lora_merge(base_path, ad, merged, tu_err()));
    c = slm_classifier_load(merged, NULL, tu_err());
    if (!c) fail_msg("%s", tu_err_last());
    TU_OK(slm_classifier_predict(c, texts, lens, n, pm, tu_err()));
    slm_classifier_free(c);
    for (int i = 0; i < n * K; i++) assert_true(fabsf(pa[i] - pm[i]) < 1e-5f);
    /* the trainer's own merged save is the same model */
    const char *saved = tu_tmp_path("lora-saved.gguf");
    TU_OK(slm_finetune_save(t, saved, tu_err()));
    c = slm_classifier_load(saved, NULL, tu_err());
    TU_OK(slm_classifier_predict(c, texts, lens, n, pm, tu_err()));
    slm_classifier_free(c);
    for (int i = 0; i < n * K; i++) assert_true(fabsf(pa[i] - pm[i]) < 1e-5f);

    /* a Q8_0 base (dequantized under the adapter) agrees on nearly every prediction */
    const char *qbase = tu_tmp_path("lora-base-q8.gguf");
    slm_quantize_opts qo = {.type = SLM_GGML_Q8_0};
    TU_OK(slm_quantize_file(base_path, qbase, &qo, NULL, tu_err()));
    c = slm_classifier_load_lora(qbase, ad, NULL, tu_err());
    if (!c) fail_msg("%s", tu_err_last());
    TU_OK(slm_classifier_predict(c, texts, lens, n, pq, tu_err()));
    slm_classifier_free(c);
    int agree = 0;
    for (int i = 0; i < n; i++) {
        int x = 0, y = 0;
        for (int k = 1; k < K; k++) x = pa[i * K + k] > pa[i * K + x] ? k : x, y = pq[i * K + k] > pq[i * K + y] ? k : y;
        agree += x == y;
    }
    assert_true(agree >= n - 2);

    /* an adapter over a base of another shape is refused, naming the problem */
    slm_model_config c2 = cfg;
    c2.hidden_dim = 48;
    slm_model *other = slm_model_new(&c2, tu_err());
    const char *other_path = tu_tmp_path("lora-other.gguf");
    w = slm_gguf_writer_new();
    TU_OK(slm_model_save(other, w, tu_err()));
    TU_OK(slm_tokenizer_save(tok, w, tu_err()));
    TU_OK(slm_gguf_writer_write(w, other_path, tu_err()));
    slm_gguf_writer_free(w);
    assert_null(slm_classifier_load_lora(other_path, ad, NULL, tu_err()));
    assert_non_null(strstr(tu_err_last(), "wrong base model"));
    /* a model file is not an adapter */
    assert_null(slm_classifier_load_lora(base_path, saved, NULL, tu_err()));
    assert_non_null(strstr(tu_err_last(), "not an adapter"));
    slm_model_free(other);

    free(pa);
    free(pm);
    free(pq);
    free(texts);
    free(lens);
    free(orig);
    slm_finetune_free(t);
    slm_lora_free(l);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_task_data_free(&d);
}

static void keep_loss(void *ctx, const slm_finetune_progress *p) { *(float *)ctx = p->loss; }

/* A LoRA fine-tune with rank dropout P on the synthetic task. Mode 0 runs it and returns the val
 * accuracy. Other modes run step 0 alone (checking that its gradient used the mask of (seed, 0)),
 * then steps 1..19, and return the loss of step 20, whose forward runs through: mode 1 the
 * trainer's masked W_eff; mode 2 no mask (dropout turned off); mode 3 dropout off but B replaced
 * by B·diag(m)/(1-P), m the mask of (seed, 20) written out here. */
static float learn_with_dropout(const char *name, float p, int mode, float *adapter, size_t *n_adapter) {
    slm_task_data d;
    slm_tokenizer *tok;
    slm_finetune_opts o;
    slm_model *m = lora_task(name, &d, &tok, &o);
    slm_model_config cfg = m->cfg;
    float *orig = malloc(sizeof(float) * m->n_params);
    memcpy(orig, m->params, sizeof(float) * m->n_params);
    slm_lora_opts lo = {.rank = 4, .alpha = 8.0f, .dropout = p,
                        .targets = SLM_LORA_Q | SLM_LORA_V | SLM_LORA_UP | SLM_LORA_DOWN};
    slm_lora *l = slm_lora_new(&cfg, &lo, 2, tu_err());
    assert_non_null(l);
    slm_finetune *t = slm_finetune_new(m, tok, &d, &o, NULL, tu_err());
    assert_non_null(t);
    TU_OK(slm_finetune_set_lora(t, l, tu_err()));
    float loss = NAN;
    slm_finetune_set_callback(t, keep_loss, &loss);
    if (mode) {
        /* B starts 0, so step 0 moves exactly the columns of B its mask keeps (dB = 0 elsewhere) */
        TU_OK(slm_finetune_run_for(t, 1, tu_err()));
        int kept = 0, dropped = 0;
        for (int i = 0; i < l->n_pairs; i++)
            for (int k = 0; k < l->rank; k++) {
                int keep = slm_lora_rank_keep(o.seed, 0, i, k, p), moved = 0;
                for (int r = 0; r < l->pairs[i].out; r++) moved += l->pairs[i].b[r * l->rank + k] != 0.0f;
                if (keep ? !moved : moved) fail_msg("%s component %d: %s but B moved in %d rows", l->pairs[i].name, k,
                                                    keep ? "kept" : "dropped", moved);
                kept += keep, dropped += !keep;
            }
        assert_true(kept > 0 && dropped > 0);
        TU_OK(slm_finetune_run_for(t, 19, tu_err()));
        if (mode >= 2) l->dropout = 0;
        if (mode == 3) {
            for (int i = 0; i < l->n_pairs; i++)
                for (int r = 0; r < l->pairs[i].out; r++)
                    for (int k = 0; k < l->rank; k++)
                        l->pairs[i].b[r * l->rank + k] *=
                            slm_lora_rank_keep(o.seed, 20, i, k, p) ? 1.0f / (1.0f - p) : 0.0f;
            slm_lora_apply(l, slm_finetune_lora_base(t), m->params);
        }
        TU_OK(slm_finetune_run_for(t, 1, tu_err()));
        assert_int_equal(slm_finetune_step(t), 21);
    } else {
        TU_OK(slm_finetune_run(t, tu_err()));
    }
    float acc = mode ? loss : slm_finetune_val_acc(t);
    /* the base is untouched; the model handed back is base + s·B·A without a mask */
    assert_memory_equal(slm_finetune_lora_base(t), orig, sizeof(float) * m->n_params);
    float *expect = malloc(sizeof(float) * m->n_params);
    memcpy(expect, orig, sizeof(float) * m->n_params);
    slm_lora_apply(l, orig, expect);
    assert_true(tu_max_excess(m->params, expect, m->n_params, 1e-6) <= 1e-6);
    /* and evaluating it gives the validation accuracy reported */
    if (!mode) {
        double vl, va;
        TU_OK(slm_finetune_evaluate(t, &d.val, 0, &vl, &va, tu_err()));
        assert_float_equal(va, acc, 1e-6);
    }
    *n_adapter = l->n_params;
    memcpy(adapter, l->params, sizeof(float) * l->n_params);
    free(expect);
    free(orig);
    slm_finetune_free(t);
    slm_lora_free(l);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_task_data_free(&d);
    return acc;
}

static void test_lora_learns_with_rank_dropout(void **state) {
    (void)state;
    float *a0 = malloc(sizeof(float) * 100000), *a1 = malloc(sizeof(float) * 100000);
    size_t n0 = 0, n1 = 0;
    float acc = learn_with_dropout("lora-drop-synth", 0.1f, 0, a1, &n1);
    if (getenv("SLM_TEST_VERBOSE")) print_message("LoRA with rank dropout 0.1: val acc %.3f\n", acc);
    assert_true(acc >= 0.9f);
    /* the masks took part: the same run without dropout ends elsewhere */
    learn_with_dropout("lora-nodrop-synth", 0.0f, 0, a0, &n0);
    assert_int_equal(n0, n1);
    assert_true(memcmp(a0, a1, sizeof(float) * n0) != 0);
    /* the trainer's step 0 gradient used the mask of (its seed, 0); the forward of step 20 ran
     * through base + s·B·diag(m)·A/(1-P) with m the mask of (seed, 20): its loss is that of the
     * same W_eff written out, and not the unmasked one */
    float l1 = learn_with_dropout("lora-step-synth", 0.5f, 1, a1, &n1);
    float l2 = learn_with_dropout("lora-step2-synth", 0.5f, 2, a1, &n1);
    float l3 = learn_with_dropout("lora-step3-synth", 0.5f, 3, a1, &n1);
    if (getenv("SLM_TEST_VERBOSE"))
        print_message("step 20 loss: %.6f masked, %.6f unmasked, %.6f written out\n", l1, l2, l3);
    assert_true(isfinite(l1) && isfinite(l2) && isfinite(l3));
    assert_true(fabsf(l1 - l3) < 1e-5f * l1 && fabsf(l1 - l2) > 100 * fabsf(l1 - l3));
    free(a0);
    free(a1);
}

static void test_lora_options(void **state) {
    (void)state;
    unsigned tg;
    TU_OK(slm_lora_parse_targets("q,v,down", &tg, tu_err()));
    assert_int_equal(tg, SLM_LORA_Q | SLM_LORA_V | SLM_LORA_DOWN);
    char buf[64];
    slm_lora_targets_name(tg, buf, sizeof buf);
    assert_string_equal(buf, "q,v,down");
    assert_int_equal(slm_lora_parse_targets("q,x", &tg, tu_err()), SLM_ERR_ARG);
    assert_non_null(strstr(tu_err_last(), "'x'"));
    slm_model_config cfg = {.n_vocab = 24, .dim = 16, .n_layers = 1, .n_heads = 4, .n_kv_heads = 2,
                            .hidden_dim = 24, .ctx_len = 8, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                            .tied_output = 1};
    slm_lora_opts lo = {.rank = 2, .targets = SLM_LORA_Q};
    /* rank dropout in [0, 1); others refused naming the option and the value */
    const float bad[] = {1.0f, -0.25f, 1.5f, NAN};
    const char *shown[] = {"got 1)", "got -0.25)", "got 1.5)", "got nan)"};
    for (int i = 0; i < 4; i++) {
        lo.dropout = bad[i];
        assert_null(slm_lora_new(&cfg, &lo, 1, tu_err()));
        assert_int_equal(tu_err()->code, SLM_ERR_ARG);
        assert_non_null(strstr(tu_err_last(), "--lora-dropout"));
        if (!strstr(tu_err_last(), shown[i])) fail_msg("message '%s' lacks '%s'", tu_err_last(), shown[i]);
    }
    lo.dropout = 0.1f;
    slm_lora *ld = slm_lora_new(&cfg, &lo, 1, tu_err());
    assert_non_null(ld);
    assert_float_equal(ld->dropout, 0.1, 1e-7);
    slm_lora_free(ld);
    lo.dropout = 0;
    lo.alpha = 0; /* alpha = r: scale 1 */
    slm_lora *l = slm_lora_new(&cfg, &lo, 1, tu_err());
    assert_non_null(l);
    assert_float_equal(slm_lora_scale(l), 1.0, 0);
    assert_int_equal(l->n_pairs, 1);
    assert_int_equal(l->n_params, 2 * (16 + 16));
    slm_lora_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora_options),
        cmocka_unit_test(test_lora_gradient_fd),
        cmocka_unit_test(test_lora_rank_dropout_gradient_fd),
        cmocka_unit_test(test_lora_rank_dropout_mask),
        cmocka_unit_test(test_lora_rank_dropout_apply_grad),
        cmocka_unit_test(test_lora_learns_with_frozen_base),
        cmocka_unit_test(test_lora_learns_with_rank_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
