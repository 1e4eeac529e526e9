/* test_lora.c: LoRA adapters — dA and dB through the whole classify path against finite
 * differences, a synthetic task learned with only the adapter and head training while the base
 * stays bit-identical, the adapter file in llama.cpp's convention, the base + adapter classifier
 * equal to the training-time model and to the merged file, a quantized base, and errors. */
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
} lcase;

static double lpath(lcase *c, float *pooled, float *logits, float *dl) {
    slm_lora_apply(c->l, c->base, c->m->params);
    slm_batch b = {c->n, c->tok, c->pos, c->seq, c->out};
    TU_OK(slm_model_forward(c->m, c->ctx, c->kv, &b, tu_err()));
    slm_cls_pool(slm_ctx_hidden(c->ctx), 16, c->start, c->len, 3, SLM_POOL_MEAN, pooled);
    slm_cls_logits(c->W, c->b, pooled, 3, 16, 3, logits);
    return slm_cls_loss(logits, c->y, 3, 3, 0.0f, 1.0f, dl, NULL);
}

static void test_lora_gradient_fd(void **state) {
    (void)state;
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
    slm_rng r;
    slm_rng_seed(&r, 9, 0);
    for (size_t i = 0; i < c.l->n_params; i++) c.l->params[i] = 0.3f * slm_rng_normal(&r); /* B != 0 */
    for (int i = 0; i < 48; i++) c.W[i] = 0.5f * slm_rng_normal(&r);
    int lens[3] = {4, 2, 5};
    for (int e = 0; e < 3; e++) {
        c.start[e] = c.n;
        c.len[e] = lens[e];
        c.y[e] = (e + 1) % 3;
        for (int p = 0; p < lens[e]; p++, c.n++) {
            c.tok[c.n] = (int32_t)slm_rng_below(&r, 24);
            c.pos[c.n] = p;
            c.seq[c.n] = e;
        }
    }
    c.ctx = slm_ctx_new_outputs(&cfg, 16, 1, 1, NULL, tu_err());
    c.kv = slm_kv_cache_new(&cfg, 3, 8, tu_err());
    float pooled[48], logits[9], dl[9], dW[48] = {0}, db[3] = {0}, dp[48], dh[16 * 16] = {0};
    lpath(&c, pooled, logits, dl);
    slm_cls_head_backward(c.W, pooled, dl, 3, 16, 3, dW, db, dp);
    slm_cls_pool_backward(dp, 16, c.start, c.len, 3, SLM_POOL_MEAN, dh);
    float *g = calloc(c.m->n_params, sizeof(float)), *dlora = malloc(sizeof(float) * c.l->n_params);
    slm_batch b = {c.n, c.tok, c.pos, c.seq, c.out};
    TU_OK(slm_model_backward_hidden(c.m, c.ctx, c.kv, &b, dh, g, tu_err()));
    slm_lora_grad(c.l, g, dlora);
    double gmax = 0;
    for (size_t i = 0; i < c.l->n_params; i++) gmax = fmax(gmax, fabs(dlora[i]));
    assert_true(gmax > 0);
    int checked = 0;
    for (int pi = 0; pi < c.l->n_pairs; pi++) {
        for (int half = 0; half < 2; half++) {
            float *x = half ? c.l->pairs[pi].b : c.l->pairs[pi].a;
            size_t n = (size_t)c.l->rank * (size_t)(half ? c.l->pairs[pi].out : c.l->pairs[pi].in);
            for (int k = 0; k < 3; k++, checked++) {
                size_t j = slm_rng_below(&r, (uint32_t)n), at = (size_t)(x - c.l->params) + j;
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
    free(g);
    free(dlora);
    free(c.base);
    slm_lora_free(c.l);
    slm_ctx_free(c.ctx);
    slm_kv_cache_free(c.kv);
    slm_model_free(c.m);
}

/* ---- a synthetic task learned with LoRA ---- */

static void test_lora_learns_with_frozen_base(void **state) {
    (void)state;
    slm_task_data d;
    slm_tokenizer *tok;
    tu_synth_task("lora-synth", 320, 80, 12, &d, &tok);
    slm_model_config cfg = {.n_vocab = slm_tokenizer_n_vocab(tok), .dim = 32, .n_layers = 2, .n_heads = 4,
                            .n_kv_heads = 4, .hidden_dim = 64, .ctx_len = 16, .rope_theta = 10000.0f,
                            .norm_eps = 1e-5f, .tied_output = 1};
    slm_model *m = slm_model_new(&cfg, tu_err());
    slm_model_init_random(m, 21);
    /* the base as a language-model file */
    const char *base_path = tu_tmp_path("lora-base.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_model_save(m, w, tu_err()));
    TU_OK(slm_tokenizer_save(tok, w, tu_err()));
    TU_OK(slm_gguf_writer_write(w, base_path, tu_err()));
    slm_gguf_writer_free(w);
    float *orig = malloc(sizeof(float) * m->n_params);
    memcpy(orig, m->params, sizeof(float) * m->n_params);

    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    o.steps = 100;
    o.batch = 16;
    o.max_len = 12;
    o.lr = 1e-2f;
    o.lr_min = 1e-3f;
    o.pooling = SLM_POOL_MEAN;
    o.eval_every = 25;
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
    slm_lora_opts lo = {.rank = 2, .dropout = 0.1f, .targets = SLM_LORA_Q};
    assert_null(slm_lora_new(&cfg, &lo, 1, tu_err()));
    assert_non_null(strstr(tu_err_last(), "dropout"));
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
        cmocka_unit_test(test_lora_learns_with_frozen_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
