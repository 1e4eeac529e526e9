/* test_torch_reference.c: slm's forward, loss and backward against PyTorch's, on the committed
 * fixture tests/fixtures/torch_tiny.bin (written by scripts/torch_reference.py; its format is
 * described there). The model is V=64, D=32, L=2, H=4, Hkv=2, F=48, untied, two sequences of 8
 * tokens, one target ignored. Both attention paths are checked: the sequences as two contiguous
 * rows (batched sgemm attention) and interleaved token by token (per-token attention).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "util/testutil.h"

/* Max |slm - torch| relative to the largest |torch| value of the same array (a tensor, the
 * logits). float32 against float32 with different summation orders: ~1e-6 is typical. */
#define REL_TOL 1e-5

typedef struct {
    slm_model_config cfg;
    int B, T;
    size_t n_params;
    const float *params, *logits, *grads;
    const int32_t *tokens, *targets;
    float loss;
    char *data;
} fixture;

static const void *take(const char **p, const char *end, size_t bytes) {
    if ((size_t)(end - *p) < bytes) fail_msg("torch_tiny.bin: truncated");
    const void *r = *p;
    *p += bytes;
    return r;
}

static void load_fixture(fixture *f) {
    size_t len;
    TU_OK(slm_file_read_all("tests/fixtures/torch_tiny.bin", &f->data, &len, tu_err()));
    const char *p = f->data, *end = f->data + len;
    assert_memory_equal(take(&p, end, 8), "SLMTORCH", 8);
    uint32_t version;
    memcpy(&version, take(&p, end, 4), 4);
    assert_int_equal(version, 1);
    int32_t h[10];
    memcpy(h, take(&p, end, sizeof h), sizeof h);
    float fl[2];
    memcpy(fl, take(&p, end, sizeof fl), sizeof fl);
    f->cfg = (slm_model_config){.n_vocab = h[0], .dim = h[1], .n_layers = h[2], .n_heads = h[3],
                                .n_kv_heads = h[4], .hidden_dim = h[5], .ctx_len = h[6],
                                .tied_output = h[7], .rope_theta = fl[0], .norm_eps = fl[1]};
    TU_OK(slm_model_config_check(&f->cfg, tu_err()));
    f->B = h[8];
    f->T = h[9];
    uint64_t n;
    memcpy(&n, take(&p, end, 8), 8);
    assert_int_equal(n, slm_model_param_count(&f->cfg));
    f->n_params = (size_t)n;
    size_t nt = (size_t)f->B * f->T;
    /* the payload is 4-byte aligned after the 56-byte header */
    f->params = take(&p, end, n * 4);
    f->tokens = take(&p, end, nt * 4);
    f->targets = take(&p, end, nt * 4);
    f->logits = take(&p, end, nt * f->cfg.n_vocab * 4);
    memcpy(&f->loss, take(&p, end, 4), 4);
    f->grads = take(&p, end, n * 4);
    assert_true(p == end);
}

static double rel_err(const float *a, const float *b, size_t n) {
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    return tu_max_excess(a, b, n, 0) / (scale > 0 ? scale : 1);
}

/* Runs the fixture's batch in the given order (perm[i] = index into the fixture's b*T+t) and
 * compares logits, loss and every tensor's gradient. */
static void check(const fixture *f, const int *perm, slm_pool *pool, const char *what) {
    const slm_model_config *cfg = &f->cfg;
    int n = f->B * f->T, V = cfg->n_vocab;
    slm_model *m = slm_model_new(cfg, tu_err());
    assert_non_null(m);
    memcpy(m->params, f->params, sizeof(float) * f->n_params);
    slm_ctx *c = slm_ctx_new(cfg, n, 1, pool, tu_err());
    slm_kv_cache *kv = slm_kv_cache_new(cfg, f->B, f->T, tu_err());
    assert_non_null(c);
    assert_non_null(kv);
    int32_t *tok = malloc(sizeof(int32_t) * n), *pos = malloc(sizeof(int32_t) * n),
            *seq = malloc(sizeof(int32_t) * n), *tgt = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) {
        int j = perm[i];
        tok[i] = f->tokens[j];
        tgt[i] = f->targets[j];
        seq[i] = j / f->T;
        pos[i] = j % f->T;
    }
    slm_batch b = {n, tok, pos, seq, NULL};
    TU_OK(slm_model_forward(m, c, kv, &b, tu_err()));
    float *logits = malloc(sizeof(float) * n * V);
    for (int i = 0; i < n; i++)
        memcpy(logits + (size_t)perm[i] * V, slm_ctx_logits(c) + (size_t)i * V, sizeof(float) * V);
    double e_logits = rel_err(logits, f->logits, (size_t)n * V);
    int counted;
    float loss = slm_model_loss(c, tgt, 1.0f, &counted);
    double e_loss = fabs(loss - f->loss) / fabs(f->loss);
    float *g = calloc(f->n_params, sizeof(float));
    TU_OK(slm_model_backward(m, c, kv, &b, g, tu_err()));
    double e_grad = 0;
    char worst[64] = "";
    int nt = slm_model_n_tensors(cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(cfg, i, &info);
        double e = rel_err(g + info.offset, f->grads + info.offset, info.ne[0] * info.ne[1]);
        if (e > e_grad) {
            e_grad = e;
            snprintf(worst, sizeof worst, "%s", info.name);
        }
    }
    if (getenv("SLM_TEST_VERBOSE"))
        print_message("%s: logits %.2e, loss %.2e (%.6f vs %.6f), worst gradient %.2e (%s)\n", what,
                      e_logits, e_loss, (double)loss, (double)f->loss, e_grad, worst);
    assert_int_equal(counted, n - 1);
    if (e_logits > REL_TOL) fail_msg("%s: logits differ by %.3g of their scale", what, e_logits);
    if (e_loss > REL_TOL) fail_msg("%s: loss %.7g vs torch %.7g", what, (double)loss, (double)f->loss);
    if (e_grad > REL_TOL) fail_msg("%s: gradient of %s differs by %.3g of its scale", what, worst, e_grad);
    free(tok);
    free(pos);
    free(seq);
    free(tgt);
    free(logits);
    free(g);
    slm_ctx_free(c);
    slm_kv_cache_free(kv);
    slm_model_free(m);
}

static void test_rows_batched(void **state) {
    (void)state;
    fixture f;
    load_fixture(&f);
    int perm[256];
    for (int i = 0; i < f.B * f.T; i++) perm[i] = i;
    check(&f, perm, NULL, "contiguous rows");
    slm_pool *pool = slm_pool_new(2, tu_err());
    check(&f, perm, pool, "contiguous rows, 2 threads");
    slm_pool_free(pool);
    free(f.data);
}

static void test_interleaved_per_token(void **state) {
    (void)state;
    fixture f;
    load_fixture(&f);
    int perm[256], k = 0;
    for (int t = 0; t < f.T; t++)
        for (int b = f.B - 1; b >= 0; b--) perm[k++] = b * f.T + t;
    check(&f, perm, NULL, "interleaved tokens");
    free(f.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_batched),
        cmocka_unit_test(test_interleaved_per_token),
    };
    return cmocka_run_group_tests_name("torch_reference", tests, NULL, NULL);
}
