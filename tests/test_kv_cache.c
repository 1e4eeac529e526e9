/* test_kv_cache.c: the KV cache in F16 against F32 — the half conversions (AVX2+F16C rows against
 * the scalar reference, bit for bit), the attention kernel in pieces against the whole kernel,
 * logits with an F16 cache within a stated tolerance of the F32 cache (batches of one and many
 * tokens, interleaved sequences, 1 and 2 threads, key tiles crossed), stories260K's documented
 * greedy text unchanged with an F16 cache, half the bytes, and the errors (bad type, backward).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "core/rng.h"
#include "generate/generate.h"
#include "kernels/kernels.h"
#include "model/forward.h"
#include "model/workspace.h" /* SLM_ATT_KTILE; to force the attention split across threads */
#include "tokenizer/tokenizer.h"
#include "util/testutil.h"
#include "util/test_models.h"

/* ---- conversions ---- */

static void test_f16_rows_match_reference(void **state) {
    (void)state;
    /* every half, in rows whose lengths leave tails */
    uint16_t *h = malloc(65536 * sizeof *h), *h2 = malloc(65536 * sizeof *h);
    float *a = malloc(65536 * sizeof *a), *b = malloc(65536 * sizeof *b);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    slm_f16_to_f32_row(a, h, 65536);
    slm_f16_to_f32_row_ref(b, h, 65536);
    assert_memory_equal(a, b, 65536 * sizeof *a);
    slm_f16_to_f32_row(a, h + 3, 13);
    assert_memory_equal(a, b + 3, 13 * sizeof *a);
    /* strided tiles: 7 rows of 12 out of rows of 40 */
    float t[7 * 12];
    slm_f16_to_f32_rows(t, 12, h + 5, 40, 7, 12);
    for (int r0 = 0; r0 < 7; r0++) assert_memory_equal(t + r0 * 12, b + 5 + r0 * 40, 12 * sizeof *a);
    /* float -> half: every half's float, the halfway points between neighbours and beside them,
     * random bit patterns (NaN, inf, subnormal, overflow included) */
    slm_rng r;
    slm_rng_seed(&r, 11, 0);
    float *f = malloc(4 * 65536 * sizeof *f);
    uint16_t *x = malloc(4 * 65536 * sizeof *x), *y = malloc(4 * 65536 * sizeof *y);
    size_t n = 0;
    for (int i = 0; i < 65536; i++) {
        f[n++] = b[i];
        uint32_t bits;
        memcpy(&bits, &b[i], sizeof bits);
        uint32_t mid = bits + 0x1000u, near = bits + 0x0FFFu;
        memcpy(&f[n++], &mid, sizeof mid);
        memcpy(&f[n++], &near, sizeof near);
        uint32_t rnd = (uint32_t)slm_rng_below(&r, 0xFFFFFFFFu) ^ ((uint32_t)i << 16);
        memcpy(&f[n++], &rnd, sizeof rnd);
    }
    slm_f32_to_f16_row(x, f, n);
    slm_f32_to_f16_row_ref(y, f, n);
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) fail_msg("f32 %a -> f16: simd %04x, reference %04x", (double)f[i], x[i], y[i]);
    (void)h2;
    free(h), free(h2), free(a), free(b), free(f), free(x), free(y);
}

/* the per-token attention in pieces (the F16 cache's path) is the whole kernel exactly */
static void test_attn_pieces_equal_whole(void **state) {
    (void)state;
    enum { HD = 24, NK = 300, TILE = 128 };
    slm_rng r;
    slm_rng_seed(&r, 3, 0);
    float *k = malloc(NK * HD * sizeof(float)), *v = malloc(NK * HD * sizeof(float));
    float q[HD], whole[HD], pieces[HD], p1[NK], p2[NK];
    for (int i = 0; i < NK * HD; i++) k[i] = slm_rng_normal(&r), v[i] = slm_rng_normal(&r);
    for (int i = 0; i < HD; i++) q[i] = slm_rng_normal(&r);
    for (int n = 1; n <= NK; n += 37) {
        slm_attn_query_fwd(whole, p1, q, k, HD, v, HD, n, HD, 0.2f);
        for (int j0 = 0; j0 < n; j0 += TILE)
            slm_attn_scores(p2 + j0, q, k + (size_t)j0 * HD, HD, n - j0 < TILE ? n - j0 : TILE, HD, 0.2f);
        slm_softmax_fwd(p2, p2, n);
        memset(pieces, 0, sizeof pieces);
        for (int j0 = 0; j0 < n; j0 += TILE)
            slm_attn_accum_v(pieces, p2 + j0, v + (size_t)j0 * HD, HD, n - j0 < TILE ? n - j0 : TILE, HD);
        assert_memory_equal(whole, pieces, sizeof whole);
    }
    free(k), free(v);
}

/* ---- a small random model ---- */

enum { CTX = 2 * SLM_ATT_KTILE + 40 }; /* three key tiles */

static slm_model_config small_cfg(void) {
    slm_model_config c = {.n_vocab = 48, .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                          .hidden_dim = 48, .ctx_len = CTX, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                          .tied_output = 0};
    return c;
}

static slm_model *rand_model(const slm_model_config *cfg, uint64_t seed) {
    return tu_rand_model(cfg, seed, 0.3f);
}

/* Two sequences through one cache: seq 1 gets a prompt of P tokens in one batch (the batched
 * path), then seq 0 and seq 1 advance interleaved, one token each per batch (the per-token path),
 * and a last batch of 6 tokens of seq 0 (the batched path starting mid-cache). All logits kept. */
enum { P = SLM_ATT_KTILE + 20, STEPS = 110 };
static const int n_logit_rows = P + 2 * STEPS + 6;

static void run_script(const slm_model *m, uint32_t kv_type, int threads, float *out) {
    const slm_model_config *cfg = &m->cfg;
    int V = cfg->n_vocab;
    slm_pool *pool = threads > 1 ? slm_pool_new(threads, tu_err()) : NULL;
    slm_ctx *c = slm_ctx_new(cfg, P, 0, pool, tu_err());
    assert_non_null(c);
    c->att_split_min = 0; /* split attention across the threads even at this size */
    c->split_min_macs = 0;
    slm_kv_cache *kv = slm_kv_cache_new_type(cfg, 2, CTX, kv_type, tu_err());
    assert_non_null(kv);
    int32_t tok[P], pos[P], seq[P];
    slm_rng r;
    slm_rng_seed(&r, 9, 1);
    for (int i = 0; i < P; i++) tok[i] = (int32_t)slm_rng_below(&r, (uint32_t)V), pos[i] = i, seq[i] = 1;
    slm_batch b = {P, tok, pos, seq, NULL};
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    memcpy(out, slm_ctx_logits(c), sizeof(float) * (size_t)P * V);
    size_t row = P;
    for (int s = 0; s < STEPS; s++) {
        int32_t t2[2] = {(int32_t)slm_rng_below(&r, (uint32_t)V), (int32_t)slm_rng_below(&r, (uint32_t)V)};
        int32_t p2[2] = {s, P + s}, q2[2] = {0, 1};
        slm_batch b2 = {2, t2, p2, q2, NULL};
        TU_OK(slm_model_forward(m, c, kv, &b2, tu_err()));
        memcpy(out + row * V, slm_ctx_logits(c), sizeof(float) * 2 * V);
        row += 2;
    }
    for (int i = 0; i < 6; i++) tok[i] = (int32_t)slm_rng_below(&r, (uint32_t)V), pos[i] = STEPS + i, seq[i] = 0;
    slm_batch b6 = {6, tok, pos, seq, NULL};
    TU_OK(slm_model_forward(m, c, kv, &b6, tu_err()));
    memcpy(out + row * V, slm_ctx_logits(c), sizeof(float) * 6 * V);
    slm_kv_cache_free(kv);
    slm_ctx_free(c);
    slm_pool_free(pool);
}

static void test_f16_logits_close_to_f32(void **state) {
    (void)state;
    slm_model_config cfg = small_cfg();
    slm_model *m = rand_model(&cfg, 5);
    size_t n = (size_t)n_logit_rows * cfg.n_vocab;
    float *ref = malloc(n * sizeof(float)), *h1 = malloc(n * sizeof(float)), *h2 = malloc(n * sizeof(float)),
          *f2 = malloc(n * sizeof(float));
    run_script(m, SLM_GGML_F32, 1, ref);
    run_script(m, SLM_GGML_F16, 1, h1);
    run_script(m, SLM_GGML_F16, 2, h2);
    run_script(m, SLM_GGML_F32, 2, f2);
    /* threads change nothing, with either cache */
    assert_memory_equal(h1, h2, n * sizeof(float));
    assert_memory_equal(ref, f2, n * sizeof(float));
    /* Tolerance: each key and value is rounded once to half, a relative error <= 2^-11 (4.9e-4).
     * Through two layers of O(1) activations that moves a logit by a few times that relative to
     * the logits' scale (measured: 1.95e-3 with this seed); 4e-3 of the scale (8 ulps of half)
     * bounds it and still fails if any key or value were read wrongly (a wrong row or tile moves
     * logits by O(scale)). */
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(ref[i]));
        err = fmax(err, fabs(h1[i] - ref[i]));
    }
    print_message("f16 cache: max |logit error| %.3g, logit scale %.3g (ratio %.3g)\n", err, scale, err / scale);
    assert_true(err > 0);             /* the cache really is half precision */
    assert_true(err <= 4e-3 * scale);
    free(ref), free(h1), free(h2), free(f2);
    slm_model_free(m);
}

/* ---- the cache itself ---- */

static void test_f16_half_the_bytes_and_errors(void **state) {
    (void)state;
    slm_model_config cfg = small_cfg();
    slm_kv_cache *a = slm_kv_cache_new(&cfg, 3, 100, tu_err()), *b = slm_kv_cache_new_type(&cfg, 3, 100, SLM_GGML_F16, tu_err());
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->type, SLM_GGML_F32);
    assert_int_equal(b->type, SLM_GGML_F16);
    size_t expect = 2 * (size_t)cfg.n_layers * 3 * 100 * 16 /* kvd = 2 heads x 8 */ * sizeof(float);
    assert_int_equal(slm_kv_cache_bytes(a), expect);
    assert_int_equal(slm_kv_cache_bytes(b), expect / 2);
    assert_null(b->k);
    assert_non_null(b->kh);
    slm_kv_cache_clear(b, 1);
    slm_kv_cache_clear(b, -1);
    slm_kv_cache_free(a);
    slm_kv_cache_free(b);
    slm_err e;
    assert_null(slm_kv_cache_new_type(&cfg, 1, 8, SLM_GGML_Q8_0, &e));
    assert_int_equal(e.code, SLM_ERR_ARG);
    uint32_t t = 99;
    TU_OK(slm_kv_type_from_name("F16", &t, tu_err()));
    assert_int_equal(t, SLM_GGML_F16);
    TU_OK(slm_kv_type_from_name("f32", &t, tu_err()));
    assert_int_equal(t, SLM_GGML_F32);
    assert_int_equal(slm_kv_type_from_name("q8_0", &t, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "q8_0"));
}

static void test_backward_refuses_f16(void **state) {
    (void)state;
    slm_model_config cfg = small_cfg();
    slm_model *m = rand_model(&cfg, 6);
    slm_ctx *c = slm_ctx_new(&cfg, 8, 1, NULL, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new_type(&cfg, 1, 8, SLM_GGML_F16, tu_err());
    int32_t tok[8], pos[8], seq[8] = {0}, tgt[8];
    for (int i = 0; i < 8; i++) tok[i] = i, pos[i] = i, tgt[i] = i + 1;
    slm_batch b = {8, tok, pos, seq, NULL};
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err())); /* a forward (evaluation) is fine */
    int counted;
    assert_false(isnan(slm_model_loss(c, tgt, 1.0f, &counted)));
    float *g = calloc(slm_model_param_count(&cfg), sizeof(float));
    slm_err e;
    assert_int_equal(slm_model_backward(m, c, kv, &b, g, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "F16"));
    assert_non_null(strstr(e.msg, "F32"));
    float *dh = calloc((size_t)8 * cfg.dim, sizeof(float));
    assert_int_equal(slm_model_backward_hidden(m, c, kv, &b, dh, g, &e), SLM_ERR_ARG);
    free(dh);
    free(g);
    slm_kv_cache_free(kv);
    slm_ctx_free(c);
    slm_model_free(m);
}

/* ---- stories260K ---- */

typedef struct {
    char buf[4096];
    size_t len;
} collected;

static int collect(void *ctx, const char *text, size_t len) {
    collected *c = ctx;
    if (c->len + len >= sizeof c->buf) return 1;
    memcpy(c->buf + c->len, text, len);
    c->len += len;
    c->buf[c->len] = 0;
    return 0;
}

/* the documented greedy text (data/models/stories260K/README.md) */
static const char stories_expected[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.";

static void test_stories260k_f16_greedy_unchanged(void **state) {
    (void)state;
    const char *path = "data/models/stories260K/stories260K.gguf";
    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_tokenizer *tok = slm_tokenizer_load(g, tu_err());
    slm_model *m = slm_model_load_mapped(g, tu_err());
    assert_non_null(tok);
    assert_non_null(m);
    slm_sampler_params sp;
    slm_sampler_params_default(&sp);
    sp.temperature = 0;
    collected f32 = {0}, f16 = {0}, f16t = {0};
    slm_generate_stats st;
    slm_generate_opts go = {.max_tokens = 200, .stop_at_eos = 0, .kv_type = SLM_GGML_F32};
    TU_OK(slm_generate(m, tok, "", 0, &sp, &go, NULL, collect, &f32, &st, tu_err()));
    go.kv_type = SLM_GGML_F16;
    TU_OK(slm_generate(m, tok, "", 0, &sp, &go, NULL, collect, &f16, &st, tu_err()));
    slm_pool *pool = slm_pool_new(2, tu_err());
    TU_OK(slm_generate(m, tok, "", 0, &sp, &go, pool, collect, &f16t, &st, tu_err()));
    slm_pool_free(pool);
    if (strncmp(f16.buf, stories_expected, sizeof stories_expected - 1) != 0)
        fail_msg("greedy text with an F16 cache differs:\n got: %s\nwant: %s", f16.buf, stories_expected);
    assert_string_equal(f16.buf, f32.buf); /* all 200 tokens, not just the documented start */
    assert_string_equal(f16t.buf, f32.buf);
    /* a prompt processed in one batch (the batched path over F16 keys), then generation */
    collected a = {0}, b = {0};
    const char *prompt = "Once upon a time, there was a little dog named Max. He liked to run";
    go.kv_type = SLM_GGML_F32;
    TU_OK(slm_generate(m, tok, prompt, strlen(prompt), &sp, &go, NULL, collect, &a, &st, tu_err()));
    go.kv_type = SLM_GGML_F16;
    TU_OK(slm_generate(m, tok, prompt, strlen(prompt), &sp, &go, NULL, collect, &b, &st, tu_err()));
    assert_string_equal(a.buf, b.buf);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_gguf_close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_rows_match_reference),
        cmocka_unit_test(test_attn_pieces_equal_whole),
        cmocka_unit_test(test_f16_logits_close_to_f32),
        cmocka_unit_test(test_f16_half_the_bytes_and_errors),
        cmocka_unit_test(test_backward_refuses_f16),
        cmocka_unit_test(test_stories260k_f16_greedy_unchanged),
    };
    return cmocka_run_group_tests_name("kv_cache", tests, NULL, NULL);
}
