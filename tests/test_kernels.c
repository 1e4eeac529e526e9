/* test_kernels.c: every kernel's forward against a double-precision reference, and every backward
 * against central finite differences.
 *
 * Each op is checked through a scalar loss L = sum(r · y) with fixed random r, evaluated in double
 * from the kernel's float output; the backward is run with dy = r. Perturbations are applied to the
 * float inputs and the difference quotient uses the perturbation actually stored, so the only
 * errors are float rounding of the forward (~1e-7 relative, amplified by 1/(2·FD_EPS)) and the
 * O(FD_EPS^2) truncation term: FD_TOL covers both with a wide margin on O(1) inputs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "kernels/kernels.h"
#include "util/testutil.h"

#define FD_EPS 1e-2      /* central-difference step on O(1) inputs */
#define FD_TOL 5e-4      /* |fd - analytic| <= FD_TOL · (1 + |analytic|) */
#define REF_TOL 1e-5     /* forward vs double reference, relative to the output's scale */

static slm_rng g_rng;

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * slm_rng_normal(&g_rng);
}

static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* Checks grad (n) against central differences of f in each element of x (n); returns the worst
 * excess ratio |fd - g| / (FD_TOL·(1 + |g|)), which must be <= 1. */
static double fd_check(const char *what, float *x, size_t n, const float *grad, loss_fn f, void *ctx) {
    double worst = 0;
    size_t worst_i = 0;
    double worst_fd = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float xp = (float)(v + FD_EPS), xm = (float)(v - FD_EPS);
        x[i] = xp;
        double lp = f(ctx);
        x[i] = xm;
        double lm = f(ctx);
        x[i] = v;
        double fd = (lp - lm) / ((double)xp - (double)xm);
        double r = fabs(fd - grad[i]) / (FD_TOL * (1.0 + fabs(grad[i])));
        if (r > worst) {
            worst = r;
            worst_i = i;
            worst_fd = fd;
        }
    }
    if (getenv("SLM_TEST_VERBOSE")) print_message("%-24s worst |fd-g|/tol = %.3f\n", what, worst);
    if (worst > 1.0)
        print_error("%s: element %zu: finite difference %.7g, backward %.7g\n", what, worst_i, worst_fd,
                    (double)grad[worst_i]);
    return worst;
}

#define FD_OK(what, x, n, grad, f, ctx) assert_true(fd_check(what, x, n, grad, f, ctx) <= 1.0)

static void seed(void **state) {
    (void)state;
    slm_rng_seed(&g_rng, 1234, 1);
}

/* ---- matmul ---- */

enum { MM_N = 5, MM_IN = 7, MM_OUT = 6 };
typedef struct {
    float x[MM_N * MM_IN], w[MM_OUT * MM_IN], r[MM_N * MM_OUT], y[MM_N * MM_OUT];
} mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = p;
    slm_matmul_fwd(c->y, c->x, c->w, MM_N, MM_IN, MM_OUT, 0.0f);
    return dot_d(c->r, c->y, MM_N * MM_OUT);
}

static void test_matmul(void **state) {
    seed(state);
    mm_ctx c;
    fill(c.x, MM_N * MM_IN, 1);
    fill(c.w, MM_OUT * MM_IN, 1);
    fill(c.r, MM_N * MM_OUT, 1);
    mm_loss(&c);
    for (int i = 0; i < MM_N; i++)
        for (int o = 0; o < MM_OUT; o++) {
            double ref = 0;
            for (int k = 0; k < MM_IN; k++) ref += (double)c.x[i * MM_IN + k] * c.w[o * MM_IN + k];
            assert_true(fabs(ref - c.y[i * MM_OUT + o]) < REF_TOL * 10);
        }
    /* one row alone (the gemv path) gives the same row, up to rounding */
    float y1[MM_OUT];
    slm_matmul_fwd(y1, c.x + 2 * MM_IN, c.w, 1, MM_IN, MM_OUT, 0.0f);
    for (int o = 0; o < MM_OUT; o++) assert_true(fabsf(y1[o] - c.y[2 * MM_OUT + o]) < 1e-5f);
    slm_matmul_fwd(y1, c.x + 2 * MM_IN, c.w, 1, MM_IN, MM_OUT, 1.0f);
    for (int o = 0; o < MM_OUT; o++) assert_true(fabsf(y1[o] - 2 * c.y[2 * MM_OUT + o]) < 1e-5f);
    /* beta = 1 adds onto y */
    float y2[MM_N * MM_OUT];
    for (int i = 0; i < MM_N * MM_OUT; i++) y2[i] = 1.0f;
    slm_matmul_fwd(y2, c.x, c.w, MM_N, MM_IN, MM_OUT, 1.0f);
    for (int i = 0; i < MM_N * MM_OUT; i++) assert_true(fabsf(y2[i] - (c.y[i] + 1.0f)) < 1e-5f);

    float dx[MM_N * MM_IN], dw[MM_OUT * MM_IN];
    memset(dw, 0, sizeof dw);
    slm_matmul_bwd(dx, dw, c.r, c.x, c.w, MM_N, MM_IN, MM_OUT, 0.0f);
    FD_OK("matmul dx", c.x, MM_N * MM_IN, dx, mm_loss, &c);
    FD_OK("matmul dw", c.w, MM_OUT * MM_IN, dw, mm_loss, &c);
    /* dw accumulates; beta_dx = 1 accumulates dx */
    float dw2[MM_OUT * MM_IN], dx2[MM_N * MM_IN];
    memcpy(dw2, dw, sizeof dw);
    memcpy(dx2, dx, sizeof dx);
    slm_matmul_bwd(dx2, dw2, c.r, c.x, c.w, MM_N, MM_IN, MM_OUT, 1.0f);
    for (int i = 0; i < MM_OUT * MM_IN; i++) assert_true(fabsf(dw2[i] - 2 * dw[i]) < 1e-5f);
    for (int i = 0; i < MM_N * MM_IN; i++) assert_true(fabsf(dx2[i] - 2 * dx[i]) < 1e-5f);
}

/* ---- rmsnorm ---- */

enum { RN_N = 3, RN_D = 19 };
typedef struct {
    float x[RN_N * RN_D], w[RN_D], r[RN_N * RN_D], y[RN_N * RN_D], rinv[RN_N];
} rn_ctx;

static double rn_loss(void *p) {
    rn_ctx *c = p;
    slm_rmsnorm_fwd(c->y, c->rinv, c->x, c->w, RN_N, RN_D, 1e-5f);
    return dot_d(c->r, c->y, RN_N * RN_D);
}

static void test_rmsnorm(void **state) {
    seed(state);
    rn_ctx c;
    fill(c.x, RN_N * RN_D, 1);
    fill(c.w, RN_D, 1);
    fill(c.r, RN_N * RN_D, 1);
    rn_loss(&c);
    for (int i = 0; i < RN_N; i++) {
        double ms = 0;
        for (int j = 0; j < RN_D; j++) ms += (double)c.x[i * RN_D + j] * c.x[i * RN_D + j];
        double s = 1.0 / sqrt(ms / RN_D + 1e-5);
        assert_true(fabs(c.rinv[i] - s) < REF_TOL * s);
        for (int j = 0; j < RN_D; j++)
            assert_true(fabs(c.y[i * RN_D + j] - c.x[i * RN_D + j] * s * c.w[j]) < REF_TOL);
    }
    float dx[RN_N * RN_D], dw[RN_D] = {0}, dw_split[RN_D] = {0};
    slm_rmsnorm_bwd_dx(dx, c.r, c.x, c.rinv, c.w, RN_N, RN_D, 0);
    slm_rmsnorm_bwd_dw(dw, c.r, c.x, c.rinv, RN_N, RN_D, 0, RN_D);
    FD_OK("rmsnorm dx", c.x, RN_N * RN_D, dx, rn_loss, &c);
    FD_OK("rmsnorm dw", c.w, RN_D, dw, rn_loss, &c);
    /* column slices give the same floats as one pass; accumulate adds */
    slm_rmsnorm_bwd_dw(dw_split, c.r, c.x, c.rinv, RN_N, RN_D, 0, 5);
    slm_rmsnorm_bwd_dw(dw_split, c.r, c.x, c.rinv, RN_N, RN_D, 5, RN_D);
    assert_memory_equal(dw, dw_split, sizeof dw);
    float dx2[RN_N * RN_D];
    for (int i = 0; i < RN_N * RN_D; i++) dx2[i] = 1.0f;
    slm_rmsnorm_bwd_dx(dx2, c.r, c.x, c.rinv, c.w, RN_N, RN_D, 1);
    for (int i = 0; i < RN_N * RN_D; i++) assert_true(fabsf(dx2[i] - (dx[i] + 1.0f)) < 1e-5f);
}

/* ---- rope ---- */

enum { RP_HEADS = 3, RP_HD = 8, RP_CTX = 40 };
typedef struct {
    float x[RP_HEADS * RP_HD], r[RP_HEADS * RP_HD], y[RP_HEADS * RP_HD];
    float cs[RP_CTX * RP_HD / 2], sn[RP_CTX * RP_HD / 2];
    int pos;
} rp_ctx;

static double rp_loss(void *p) {
    rp_ctx *c = p;
    memcpy(c->y, c->x, sizeof c->x);
    slm_rope_fwd(c->y, RP_HEADS, RP_HD, c->cs + c->pos * RP_HD / 2, c->sn + c->pos * RP_HD / 2);
    return dot_d(c->r, c->y, RP_HEADS * RP_HD);
}

static void test_rope(void **state) {
    seed(state);
    rp_ctx c;
    fill(c.x, RP_HEADS * RP_HD, 1);
    fill(c.r, RP_HEADS * RP_HD, 1);
    slm_rope_table(c.cs, c.sn, RP_CTX, RP_HD, 10000.0);
    /* position 0 is the identity; position p rotates pair i by p·theta^(-2i/hd) */
    c.pos = 0;
    rp_loss(&c);
    assert_memory_equal(c.y, c.x, sizeof c.x);
    c.pos = 37;
    rp_loss(&c);
    for (int h = 0; h < RP_HEADS; h++)
        for (int i = 0; i < RP_HD / 2; i++) {
            double a = 37.0 * pow(10000.0, -2.0 * i / RP_HD);
            double x0 = c.x[h * RP_HD + 2 * i], x1 = c.x[h * RP_HD + 2 * i + 1];
            assert_true(fabs(c.y[h * RP_HD + 2 * i] - (x0 * cos(a) - x1 * sin(a))) < REF_TOL);
            assert_true(fabs(c.y[h * RP_HD + 2 * i + 1] - (x0 * sin(a) + x1 * cos(a))) < REF_TOL);
        }
    float dx[RP_HEADS * RP_HD];
    memcpy(dx, c.r, sizeof dx);
    slm_rope_bwd(dx, RP_HEADS, RP_HD, c.cs + c.pos * RP_HD / 2, c.sn + c.pos * RP_HD / 2);
    FD_OK("rope dx", c.x, RP_HEADS * RP_HD, dx, rp_loss, &c);
}

/* ---- swiglu ---- */

enum { SW_N = 37 };
typedef struct {
    float g[SW_N], u[SW_N], r[SW_N], h[SW_N];
} sw_ctx;

static double sw_loss(void *p) {
    sw_ctx *c = p;
    slm_swiglu_fwd(c->h, c->g, c->u, SW_N);
    return dot_d(c->r, c->h, SW_N);
}

static void test_swiglu(void **state) {
    seed(state);
    sw_ctx c;
    fill(c.g, SW_N, 2);
    fill(c.u, SW_N, 1);
    fill(c.r, SW_N, 1);
    c.g[0] = -30.0f; /* saturated ends */
    c.g[1] = 30.0f;
    sw_loss(&c);
    for (int i = 0; i < SW_N; i++) {
        double g = c.g[i], ref = g / (1.0 + exp(-g)) * c.u[i];
        assert_true(fabs(c.h[i] - ref) < REF_TOL * (1 + fabs(ref)));
    }
    float dg[SW_N], du[SW_N];
    slm_swiglu_bwd(dg, du, c.r, c.g, c.u, SW_N);
    FD_OK("swiglu dgate", c.g, SW_N, dg, sw_loss, &c);
    FD_OK("swiglu dup", c.u, SW_N, du, sw_loss, &c);
}

/* ---- exp and softmax ---- */

static void test_exp_accuracy(void **state) {
    (void)state;
    enum { N = 4001 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -87.0f + 175.0f * (float)i / (N - 1);
    slm_vexp(y, x, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double ref = exp((double)x[i]);
        double rel = fabs(y[i] - ref) / ref;
        if (rel > worst) worst = rel;
    }
    assert_true(worst < 3e-7);
    float big[3] = {-1000.0f, 0.0f, 1000.0f}, out[3];
    slm_vexp(out, big, 3);
    assert_true(out[0] >= 0.0f && out[0] < 1e-37f);
    assert_true(out[1] == 1.0f);
    assert_true(isfinite(out[2]) && out[2] > 1e38f);
}

enum { SM_N = 11 };
typedef struct {
    float s[SM_N], r[SM_N], p[SM_N];
} sm_ctx;

static double sm_loss(void *q) {
    sm_ctx *c = q;
    slm_softmax_fwd(c->p, c->s, SM_N);
    return dot_d(c->r, c->p, SM_N);
}

static void test_softmax(void **state) {
    seed(state);
    sm_ctx c;
    fill(c.s, SM_N, 2);
    fill(c.r, SM_N, 1);
    sm_loss(&c);
    double z = 0, mx = -1e30;
    for (int i = 0; i < SM_N; i++) mx = c.s[i] > mx ? c.s[i] : mx;
    for (int i = 0; i < SM_N; i++) z += exp(c.s[i] - mx);
    for (int i = 0; i < SM_N; i++) assert_true(fabs(c.p[i] - exp(c.s[i] - mx) / z) < REF_TOL);
    float ds[SM_N];
    slm_softmax_bwd(ds, c.p, c.r, SM_N);
    FD_OK("softmax ds", c.s, SM_N, ds, sm_loss, &c);
    /* large logits do not overflow */
    float big[4] = {1000.0f, 999.0f, -1000.0f, 1000.0f}, pb[4];
    slm_softmax_fwd(pb, big, 4);
    assert_true(fabsf(pb[0] - pb[3]) < 1e-7f && pb[2] < 1e-37f && isfinite(pb[1]));
}

/* ---- cross-entropy ---- */

enum { CE_V = 13 };
typedef struct {
    float z[CE_V];
    int t;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    float tmp[CE_V];
    memcpy(tmp, c->z, sizeof tmp);
    return slm_cross_entropy_row(tmp, CE_V, c->t, 1.0f);
}

static void test_cross_entropy(void **state) {
    seed(state);
    ce_ctx c;
    fill(c.z, CE_V, 3);
    c.t = 4;
    double mx = -1e30, z = 0;
    for (int i = 0; i < CE_V; i++) mx = c.z[i] > mx ? c.z[i] : mx;
    for (int i = 0; i < CE_V; i++) z += exp(c.z[i] - mx);
    double ref = log(z) + mx - c.z[c.t];
    float g[CE_V];
    memcpy(g, c.z, sizeof g);
    float loss = slm_cross_entropy_row(g, CE_V, c.t, 1.0f);
    assert_true(fabs(loss - ref) < REF_TOL * (1 + ref));
    FD_OK("cross-entropy dlogits", c.z, CE_V, g, ce_loss, &c);
    /* the gradient is scaled by g */
    float g2[CE_V];
    memcpy(g2, c.z, sizeof g2);
    slm_cross_entropy_row(g2, CE_V, c.t, 0.25f);
    for (int i = 0; i < CE_V; i++) assert_true(fabsf(g2[i] - 0.25f * g[i]) < 1e-7f);
}

/* ---- single-query attention ---- */

enum { AT_HD = 8, AT_KEYS = 6, AT_LD = 11 };
typedef struct {
    float q[AT_HD], k[AT_KEYS * AT_LD], v[AT_KEYS * AT_LD], r[AT_HD], out[AT_HD], p[AT_KEYS];
} at_ctx;

static double at_loss(void *pp) {
    at_ctx *c = pp;
    slm_attn_query_fwd(c->out, c->p, c->q, c->k, AT_LD, c->v, AT_LD, AT_KEYS, AT_HD, 0.5f);
    return dot_d(c->r, c->out, AT_HD);
}

static void test_attention_query(void **state) {
    seed(state);
    at_ctx c;
    fill(c.q, AT_HD, 1);
    fill(c.k, AT_KEYS * AT_LD, 1);
    fill(c.v, AT_KEYS * AT_LD, 1);
    fill(c.r, AT_HD, 1);
    at_loss(&c);
    double s[AT_KEYS], mx = -1e30, z = 0;
    for (int j = 0; j < AT_KEYS; j++) {
        s[j] = 0.5 * dot_d(c.q, c.k + j * AT_LD, AT_HD);
        mx = s[j] > mx ? s[j] : mx;
    }
    for (int j = 0; j < AT_KEYS; j++) z += exp(s[j] - mx);
    for (int d = 0; d < AT_HD; d++) {
        double o = 0;
        for (int j = 0; j < AT_KEYS; j++) o += exp(s[j] - mx) / z * c.v[j * AT_LD + d];
        assert_true(fabs(c.out[d] - o) < REF_TOL);
    }
    float dq[AT_HD], dk[AT_KEYS * AT_LD] = {0}, dv[AT_KEYS * AT_LD] = {0}, p[AT_KEYS], dp[AT_KEYS];
    slm_attn_query_bwd(dq, dk, AT_LD, dv, AT_LD, p, dp, c.r, c.q, c.k, AT_LD, c.v, AT_LD, AT_KEYS,
                       AT_HD, 0.5f);
    FD_OK("attention dq", c.q, AT_HD, dq, at_loss, &c);
    FD_OK("attention dk", c.k, AT_KEYS * AT_LD, dk, at_loss, &c);
    FD_OK("attention dv", c.v, AT_KEYS * AT_LD, dv, at_loss, &c);
}

/* ---- embedding ---- */

enum { EM_V = 9, EM_D = 5, EM_N = 7 };
typedef struct {
    float table[EM_V * EM_D], r[EM_N * EM_D], out[EM_N * EM_D];
    int32_t tok[EM_N];
} em_ctx;

static double em_loss(void *p) {
    em_ctx *c = p;
    slm_embedding_fwd(c->out, c->table, c->tok, EM_N, EM_D);
    return dot_d(c->r, c->out, EM_N * EM_D);
}

static void test_embedding(void **state) {
    seed(state);
    em_ctx c;
    fill(c.table, EM_V * EM_D, 1);
    fill(c.r, EM_N * EM_D, 1);
    int32_t tok[EM_N] = {3, 0, 8, 3, 5, 3, 0}; /* repeats accumulate */
    memcpy(c.tok, tok, sizeof tok);
    em_loss(&c);
    for (int i = 0; i < EM_N; i++)
        assert_memory_equal(c.out + i * EM_D, c.table + tok[i] * EM_D, sizeof(float) * EM_D);
    float g[EM_V * EM_D] = {0}, g_split[EM_V * EM_D] = {0};
    slm_embedding_bwd(g, c.r, c.tok, EM_N, EM_D, 0, EM_V);
    FD_OK("embedding dtable", c.table, EM_V * EM_D, g, em_loss, &c);
    slm_embedding_bwd(g_split, c.r, c.tok, EM_N, EM_D, 0, 4);
    slm_embedding_bwd(g_split, c.r, c.tok, EM_N, EM_D, 4, EM_V);
    assert_memory_equal(g, g_split, sizeof g);
}

/* ---- f16 ---- */

static void test_f16(void **state) {
    (void)state;
    assert_true(slm_f16_to_f32(0x3C00) == 1.0f);
    assert_true(slm_f16_to_f32(0xC000) == -2.0f);
    assert_true(slm_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(slm_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    assert_true(slm_f16_to_f32(0x0400) == ldexpf(1.0f, -14));
    assert_true(isinf(slm_f16_to_f32(0x7C00)) && isnan(slm_f16_to_f32(0x7E00)));
    assert_true(slm_f32_to_f16(1.0f) == 0x3C00);
    assert_true(slm_f32_to_f16(1e6f) == 0x7C00);                /* overflow -> inf */
    assert_true(slm_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3C00); /* tie -> even */
    assert_true(slm_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3C02);
    /* every non-NaN half survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = slm_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(slm_f32_to_f16(f), h);
    }
    uint16_t row[3] = {0x3C00, 0x0000, 0xBC00};
    float out[3];
    slm_f16_to_f32_row(out, row, 3);
    assert_true(out[0] == 1.0f && out[1] == 0.0f && out[2] == -1.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),         cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),           cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_exp_accuracy),   cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_cross_entropy),  cmocka_unit_test(test_attention_query),
        cmocka_unit_test(test_embedding),      cmocka_unit_test(test_f16),
    };
    return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
