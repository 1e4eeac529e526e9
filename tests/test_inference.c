/* test_inference.c: the inference representation (weights where they lie in the GGUF mmap).
 *
 * A random fp32 llama model is written as a GGUF with its matrices in one block format; the file
 * is loaded with slm_model_load_mapped and its logits are compared with the fp32 forward of the
 * same weights dequantized (the same math, but the activations of block formats are quantized to
 * Q8_0/Q8_K on the fly: hence a tolerance). Batches of one and many tokens, one and two threads.
 * Also: stories260K greedy text through the mapped path at F32 and at Q8_0, the errors for an
 * unsupported architecture or tensor type, and that a mapped model refuses to train.
 */
#include "util/testutil.h"
#include "util/test_models.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/kernels.h"
#include "model/forward.h"
#include "model/model.h"
#include "quant/quant.h"

typedef struct {
    void **bufs;
    int n;
} bufs_t;

static void bufs_free(bufs_t *b) {
    for (int i = 0; i < b->n; i++) free(b->bufs[i]);
    free(b->bufs);
}

/* Writes m's tensors to path: matrices (2-D, rows whole blocks) as type, the rest as F32. The
 * fp32 model is changed to hold the dequantized values, so it is the exact reference. */
static void write_typed(slm_model *m, uint32_t type, const char *path, const char *arch) {
    const slm_model_config *cfg = &m->cfg;
    slm_gguf_writer *w = slm_gguf_writer_new();
    assert_non_null(w);
    char k[96];
    const char *p = arch ? arch : "llama";
    TU_OK(slm_gguf_set_str(w, "general.architecture", p));
#define U32(key, v)                                                                                \
    do {                                                                                           \
        snprintf(k, sizeof k, "%s.%s", p, key);                                                    \
        TU_OK(slm_gguf_set_u32(w, k, (uint32_t)(v)));                                              \
    } while (0)
    U32("context_length", cfg->ctx_len);
    U32("embedding_length", cfg->dim);
    U32("block_count", cfg->n_layers);
    U32("feed_forward_length", cfg->hidden_dim);
    U32("attention.head_count", cfg->n_heads);
    U32("attention.head_count_kv", cfg->n_kv_heads);
#undef U32
    snprintf(k, sizeof k, "%s.rope.freq_base", p);
    TU_OK(slm_gguf_set_f32(w, k, cfg->rope_theta));
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", p);
    TU_OK(slm_gguf_set_f32(w, k, cfg->norm_eps));
    int nt = slm_model_n_tensors(cfg);
    bufs_t b = {calloc((size_t)nt, sizeof(void *)), 0};
    const slm_quant_traits *tr = slm_quant_get_ref(type);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(cfg, i, &info);
        float *src = m->params + info.offset;
        uint32_t t = SLM_GGML_F32;
        if (info.n_dims == 2 && type != SLM_GGML_F32 && tr && info.ne[0] % (uint64_t)tr->block_size == 0)
            t = type;
        const void *data = src;
        if (t != SLM_GGML_F32) {
            size_t rb = slm_quant_row_bytes(t, (int64_t)info.ne[0]);
            char *q = malloc(rb * info.ne[1]);
            assert_non_null(q);
            for (uint64_t r = 0; r < info.ne[1]; r++) {
                tr->from_float(src + r * info.ne[0], q + r * rb, (int64_t)info.ne[0]);
                tr->to_float(q + r * rb, src + r * info.ne[0], (int64_t)info.ne[0]);
            }
            b.bufs[b.n++] = q;
            data = q;
        }
        TU_OK(slm_gguf_add_tensor(w, info.name, t, (uint32_t)info.n_dims, info.ne, data, tu_err()));
    }
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    bufs_free(&b);
}

static slm_model *rand_model(const slm_model_config *cfg, uint64_t seed) {
    return tu_rand_model(cfg, seed, 0.15f);
}

/* Logits of a prompt of n tokens (one batch), then of one more token (a batch of one). */
static void run_logits(const slm_model *m, slm_pool *pool, int n, float *out_prompt, float *out_next) {
    int V = m->cfg.n_vocab;
    slm_ctx *c = slm_ctx_new(&m->cfg, n, 0, pool, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, 1, m->cfg.ctx_len, tu_err());
    assert_non_null(c);
    assert_non_null(kv);
    int32_t tok[64], pos[64], seq[64] = {0};
    for (int i = 0; i < n + 1; i++) {
        tok[i] = (int32_t)((i * 7 + 3) % V);
        pos[i] = i;
    }
    slm_batch b = {n, tok, pos, seq, NULL};
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    memcpy(out_prompt, slm_ctx_logits(c), sizeof(float) * (size_t)n * V);
    slm_batch b1 = {1, tok + n, pos + n, seq, NULL};
    TU_OK(slm_model_forward(m, c, kv, &b1, tu_err()));
    memcpy(out_next, slm_ctx_logits(c), sizeof(float) * V);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *scale) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d) d = e;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    if (scale) *scale = s;
    return d;
}

/* The mapped model of `type` against the fp32 forward of its dequantized weights. rtol is
 * relative to the largest logit. */
static void check_type(uint32_t type, const slm_model_config *cfg, double rtol) {
    if (type != SLM_GGML_F32 && !slm_quant_get(type)) fail_msg("no quant traits for type %u", type);
    slm_model *ref = rand_model(cfg, 42 + type);
    const char *path = tu_tmp_path("typed.gguf");
    write_typed(ref, type, path, NULL);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_model *m = slm_model_load_mapped(g, tu_err());
    if (!m) fail_msg("%s", tu_err_last());
    assert_non_null(m->mapped);
    int V = cfg->n_vocab, n = 12;
    float *a = malloc(sizeof(float) * (size_t)(n + 1) * V * 4);
    float *ra = a + (size_t)(n + 1) * V * 2;
    run_logits(ref, NULL, n, ra, ra + (size_t)n * V);
    for (int threads = 1; threads <= 2; threads++) {
        slm_pool *pool = threads > 1 ? slm_pool_new(threads, tu_err()) : NULL;
        for (int batch = 1; batch <= n; batch += n - 1) {
            run_logits(m, pool, batch, a, a + (size_t)batch * V);
            float *rb = malloc(sizeof(float) * (size_t)(batch + 1) * V);
            run_logits(ref, NULL, batch, rb, rb + (size_t)batch * V);
            double s, d = max_abs_diff(a, rb, (size_t)(batch + 1) * V, &s);
            if (!(d <= rtol * s))
                fail_msg("type %s, batch %d, %d threads: logits differ by %g (scale %g, tolerance %g)",
                         slm_ggml_type_name(type), batch, threads, d, s, rtol * s);
            free(rb);
        }
        slm_pool_free(pool);
    }
    free(a);
    slm_model_free(m);
    slm_gguf_close(g);
    slm_model_free(ref);
}

static slm_model_config small_cfg(void) {
    slm_model_config c = {.n_vocab = 96, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                          .hidden_dim = 96, .ctx_len = 32, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                          .tied_output = 0};
    return c;
}

static slm_model_config kquant_cfg(void) {
    slm_model_config c = {.n_vocab = 40, .dim = 256, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                          .hidden_dim = 512, .ctx_len = 32, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                          .tied_output = 1};
    return c;
}

static void test_f32_mapped(void **state) {
    (void)state;
    slm_model_config c = small_cfg();
    check_type(SLM_GGML_F32, &c, 1e-5);
    c.tied_output = 1;
    check_type(SLM_GGML_F32, &c, 1e-5);
}
static void test_f16_mapped(void **state) {
    (void)state;
    slm_model_config c = small_cfg();
    check_type(SLM_GGML_F16, &c, 1e-4);
}
static void test_bf16_mapped(void **state) {
    (void)state;
    slm_model_config c = small_cfg();
    check_type(SLM_GGML_BF16, &c, 1e-4);
}
static void test_q8_0_mapped(void **state) {
    (void)state;
    slm_model_config c = small_cfg();
    check_type(SLM_GGML_Q8_0, &c, 0.02);
}
static void test_q4_0_mapped(void **state) {
    (void)state;
    slm_model_config c = small_cfg();
    check_type(SLM_GGML_Q4_0, &c, 0.03);
}
static void test_q4_k_mapped(void **state) {
    (void)state;
    slm_model_config c = kquant_cfg();
    /* Q8_K activations carry one scale per 256 values (Q8_0: per 32): a coarser tolerance */
    check_type(SLM_GGML_Q4_K, &c, 0.1);
}
static void test_q6_k_mapped(void **state) {
    (void)state;
    slm_model_config c = kquant_cfg();
    check_type(SLM_GGML_Q6_K, &c, 0.1);
}

/* Two threads give bit-identical logits to one (work split by output rows, one call each). */
static void test_threads_deterministic(void **state) {
    (void)state;
    slm_model_config cfg = kquant_cfg();
    slm_model *ref = rand_model(&cfg, 7);
    const char *path = tu_tmp_path("det.gguf");
    write_typed(ref, SLM_GGML_Q8_0, path, NULL);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    slm_model *m = slm_model_load_mapped(g, tu_err());
    if (!m) fail_msg("%s", tu_err_last());
    int V = cfg.n_vocab, n = 20;
    float *a = malloc(sizeof(float) * (size_t)(n + 1) * V * 2), *b = a + (size_t)(n + 1) * V;
    run_logits(m, NULL, n, a, a + (size_t)n * V);
    slm_pool *pool = slm_pool_new(2, tu_err());
    run_logits(m, pool, n, b, b + (size_t)n * V);
    assert_memory_equal(a, b, sizeof(float) * (size_t)(n + 1) * V);
    slm_pool_free(pool);
    free(a);
    slm_model_free(m);
    slm_gguf_close(g);
    slm_model_free(ref);
}

static void test_errors(void **state) {
    (void)state;
    slm_model_config cfg = small_cfg();
    slm_model *ref = rand_model(&cfg, 3);
    const char *path = tu_tmp_path("arch.gguf");
    write_typed(ref, SLM_GGML_F32, path, "gpt2");
    slm_gguf *g = slm_gguf_open(path, tu_err());
    slm_err e;
    assert_null(slm_model_load_mapped(g, &e));
    assert_int_equal(e.code, SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "gpt2"));
    slm_gguf_close(g);
    write_typed(ref, SLM_GGML_F32, path, NULL);
    g = slm_gguf_open(path, tu_err());
    slm_model *m = slm_model_load_mapped(g, tu_err());
    assert_non_null(m);
    /* a mapped model refuses to train */
    slm_ctx *c = slm_ctx_new(&m->cfg, 4, 1, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, 1, 8, tu_err());
    int32_t tok[4] = {1, 2, 3, 4}, pos[4] = {0, 1, 2, 3}, seq[4] = {0};
    slm_batch b = {4, tok, pos, seq, NULL};
    assert_int_equal(slm_model_forward(m, c, kv, &b, &e), SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "training"));
    float *grads = calloc(m->n_params + 1, sizeof(float));
    assert_int_equal(slm_model_backward(m, c, kv, &b, grads, &e), SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "training"));
    free(grads);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
    slm_gguf_close(g);
    slm_model_free(ref);
}

/* A tensor of an unsupported type names the tensor and the type. */
static void test_unsupported_type(void **state) {
    (void)state;
    slm_model_config cfg = small_cfg();
    slm_model *ref = rand_model(&cfg, 5);
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_gguf_set_str(w, "general.architecture", "llama"));
    TU_OK(slm_gguf_set_u32(w, "llama.context_length", 32));
    TU_OK(slm_gguf_set_u32(w, "llama.embedding_length", 64));
    TU_OK(slm_gguf_set_u32(w, "llama.block_count", 2));
    TU_OK(slm_gguf_set_u32(w, "llama.feed_forward_length", 96));
    TU_OK(slm_gguf_set_u32(w, "llama.attention.head_count", 4));
    TU_OK(slm_gguf_set_u32(w, "llama.attention.head_count_kv", 2));
    int nt = slm_model_n_tensors(&cfg);
    static unsigned char q5[96 * 64]; /* Q5_0: 22 bytes per 32; zeros are a valid block */
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        int victim = strcmp(info.name, "blk.1.ffn_up.weight") == 0;
        TU_OK(slm_gguf_add_tensor(w, info.name, victim ? SLM_GGML_Q5_0 : SLM_GGML_F32, (uint32_t)info.n_dims,
                                  info.ne, victim ? (const void *)q5 : (const void *)(ref->params + info.offset),
                                  tu_err()));
    }
    const char *path = tu_tmp_path("q5.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    slm_err e;
    assert_null(slm_model_load_mapped(g, &e));
    assert_int_equal(e.code, SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "q5_0"));
    assert_non_null(strstr(e.msg, "blk.1.ffn_up.weight"));
    slm_gguf_close(g);
    slm_model_free(ref);
}

/* ---- stories260K ---- */

static const char stories_expected[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.";

static void stories_greedy(const char *path, slm_pool *pool) {
    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_model *m = slm_model_load_mapped(g, tu_err());
    if (!m) fail_msg("%s", tu_err_last());
    const slm_gguf_kv *tokens;
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &tokens, tu_err()));
    slm_ctx *c = slm_ctx_new(&m->cfg, 1, 0, pool, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, 1, 256, tu_err());
    char text[1024];
    size_t len = 0;
    int32_t tok = 1, pos = 0, seq = 0;
    while (len < sizeof stories_expected - 1 && pos < 256) {
        slm_batch b = {1, &tok, &pos, &seq, NULL};
        TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
        const float *z = slm_ctx_logits(c);
        int best = 0;
        for (int v = 1; v < m->cfg.n_vocab; v++)
            if (z[v] > z[best]) best = v;
        size_t before = len;
        len = tu_append_spm_piece(text, len, sizeof text, tokens->arr_strs[best].ptr, tokens->arr_strs[best].len);
        if (pos == 0 && len > before && text[before] == ' ') {
            memmove(text + before, text + before + 1, len - before - 1);
            len--;
        }
        tok = best;
        pos++;
    }
    text[len] = 0;
    if (strncmp(text, stories_expected, sizeof stories_expected - 1) != 0)
        fail_msg("%s: greedy text differs:\n got: %s\nwant: %s", path, text, stories_expected);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
    slm_gguf_close(g);
}

static void test_stories260k_mapped(void **state) {
    (void)state;
    const char *src = "data/models/stories260K/stories260K.gguf";
    stories_greedy(src, NULL);
    /* quantize the eligible matrices (rows whole Q8_0 blocks) to Q8_0, keep everything else */
    slm_gguf *g = slm_gguf_open(src, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_gguf_writer *w = slm_gguf_writer_new();
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) TU_OK(slm_gguf_set_kv_from(w, g, slm_gguf_kv_at(g, i)));
    const slm_quant_traits *tr = slm_quant_get_ref(SLM_GGML_Q8_0);
    assert_non_null(tr);
    int64_t nt = slm_gguf_n_tensors(g), n_q = 0;
    void **bufs = calloc((size_t)nt, sizeof *bufs);
    for (int64_t i = 0; i < nt; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        char name[SLM_GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (t->n_dims == 2 && t->type == SLM_GGML_F32 && t->ne[0] % 32 == 0) {
            size_t rb = slm_quant_row_bytes(SLM_GGML_Q8_0, (int64_t)t->ne[0]);
            char *q = malloc(rb * t->ne[1]);
            for (uint64_t r = 0; r < t->ne[1]; r++)
                tr->from_float((const float *)t->data + r * t->ne[0], q + r * rb, (int64_t)t->ne[0]);
            bufs[i] = q;
            n_q++;
            TU_OK(slm_gguf_add_tensor(w, name, SLM_GGML_Q8_0, t->n_dims, t->ne, q, tu_err()));
        } else {
            TU_OK(slm_gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, tu_err()));
        }
    }
    assert_true(n_q >= 20);
    const char *qpath = tu_tmp_path("stories260K-q8_0.gguf");
    TU_OK(slm_gguf_writer_write(w, qpath, tu_err()));
    slm_gguf_writer_free(w);
    for (int64_t i = 0; i < nt; i++) free(bufs[i]);
    free(bufs);
    slm_gguf_close(g);
    stories_greedy(qpath, NULL);
    slm_pool *pool = slm_pool_new(2, tu_err());
    stories_greedy(qpath, pool);
    slm_pool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_mapped),
        cmocka_unit_test(test_f16_mapped),
        cmocka_unit_test(test_bf16_mapped),
        cmocka_unit_test(test_q8_0_mapped),
        cmocka_unit_test(test_q4_0_mapped),
        cmocka_unit_test(test_q4_k_mapped),
        cmocka_unit_test(test_q6_k_mapped),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unsupported_type),
        cmocka_unit_test(test_stories260k_mapped),
    };
    return cmocka_run_group_tests_name("inference", tests, NULL, NULL);
}
