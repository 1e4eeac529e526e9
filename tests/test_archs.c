/* test_archs.c: the model families of the inference path — llama, qwen2 (q/k/v biases, NEOX
 * RoPE), qwen3 (per-head q/k RMSNorm before RoPE, head_dim from key_length != dim / heads, NEOX)
 * — against a straightforward reference forward written here, in double precision, one token at a
 * time (the naive loops are the specification).
 *
 * Each model is built with random weights in memory, written as a GGUF with llama.cpp's tensor
 * names and <arch>.* keys, loaded with slm_model_load_mapped and run as one batch (the prompt) plus
 * one token. At F32 the logits match tightly; at Q8_0 they match the reference of the dequantized
 * weights within the activation-quantization tolerance.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/forward.h"
#include "model/model.h"
#include "quant/quant.h"

typedef struct {
    const char *arch;
    int V, D, L, H, Hkv, hd, F, ctx, tied, bias, qknorm, neox, key_length;
    float theta, eps;
} spec;

typedef struct {
    float *embd, *out, *out_norm;
    float *attn_norm[4], *ffn_norm[4], *wq[4], *wk[4], *wv[4], *wo[4], *wg[4], *wu[4], *wd[4];
    float *bq[4], *bk[4], *bv[4], *qn[4], *kn[4];
} weights;

static float *rnd(slm_rng *r, size_t n, float scale, float offset) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = offset + scale * slm_rng_normal(r);
    return p;
}

static void make_weights(const spec *s, weights *w, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed, 1);
    size_t D = s->D, F = s->F, qd = (size_t)s->hd * s->H, kvd = (size_t)s->hd * s->Hkv;
    memset(w, 0, sizeof *w);
    w->embd = rnd(&r, (size_t)s->V * D, 1.0f, 0);
    w->out = s->tied ? w->embd : rnd(&r, (size_t)s->V * D, 0.15f, 0);
    w->out_norm = rnd(&r, D, 0.2f, 1);
    for (int l = 0; l < s->L; l++) {
        w->attn_norm[l] = rnd(&r, D, 0.2f, 1);
        w->ffn_norm[l] = rnd(&r, D, 0.2f, 1);
        w->wq[l] = rnd(&r, qd * D, 0.15f, 0);
        w->wk[l] = rnd(&r, kvd * D, 0.15f, 0);
        w->wv[l] = rnd(&r, kvd * D, 0.15f, 0);
        w->wo[l] = rnd(&r, D * qd, 0.15f, 0);
        w->wg[l] = rnd(&r, F * D, 0.15f, 0);
        w->wu[l] = rnd(&r, F * D, 0.15f, 0);
        w->wd[l] = rnd(&r, D * F, 0.15f, 0);
        if (s->bias) {
            w->bq[l] = rnd(&r, qd, 0.5f, 0);
            w->bk[l] = rnd(&r, kvd, 0.5f, 0);
            w->bv[l] = rnd(&r, kvd, 0.5f, 0);
        }
        if (s->qknorm) {
            w->qn[l] = rnd(&r, (size_t)s->hd, 0.2f, 1);
            w->kn[l] = rnd(&r, (size_t)s->hd, 0.2f, 1);
        }
    }
}

static void free_weights(const spec *s, weights *w) {
    free(w->embd);
    if (!s->tied) free(w->out);
    free(w->out_norm);
    for (int l = 0; l < s->L; l++) {
        float *all[] = {w->attn_norm[l], w->ffn_norm[l], w->wq[l], w->wk[l], w->wv[l], w->wo[l], w->wg[l],
                        w->wu[l], w->wd[l], w->bq[l], w->bk[l], w->bv[l], w->qn[l], w->kn[l]};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    }
}

/* ---- the reference forward ---- */

static void ref_rmsnorm(double *y, const double *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

static void ref_matvec(double *y, const float *W, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int k = 0; k < cols; k++) s += (double)W[(size_t)r * cols + k] * x[k];
        y[r] = s;
    }
}

static void ref_rope(double *x, int hd, int pos, float theta, int neox) {
    for (int i = 0; i < hd / 2; i++) {
        double a = pos * pow(theta, -2.0 * i / hd), c = cos(a), sn = sin(a);
        int i0 = neox ? i : 2 * i, i1 = neox ? i + hd / 2 : 2 * i + 1;
        double x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * sn;
        x[i1] = x0 * sn + x1 * c;
    }
}

/* logits (n, V) of tokens 0..n-1 of one sequence */
static void ref_forward(const spec *s, const weights *w, const int32_t *tok, int n, double *logits) {
    int D = s->D, F = s->F, hd = s->hd, qd = hd * s->H, kvd = hd * s->Hkv;
    double *K = calloc((size_t)s->L * n * kvd, sizeof(double)), *Vc = calloc((size_t)s->L * n * kvd, sizeof(double));
    double *x = malloc(sizeof(double) * D), *xn = malloc(sizeof(double) * (D > F ? D : F) * 4);
    double *q = malloc(sizeof(double) * qd), *k = malloc(sizeof(double) * kvd), *v = malloc(sizeof(double) * kvd);
    double *att = malloc(sizeof(double) * qd), *tmp = malloc(sizeof(double) * (D > F ? D : F) * 2);
    double *g = malloc(sizeof(double) * F), *u = malloc(sizeof(double) * F), *p = malloc(sizeof(double) * n);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < D; i++) x[i] = w->embd[(size_t)tok[t] * D + i];
        for (int l = 0; l < s->L; l++) {
            ref_rmsnorm(xn, x, w->attn_norm[l], D, s->eps);
            ref_matvec(q, w->wq[l], xn, qd, D);
            ref_matvec(k, w->wk[l], xn, kvd, D);
            ref_matvec(v, w->wv[l], xn, kvd, D);
            if (s->bias) {
                for (int i = 0; i < qd; i++) q[i] += w->bq[l][i];
                for (int i = 0; i < kvd; i++) k[i] += w->bk[l][i], v[i] += w->bv[l][i];
            }
            for (int h = 0; h < s->H; h++) {
                if (s->qknorm) ref_rmsnorm(q + h * hd, q + h * hd, w->qn[l], hd, s->eps);
                ref_rope(q + h * hd, hd, t, s->theta, s->neox);
            }
            for (int h = 0; h < s->Hkv; h++) {
                if (s->qknorm) ref_rmsnorm(k + h * hd, k + h * hd, w->kn[l], hd, s->eps);
                ref_rope(k + h * hd, hd, t, s->theta, s->neox);
            }
            memcpy(K + ((size_t)l * n + t) * kvd, k, sizeof(double) * kvd);
            memcpy(Vc + ((size_t)l * n + t) * kvd, v, sizeof(double) * kvd);
            for (int h = 0; h < s->H; h++) {
                int g0 = h / (s->H / s->Hkv);
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += q[h * hd + i] * K[((size_t)l * n + j) * kvd + g0 * hd + i];
                    p[j] = d / sqrt((double)hd);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++) o += p[j] / sum * Vc[((size_t)l * n + j) * kvd + g0 * hd + i];
                    att[h * hd + i] = o;
                }
            }
            ref_matvec(tmp, w->wo[l], att, D, qd);
            for (int i = 0; i < D; i++) x[i] += tmp[i];
            ref_rmsnorm(xn, x, w->ffn_norm[l], D, s->eps);
            ref_matvec(g, w->wg[l], xn, F, D);
            ref_matvec(u, w->wu[l], xn, F, D);
            for (int i = 0; i < F; i++) tmp[i] = g[i] / (1 + exp(-g[i])) * u[i];
            double *o = xn; /* reuse */
            ref_matvec(o, w->wd[l], tmp, D, F);
            for (int i = 0; i < D; i++) x[i] += o[i];
        }
        ref_rmsnorm(xn, x, w->out_norm, D, s->eps);
        ref_matvec(logits + (size_t)t * s->V, w->out, xn, s->V, D);
    }
    free(K), free(Vc), free(x), free(xn), free(q), free(k), free(v), free(att), free(tmp), free(g), free(u), free(p);
}

/* ---- writing the GGUF ---- */

typedef struct {
    slm_gguf_writer *w;
    uint32_t type;
    void *bufs[256];
    int nb;
} gw;

/* Adds a matrix (rows, cols) as g->type (quantizing, then dequantizing m in place so the reference
 * sees the stored values) or a vector as F32. */
static void add(gw *g, const char *name, float *m, int rows, int cols) {
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    if (rows == 0 || g->type == SLM_GGML_F32) {
        TU_OK(slm_gguf_add_tensor(g->w, name, SLM_GGML_F32, rows ? 2 : 1, ne, m, tu_err()));
        return;
    }
    const slm_quant_traits *tr = slm_quant_get_ref(g->type);
    assert_non_null(tr);
    size_t rb = slm_quant_row_bytes(g->type, cols);
    char *q = malloc(rb * rows);
    for (int r = 0; r < rows; r++) {
        tr->from_float(m + (size_t)r * cols, q + r * rb, cols);
        tr->to_float(q + r * rb, m + (size_t)r * cols, cols);
    }
    g->bufs[g->nb++] = q;
    TU_OK(slm_gguf_add_tensor(g->w, name, g->type, 2, ne, q, tu_err()));
}

static void write_model(const spec *s, weights *w, uint32_t type, const char *path) {
    gw g = {slm_gguf_writer_new(), type, {0}, 0};
    char k[128];
    TU_OK(slm_gguf_set_str(g.w, "general.architecture", s->arch));
#define U32(key, v)                                                                                \
    do {                                                                                           \
        snprintf(k, sizeof k, "%s.%s", s->arch, key);                                              \
        TU_OK(slm_gguf_set_u32(g.w, k, (uint32_t)(v)));                                            \
    } while (0)
    U32("context_length", s->ctx);
    U32("embedding_length", s->D);
    U32("block_count", s->L);
    U32("feed_forward_length", s->F);
    U32("attention.head_count", s->H);
    U32("attention.head_count_kv", s->Hkv);
    if (s->key_length) {
        U32("attention.key_length", s->key_length);
        U32("attention.value_length", s->key_length);
    }
#undef U32
    snprintf(k, sizeof k, "%s.rope.freq_base", s->arch);
    TU_OK(slm_gguf_set_f32(g.w, k, s->theta));
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", s->arch);
    TU_OK(slm_gguf_set_f32(g.w, k, s->eps));
    int D = s->D, F = s->F, qd = s->hd * s->H, kvd = s->hd * s->Hkv;
    add(&g, "token_embd.weight", w->embd, s->V, D);
    if (!s->tied) add(&g, "output.weight", w->out, s->V, D);
    add(&g, "output_norm.weight", w->out_norm, 0, D);
    char n[64];
    for (int l = 0; l < s->L; l++) {
#define T(suffix, m, r, c) (snprintf(n, sizeof n, "blk.%d.%s", l, suffix), add(&g, n, m, r, c))
        T("attn_norm.weight", w->attn_norm[l], 0, D);
        T("ffn_norm.weight", w->ffn_norm[l], 0, D);
        T("attn_q.weight", w->wq[l], qd, D);
        T("attn_k.weight", w->wk[l], kvd, D);
        T("attn_v.weight", w->wv[l], kvd, D);
        T("attn_output.weight", w->wo[l], D, qd);
        T("ffn_gate.weight", w->wg[l], F, D);
        T("ffn_up.weight", w->wu[l], F, D);
        T("ffn_down.weight", w->wd[l], D, F);
        if (s->bias) {
            T("attn_q.bias", w->bq[l], 0, qd);
            T("attn_k.bias", w->bk[l], 0, kvd);
            T("attn_v.bias", w->bv[l], 0, kvd);
        }
        if (s->qknorm) {
            T("attn_q_norm.weight", w->qn[l], 0, s->hd);
            T("attn_k_norm.weight", w->kn[l], 0, s->hd);
        }
#undef T
    }
    TU_OK(slm_gguf_writer_write(g.w, path, tu_err()));
    slm_gguf_writer_free(g.w);
    for (int i = 0; i < g.nb; i++) free(g.bufs[i]);
}

static void check_arch(const spec *s, uint32_t type, double rtol) {
    weights w;
    make_weights(s, &w, 11);
    const char *path = tu_tmp_path("arch.gguf");
    write_model(s, &w, type, path);
    enum { N = 9 };
    int32_t tok[N + 1];
    for (int i = 0; i <= N; i++) tok[i] = (int32_t)((i * 5 + 2) % s->V);
    double *ref = malloc(sizeof(double) * (N + 1) * s->V);
    ref_forward(s, &w, tok, N + 1, ref);

    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_model *m = slm_model_load_mapped(g, tu_err());
    if (!m) fail_msg("%s: %s", s->arch, tu_err_last());
    assert_int_equal(slm_model_head_dim(&m->cfg), s->hd);
    assert_int_equal(m->cfg.rope_neox, s->neox);
    assert_int_equal(m->cfg.tied_output, s->tied);
    for (int threads = 1; threads <= 2; threads++) {
        slm_pool *pool = threads > 1 ? slm_pool_new(threads, tu_err()) : NULL;
        slm_ctx *c = slm_ctx_new(&m->cfg, N, 0, pool, tu_err());
        slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, 1, s->ctx, tu_err());
        int32_t pos[N + 1], seq[N + 1] = {0};
        for (int i = 0; i <= N; i++) pos[i] = i;
        float *got = malloc(sizeof(float) * (N + 1) * s->V);
        slm_batch b = {N, tok, pos, seq, NULL};
        TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
        memcpy(got, slm_ctx_logits(c), sizeof(float) * N * s->V);
        slm_batch b1 = {1, tok + N, pos + N, seq, NULL};
        TU_OK(slm_model_forward(m, c, kv, &b1, tu_err()));
        memcpy(got + (size_t)N * s->V, slm_ctx_logits(c), sizeof(float) * s->V);
        double d = 0, sc = 0;
        for (size_t i = 0; i < (size_t)(N + 1) * s->V; i++) {
            d = fmax(d, fabs(got[i] - ref[i]));
            sc = fmax(sc, fabs(ref[i]));
        }
        if (!(d <= rtol * sc))
            fail_msg("%s (%s, %d threads): logits differ from the reference by %g (scale %g)", s->arch,
                     slm_ggml_type_name(type), threads, d, sc);
        free(got);
        slm_ctx_free(c);
        slm_kv_cache_free(kv);
        slm_pool_free(pool);
    }
    /* these families are inference-only */
    if (s->neox || s->bias || s->qknorm) {
        slm_err e;
        slm_ctx *c = slm_ctx_new(&m->cfg, 2, 1, NULL, &e);
        slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, 1, 4, &e);
        int32_t t2[2] = {1, 2}, p2[2] = {0, 1}, s2[2] = {0, 0};
        slm_batch b = {2, t2, p2, s2, NULL};
        assert_int_not_equal(slm_model_forward(m, c, kv, &b, &e), SLM_OK);
        slm_ctx_free(c);
        slm_kv_cache_free(kv);
    }
    slm_model_free(m);
    slm_gguf_close(g);
    free(ref);
    free_weights(s, &w);
}

static const spec LLAMA = {"llama", 50, 64, 2, 4, 2, 16, 96, 32, 0, 0, 0, 0, 0, 10000.0f, 1e-5f};
static const spec QWEN2 = {"qwen2", 50, 64, 2, 4, 2, 16, 96, 32, 1, 1, 0, 1, 0, 1000000.0f, 1e-6f};
static const spec QWEN3 = {"qwen3", 50, 64, 2, 4, 2, 32, 96, 32, 0, 0, 1, 1, 32, 1000000.0f, 1e-6f};

static void test_llama_f32(void **state) { (void)state; check_arch(&LLAMA, SLM_GGML_F32, 2e-5); }
static void test_qwen2_f32(void **state) { (void)state; check_arch(&QWEN2, SLM_GGML_F32, 2e-5); }
static void test_qwen3_f32(void **state) { (void)state; check_arch(&QWEN3, SLM_GGML_F32, 2e-5); }
static void test_llama_q8_0(void **state) { (void)state; check_arch(&LLAMA, SLM_GGML_Q8_0, 0.05); }
static void test_qwen2_q8_0(void **state) { (void)state; check_arch(&QWEN2, SLM_GGML_Q8_0, 0.05); }
static void test_qwen3_q8_0(void **state) { (void)state; check_arch(&QWEN3, SLM_GGML_Q8_0, 0.05); }
static void test_qwen3_f16(void **state) { (void)state; check_arch(&QWEN3, SLM_GGML_F16, 1e-3); }

/* A missing family tensor is named. */
static void test_missing_bias_named(void **state) {
    (void)state;
    spec s = QWEN3;
    s.qknorm = 0; /* written without q/k norms, but qwen3 needs them */
    weights w;
    make_weights(&s, &w, 3);
    const char *path = tu_tmp_path("nonorm.gguf");
    write_model(&s, &w, SLM_GGML_F32, path);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    slm_err e;
    assert_null(slm_model_load_mapped(g, &e));
    assert_int_equal(e.code, SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "blk.0.attn_q_norm.weight"));
    slm_gguf_close(g);
    free_weights(&s, &w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_f32),  cmocka_unit_test(test_qwen2_f32),
        cmocka_unit_test(test_qwen3_f32),  cmocka_unit_test(test_llama_q8_0),
        cmocka_unit_test(test_qwen2_q8_0), cmocka_unit_test(test_qwen3_q8_0),
        cmocka_unit_test(test_qwen3_f16),  cmocka_unit_test(test_missing_bias_named),
    };
    return cmocka_run_group_tests_name("archs", tests, NULL, NULL);
}
