/* test_quantize.c: model-file quantization (src/compress/quantize.h) on a small GGUF the test
 * writes — F32, F16 and BF16 source matrices, norms, rows that are and are not whole blocks —
 * to every target: the output opens, each tensor has the type the policy gives, values are
 * within the type's error of the originals, metadata is copied and general.file_type set;
 * overrides, --keep-embeddings, quantized sources and bad arguments; stories260K's fallbacks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "compress/quantize.h"
#include "quant/quant.h"
#include "util/testutil.h"

typedef struct {
    const char *name;
    uint32_t type; /* source type in the file */
    uint64_t ne0, ne1; /* ne1 = 0: 1-D */
} spec;

static const spec SPECS[] = {
    {"token_embd.weight", SLM_GGML_F32, 256, 32},
    {"output_norm.weight", SLM_GGML_F32, 256, 0},
    {"output.weight", SLM_GGML_F32, 256, 32},
    {"blk.0.attn_norm.weight", SLM_GGML_F32, 256, 0},
    {"blk.0.attn_q.weight", SLM_GGML_F16, 256, 16},
    {"blk.0.attn_k.weight", SLM_GGML_BF16, 256, 16},
    {"blk.0.attn_v.weight", SLM_GGML_F32, 256, 16},
    {"blk.0.ffn_down.weight", SLM_GGML_F32, 96, 40},  /* whole Q8_0/Q4_0 blocks, not K blocks */
    {"blk.0.ffn_gate.weight", SLM_GGML_F32, 100, 8},  /* not even whole 32-blocks */
};
enum { N_SPECS = sizeof SPECS / sizeof SPECS[0] };

/* The original values of tensor i (as f32, after rounding to its source type). */
static float *orig[N_SPECS];

static uint64_t nelem(int i) { return SPECS[i].ne0 * (SPECS[i].ne1 ? SPECS[i].ne1 : 1); }

static int setup(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 99, 0);
    slm_gguf_writer *w = slm_gguf_writer_new();
    assert_non_null(w);
    TU_OK(slm_gguf_set_str(w, "general.architecture", "llama"));
    TU_OK(slm_gguf_set_str(w, "general.name", "quantize-test"));
    TU_OK(slm_gguf_set_u32(w, "llama.block_count", 1));
    TU_OK(slm_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f));
    const char *toks[3] = {"a", "b", "c"};
    TU_OK(slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3));
    TU_OK(slm_gguf_set_u32(w, "general.file_type", 0));
    void *data[N_SPECS];
    for (int i = 0; i < N_SPECS; i++) {
        uint64_t n = nelem(i);
        orig[i] = malloc(n * sizeof(float));
        assert_non_null(orig[i]);
        for (uint64_t j = 0; j < n; j++) orig[i][j] = SPECS[i].ne1 ? 0.05f * slm_rng_normal(&r) : 1.0f + 0.01f * (float)j;
        const slm_quant_traits *t = slm_quant_get_ref(SPECS[i].type);
        data[i] = malloc(slm_quant_row_bytes(SPECS[i].type, (int64_t)n));
        assert_non_null(data[i]);
        t->from_float(orig[i], data[i], (int64_t)n);
        t->to_float(data[i], orig[i], (int64_t)n); /* the file's values */
        uint64_t ne[2] = {SPECS[i].ne0, SPECS[i].ne1};
        TU_OK(slm_gguf_add_tensor(w, SPECS[i].name, SPECS[i].type, SPECS[i].ne1 ? 2 : 1, ne, data[i], tu_err()));
    }
    TU_OK(slm_gguf_writer_write(w, tu_tmp_path("src.gguf"), tu_err()));
    slm_gguf_writer_free(w);
    for (int i = 0; i < N_SPECS; i++) free(data[i]);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < N_SPECS; i++) free(orig[i]);
    return 0;
}

static bool quantized(uint32_t t) { return t != SLM_GGML_F32 && t != SLM_GGML_F16 && t != SLM_GGML_BF16; }

/* The type the policy gives tensor i for target (quantize.h). */
static uint32_t expected_type(int i, uint32_t target) {
    const char *n = SPECS[i].name;
    if (!SPECS[i].ne1) return SPECS[i].type;
    uint32_t t = target;
    if (quantized(target) && !strcmp(n, "output.weight")) t = target == SLM_GGML_Q8_0 ? SLM_GGML_Q8_0 : SLM_GGML_Q6_K;
    /* Q4_K_M: one layer, use_more_bits(0, 1) is true (0 >= 7·1/8) */
    if (target == SLM_GGML_Q4_K && (strstr(n, "attn_v") || strstr(n, "ffn_down"))) t = SLM_GGML_Q6_K;
    if (SPECS[i].ne0 % slm_ggml_block_size(t)) {
        if (t == SLM_GGML_Q4_K || t == SLM_GGML_Q6_K) t = SLM_GGML_Q8_0;
        if (SPECS[i].ne0 % slm_ggml_block_size(t)) t = SLM_GGML_F16;
    }
    return t;
}

/* Relative RMS error allowed for values stored as type (Gaussian data). */
static double max_rel_rmse(uint32_t type) {
    switch (type) {
    case SLM_GGML_F32: return 0;
    case SLM_GGML_F16: return 1e-3;
    case SLM_GGML_BF16: return 5e-3;
    case SLM_GGML_Q8_0: return 0.01;
    case SLM_GGML_Q6_K: return 0.03;
    case SLM_GGML_Q4_0: return 0.15;
    case SLM_GGML_Q4_K: return 0.12;
    default: return 0;
    }
}

static void check_output(const char *path, uint32_t target, uint32_t want_ftype, bool keep_embd,
                         const slm_quantize_report *rep) {
    slm_gguf *src = slm_gguf_open(tu_tmp_path("src.gguf"), tu_err());
    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_non_null(src);
    if (!g) fail_msg("%s does not open: %s", path, tu_err_last());
    /* metadata: every source key is there with its type; file_type and quantization_version set */
    for (int64_t k = 0; k < slm_gguf_n_kv(src); k++) {
        const slm_gguf_kv *a = slm_gguf_kv_at(src, k);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.ptr);
        const slm_gguf_kv *b = slm_gguf_find_kv(g, key);
        assert_non_null(b);
        assert_int_equal(a->type, b->type);
        if (strcmp(key, "general.file_type") && a->type == SLM_GGUF_STRING)
            assert_true(a->v.str.len == b->v.str.len && !memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len));
        if (a->type == SLM_GGUF_ARRAY) assert_int_equal(a->arr_n, b->arr_n);
    }
    uint32_t ft = 99, qv = 0;
    TU_OK(slm_gguf_get_u32(g, "general.file_type", &ft, tu_err()));
    TU_OK(slm_gguf_get_u32(g, "general.quantization_version", &qv, tu_err()));
    assert_int_equal(ft, want_ftype);
    assert_int_equal(qv, 2);
    assert_int_equal(rep->file_type, want_ftype);
    assert_int_equal(slm_gguf_n_tensors(g), N_SPECS);
    int fallbacks = 0;
    for (int i = 0; i < N_SPECS; i++) {
        const slm_gguf_tensor *t = slm_gguf_find_tensor(g, SPECS[i].name);
        assert_non_null(t);
        uint32_t want = keep_embd && !strcmp(SPECS[i].name, "token_embd.weight") ? SPECS[i].type
                                                                                 : expected_type(i, target);
        if (t->type != want)
            fail_msg("target %s: %s is %s, policy says %s", slm_ggml_type_name(target), SPECS[i].name,
                     slm_ggml_type_name(t->type), slm_ggml_type_name(want));
        assert_int_equal(rep->tensors[i].to, want);
        assert_int_equal(rep->tensors[i].bytes_to, t->nbytes);
        fallbacks += !strncmp(rep->tensors[i].note, "fallback", 8);
        assert_int_equal(t->ne[0], SPECS[i].ne0);
        uint64_t n = nelem(i);
        float *v = malloc(n * sizeof *v);
        assert_non_null(v);
        slm_quant_get_ref(t->type)->to_float(t->data, v, (int64_t)n);
        double se = 0, sx = 0;
        for (uint64_t j = 0; j < n; j++) se += (v[j] - (double)orig[i][j]) * (v[j] - orig[i][j]), sx += orig[i][j] * (double)orig[i][j];
        double rel = sqrt(se / sx), lim = t->type == SPECS[i].type ? 0 : max_rel_rmse(t->type);
        if (rel > lim)
            fail_msg("target %s: %s as %s: relative RMS error %.5f > %.5f", slm_ggml_type_name(target),
                     SPECS[i].name, slm_ggml_type_name(t->type), rel, lim);
        free(v);
    }
    assert_int_equal(fallbacks, rep->n_fallback);
    slm_gguf_close(g);
    slm_gguf_close(src);
}

static void test_every_target(void **state) {
    (void)state;
    const struct { const char *name; uint32_t type, ftype; int fallbacks; } T[] = {
        {"q4_0", SLM_GGML_Q4_0, 2, 1}, /* ffn_gate (row 100) -> f16 */
        {"q8_0", SLM_GGML_Q8_0, 7, 1},  {"q4_k", SLM_GGML_Q4_K, 15, 2}, {"q6_k", SLM_GGML_Q6_K, 18, 2},
        {"f16", SLM_GGML_F16, 1, 0},    {"bf16", SLM_GGML_BF16, 32, 0}, {"f32", SLM_GGML_F32, 0, 0},
    };
    for (size_t k = 0; k < sizeof T / sizeof T[0]; k++) {
        uint32_t type;
        TU_OK(slm_quantize_parse_type(T[k].name, &type, tu_err()));
        assert_int_equal(type, T[k].type);
        slm_quantize_opts o = {.type = type};
        slm_quantize_report rep;
        char out[64];
        snprintf(out, sizeof out, "out_%s.gguf", T[k].name);
        TU_OK(slm_quantize_file(tu_tmp_path("src.gguf"), tu_tmp_path(out), &o, &rep, tu_err()));
        check_output(tu_tmp_path(out), type, T[k].ftype, false, &rep);
        assert_int_equal(rep.n_fallback, T[k].fallbacks);
        slm_quantize_report_free(&rep);
    }
}

static void test_overrides_and_keep_embeddings(void **state) {
    (void)state;
    const char *ov[] = {"attn_v=q8_0", "blk.0.attn_q.weight=F32"};
    slm_quantize_opts o = {.type = SLM_GGML_Q4_0, .overrides = ov, .n_overrides = 2, .keep_embeddings = true};
    slm_quantize_report rep;
    const char *out = tu_tmp_path("ovr.gguf");
    TU_OK(slm_quantize_file(tu_tmp_path("src.gguf"), out, &o, &rep, tu_err()));
    slm_gguf *g = slm_gguf_open(out, tu_err());
    assert_non_null(g);
    assert_int_equal(slm_gguf_find_tensor(g, "blk.0.attn_v.weight")->type, SLM_GGML_Q8_0);
    assert_int_equal(slm_gguf_find_tensor(g, "blk.0.attn_q.weight")->type, SLM_GGML_F32);
    assert_int_equal(slm_gguf_find_tensor(g, "token_embd.weight")->type, SLM_GGML_F32);
    assert_int_equal(slm_gguf_find_tensor(g, "blk.0.ffn_down.weight")->type, SLM_GGML_Q4_0);
    slm_gguf_close(g);
    slm_quantize_report_free(&rep);
    /* an override whose rows do not fit falls back and says so */
    const char *ov2[] = {"ffn_down=q6_k"};
    slm_quantize_opts o2 = {.type = SLM_GGML_F16, .overrides = ov2, .n_overrides = 1};
    TU_OK(slm_quantize_file(tu_tmp_path("src.gguf"), out, &o2, &rep, tu_err()));
    for (int i = 0; i < rep.n_tensors; i++)
        if (!strcmp(rep.tensors[i].name, "blk.0.ffn_down.weight")) {
            assert_int_equal(rep.tensors[i].to, SLM_GGML_Q8_0);
            assert_non_null(strstr(rep.tensors[i].note, "fallback"));
        }
    assert_int_equal(rep.n_fallback, 1);
    slm_quantize_report_free(&rep);
}

static void test_bad_arguments_error_clearly(void **state) {
    (void)state;
    slm_err e;
    uint32_t type;
    assert_int_equal(slm_quantize_parse_type("q5_0", &type, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "q5_0"));
    assert_non_null(strstr(e.msg, "q4_k"));
    TU_OK(slm_quantize_parse_type("Q4_K", &type, tu_err()));
    assert_int_equal(type, SLM_GGML_Q4_K);
    const char *cases[][2] = {
        {"attn_v", "expected NAME=TYPE"}, {"=q8_0", "expected NAME=TYPE"}, {"attn_v=", "expected NAME=TYPE"},
        {"attn_v=q9", "unknown type 'q9'"}, {"nothing_like_it=q8_0", "no 2-D weight tensor"},
        {"output_norm=q8_0", "no 2-D weight tensor"},
    };
    const char *out = tu_tmp_path("bad.gguf");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *ov[] = {cases[i][0]};
        slm_quantize_opts o = {.type = SLM_GGML_Q8_0, .overrides = ov, .n_overrides = 1};
        slm_quantize_report rep;
        assert_int_equal(slm_quantize_file(tu_tmp_path("src.gguf"), out, &o, &rep, &e), SLM_ERR_ARG);
        if (!strstr(e.msg, cases[i][1])) fail_msg("'%s': message '%s' lacks '%s'", cases[i][0], e.msg, cases[i][1]);
        assert_non_null(strstr(e.msg, cases[i][0]));
        assert_int_equal(rep.n_tensors, 0);
    }
    FILE *f = fopen(out, "rb");
    assert_null(f); /* nothing written */
    slm_quantize_opts o = {.type = SLM_GGML_Q8_K};
    assert_int_equal(slm_quantize_file(tu_tmp_path("src.gguf"), out, &o, NULL, &e), SLM_ERR_ARG);
    slm_quantize_opts o2 = {.type = SLM_GGML_Q8_0};
    assert_int_equal(slm_quantize_file("/nonexistent/x.gguf", out, &o2, NULL, &e), SLM_ERR_IO);
}

static void test_quantized_source(void **state) {
    (void)state;
    slm_err e;
    slm_quantize_opts o = {.type = SLM_GGML_Q4_0};
    const char *q4 = tu_tmp_path("q4src.gguf"), *out = tu_tmp_path("q4again.gguf");
    TU_OK(slm_quantize_file(tu_tmp_path("src.gguf"), q4, &o, NULL, tu_err()));
    /* the same target again: every tensor keeps its type, quantized data copied byte for byte */
    TU_OK(slm_quantize_file(q4, out, &o, NULL, tu_err()));
    slm_gguf *a = slm_gguf_open(q4, tu_err()), *b = slm_gguf_open(out, tu_err());
    assert_true(a && b);
    for (int64_t i = 0; i < slm_gguf_n_tensors(a); i++) {
        const slm_gguf_tensor *x = slm_gguf_tensor_at(a, i), *y = slm_gguf_tensor_at(b, i);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->data, y->data, x->nbytes);
    }
    slm_gguf_close(a);
    slm_gguf_close(b);
    /* another target would requantize: an error naming the tensor */
    slm_quantize_opts o8 = {.type = SLM_GGML_Q8_0};
    assert_int_equal(slm_quantize_file(q4, out, &o8, NULL, &e), SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "token_embd.weight"));
    assert_non_null(strstr(e.msg, "q4_0"));
}

/* stories260K (dim 64, hidden 172): no row is whole 256-blocks, ffn_down's 172 not even
 * whole 32-blocks. */
static void test_stories260K_fallbacks(void **state) {
    (void)state;
    const char *in = "data/models/stories260K/stories260K.gguf";
    FILE *f = fopen(in, "rb");
    if (!f) skip();
    fclose(f);
    slm_quantize_opts o = {.type = SLM_GGML_Q4_K};
    slm_quantize_report rep;
    const char *out = tu_tmp_path("s260_q4k.gguf");
    TU_OK(slm_quantize_file(in, out, &o, &rep, tu_err()));
    for (int i = 0; i < rep.n_tensors; i++) {
        const slm_quantize_tensor *t = &rep.tensors[i];
        if (strstr(t->name, "ffn_down")) assert_int_equal(t->to, SLM_GGML_F16);
        else if (strstr(t->name, "norm")) assert_int_equal(t->to, SLM_GGML_F32);
        else assert_int_equal(t->to, SLM_GGML_Q8_0);
    }
    assert_true(rep.bytes_after < rep.bytes_before / 3);
    slm_quantize_report_free(&rep);
    slm_gguf *g = slm_gguf_open(out, tu_err());
    assert_non_null(g);
    slm_gguf_close(g);
}

/* A quantized file loads as an fp32 model to train from (slm finetune --init of the committed
 * Q8_0 base): every parameter equals the F32 original within Q8_0's error (one step of the
 * block's scale, amax/127, per element). */
static void test_quantized_file_loads_as_fp32(void **state) {
    (void)state;
    const char *in = "data/models/stories260K/stories260K.gguf";
    FILE *f = fopen(in, "rb");
    if (!f) skip();
    fclose(f);
    slm_quantize_opts o = {.type = SLM_GGML_Q8_0};
    const char *out = tu_tmp_path("s260_q8_for_fp32.gguf");
    TU_OK(slm_quantize_file(in, out, &o, NULL, tu_err()));
    slm_gguf *ga = slm_gguf_open(in, tu_err()), *gb = slm_gguf_open(out, tu_err());
    assert_true(ga && gb);
    slm_model *a = slm_model_load(ga, tu_err()), *b = slm_model_load(gb, tu_err());
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->n_params, b->n_params);
    double worst = 0, amax = 0;
    size_t differ = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double d = fabs((double)a->params[i] - b->params[i]);
        if (d > worst) worst = d;
        if (fabs(a->params[i]) > amax) amax = fabs(a->params[i]);
        differ += d > 0;
    }
    assert_true(differ > 0);                /* really quantized, not copied */
    assert_true(worst <= amax / 127.0 + 1e-6); /* and within a quantization step of the largest block */
    slm_model_free(a);
    slm_model_free(b);
    slm_gguf_close(ga);
    slm_gguf_close(gb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_target),
        cmocka_unit_test(test_overrides_and_keep_embeddings),
        cmocka_unit_test(test_bad_arguments_error_clearly),
        cmocka_unit_test(test_quantized_source),
        cmocka_unit_test(test_stories260K_fallbacks),
        cmocka_unit_test(test_quantized_file_loads_as_fp32),
    };
    return cmocka_run_group_tests_name("quantize", tests, setup, teardown);
}
