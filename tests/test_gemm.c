/* test_gemm.c: the quantized tile kernels of src/quant/gemm.h — every SIMD kernel against its
 * scalar reference, the reference against a double-precision product of the dequantized rows, and
 * slm_qmatmul (which runs them) across 1, 2 and 3 threads.
 *
 * Tolerances (u = FLT_EPSILON/2):
 *  - SIMD vs scalar reference: EXACT (bit-identical). Both compute the same exact integer lane
 *    sums, the same fma per block and lane, and the same lane reduction (gemm.h).
 *  - reference vs double: REF_GAMMA·(nb + 8)·u·Σ|w_k·x_k| with REF_GAMMA = 2: nb fmas per lane
 *    (recursive summation, Higham's γ bound) plus the 3-level lane reduction and the rounding of
 *    the scale product d_w·d_x.
 *  - slm_qmatmul: outputs equal bit for bit across thread counts and equal the reference kernel.
 * Inputs: random blocks (quantized from normal floats), adversarial blocks (random bytes, int8
 * weights of -128 and 127 with activations of ±127, extreme scales), odd row/token counts and
 * tails of every tile shape.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "gguf/gguf.h"
#include "kernels/qmatmul.h"
#include "quant/blocks.h"
#include "quant/gemm.h"
#include "quant/quant.h"
#include "util/testutil.h"

#define REF_GAMMA 2.0

static const uint32_t TYPES[] = {SLM_GGML_Q8_0, SLM_GGML_Q4_0};

/* rows of random blocks: mode 0 quantized normals, 1 random bytes, 2 extremes */
static void fill_rows(slm_rng *r, uint32_t type, int mode, int rows, int cols, void *dst, int activ) {
    const slm_quant_traits *tr = slm_quant_get_ref(type);
    size_t rb = slm_quant_row_bytes(type, cols);
    if (mode == 0) {
        float *f = malloc(sizeof(float) * (size_t)cols);
        assert_non_null(f);
        for (int i = 0; i < rows; i++) {
            for (int k = 0; k < cols; k++) f[k] = slm_rng_normal(r) * (k % 7 == 0 ? 3.0f : 1.0f);
            tr->from_float(f, (char *)dst + (size_t)i * rb, cols);
        }
        free(f);
        return;
    }
    int nb = cols / 32;
    for (int i = 0; i < rows; i++)
        for (int b = 0; b < nb; b++) {
            char *blk = (char *)dst + (size_t)i * rb + (size_t)b * tr->block_bytes;
            float d = mode == 1 ? (slm_rng_float(r) * 2.0f - 1.0f) * 4.0f : (b % 2 ? 65504.0f : 6.1e-5f);
            uint16_t h = slm_f32_to_f16(d);
            memcpy(blk, &h, 2);
            for (size_t k = 2; k < tr->block_bytes; k++) {
                int v;
                if (mode == 1) v = (int)(slm_rng_u32(r) & 0xFF);
                else v = activ ? ((i + b) % 2 ? 127 : -127) : ((i + b + (int)k) % 3 ? 0x80 : 0x7F);
                if (activ && (int8_t)v == -128) v = 0x81; /* the kernels' precondition */
                blk[k] = (char)v;
            }
        }
}

/* Σ w·x in double over the dequantized rows, and Σ|w·x| */
static void dot_double(uint32_t type, int cols, const void *w, const void *x, double *dot, double *mag) {
    float *fw = malloc(sizeof(float) * (size_t)cols), *fx = malloc(sizeof(float) * (size_t)cols);
    assert_non_null(fw);
    assert_non_null(fx);
    slm_quant_get_ref(type)->to_float(w, fw, cols);
    slm_quant_get_ref(SLM_GGML_Q8_0)->to_float(x, fx, cols);
    double s = 0, m = 0;
    for (int k = 0; k < cols; k++) s += (double)fw[k] * fx[k], m += fabs((double)fw[k] * fx[k]);
    free(fw), free(fx);
    *dot = s;
    *mag = m;
}

static void check_case(slm_rng *r, uint32_t type, int mode, int cols, int nr, int nt, int accumulate) {
    slm_qgemm_fn ref = slm_qgemm_get_ref(type), fast = slm_qgemm_get(type);
    assert_non_null(ref);
    size_t wb = slm_quant_row_bytes(type, cols), xb = slm_quant_row_bytes(SLM_GGML_Q8_0, cols);
    size_t ldy = (size_t)nr + 3;
    char *w = malloc(wb * (size_t)nr), *x = malloc(xb * (size_t)nt);
    float *y0 = malloc(sizeof(float) * ldy * (size_t)nt), *y1 = malloc(sizeof(float) * ldy * (size_t)nt);
    assert_non_null(w), assert_non_null(x), assert_non_null(y0), assert_non_null(y1);
    fill_rows(r, type, mode, nr, cols, w, 0);
    fill_rows(r, SLM_GGML_Q8_0, mode, nt, cols, x, 1);
    for (size_t i = 0; i < ldy * (size_t)nt; i++) y0[i] = y1[i] = (float)(i % 5) - 2.0f;
    ref(cols, nr, nt, w, wb, x, xb, y0, ldy, accumulate);
    if (fast) {
        fast(cols, nr, nt, w, wb, x, xb, y1, ldy, accumulate);
        if (memcmp(y0, y1, sizeof(float) * ldy * (size_t)nt) != 0)
            fail_msg("%s mode %d cols %d nr %d nt %d acc %d: SIMD differs from the reference",
                     slm_ggml_type_name(type), mode, cols, nr, nt, accumulate);
    }
    for (int t = 0; t < nt; t++) {
        for (size_t i = (size_t)nr; i < ldy; i++) /* padding untouched */
            assert_true(y0[(size_t)t * ldy + i] == (float)(((size_t)t * ldy + i) % 5) - 2.0f);
        for (int i = 0; i < nr; i++) {
            double dot, mag;
            dot_double(type, cols, w + (size_t)i * wb, x + (size_t)t * xb, &dot, &mag);
            double base = accumulate ? (double)((((size_t)t * ldy + (size_t)i) % 5)) - 2.0 : 0.0;
            double got = (double)y0[(size_t)t * ldy + i] - base;
            double tol = REF_GAMMA * (cols / 32 + 8) * (FLT_EPSILON / 2) * mag + 4.0 * FLT_EPSILON * fabs(base);
            if (fabs(got - dot) > tol)
                fail_msg("%s mode %d cols %d (%d,%d): ref %.9g vs double %.9g (tol %.3g)",
                         slm_ggml_type_name(type), mode, cols, t, i, got, dot, tol);
        }
    }
    free(w), free(x), free(y0), free(y1);
}

static void test_gemm_simd_vs_ref(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 42, 7);
    const int cols_list[] = {32, 96, 288, 800};
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++)
        for (int mode = 0; mode < 3; mode++)
            for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++)
                for (int nr = 1; nr <= 9; nr += (nr < 5 ? 1 : 4))
                    for (int nt = 1; nt <= 7; nt += (nt < 4 ? 1 : 3))
                        check_case(&r, TYPES[ti], mode, cols_list[ci], nr, nt, (nr + nt) % 2);
}

/* slm_qmatmul over Q8_0/Q4_0 weights: the same bits on 1, 2 and 3 threads, equal to the reference
 * kernel applied to the quantized activations. */
static void test_qmatmul_threads(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 9, 1);
    const int rows = 83, cols = 160, n_list[] = {1, 5, 70};
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        uint32_t type = TYPES[ti];
        size_t wb = slm_quant_row_bytes(type, cols), xb = slm_quant_row_bytes(SLM_GGML_Q8_0, cols);
        char *wd = malloc(wb * rows);
        assert_non_null(wd);
        fill_rows(&r, type, 0, rows, cols, wd, 0);
        slm_qmat w = {type, wd, rows, cols, wb};
        for (size_t ni = 0; ni < 3; ni++) {
            int n = n_list[ni];
            float *x = malloc(sizeof(float) * (size_t)n * cols), *want = malloc(sizeof(float) * (size_t)n * rows),
                  *got = malloc(sizeof(float) * (size_t)n * rows);
            char *qx = malloc(xb * (size_t)n);
            assert_non_null(x), assert_non_null(want), assert_non_null(got), assert_non_null(qx);
            for (int i = 0; i < n * cols; i++) x[i] = slm_rng_normal(&r);
            for (int i = 0; i < n; i++)
                slm_quant_get(SLM_GGML_Q8_0)->from_float(x + (size_t)i * cols, qx + (size_t)i * xb, cols);
            slm_qgemm_get_ref(type)(cols, rows, n, wd, wb, qx, xb, want, rows, 0);
            for (int threads = 1; threads <= 3; threads++) {
                slm_pool *pool = threads > 1 ? slm_pool_new(threads, tu_err()) : NULL;
                if (threads > 1) assert_non_null(pool);
                size_t sb = slm_qmatmul_scratch_bytes(n, cols, threads);
                void *scratch = aligned_alloc(64, (sb + 63) / 64 * 64);
                assert_non_null(scratch);
                for (int i = 0; i < n * rows; i++) got[i] = NAN;
                slm_qmatmul(pool, got, rows, x, n, &w, 0, scratch);
                if (memcmp(got, want, sizeof(float) * (size_t)n * rows) != 0)
                    fail_msg("%s n %d threads %d: slm_qmatmul differs from the reference kernel",
                             slm_ggml_type_name(type), n, threads);
                free(scratch);
                slm_pool_free(pool);
            }
            free(x), free(want), free(got), free(qx);
        }
        free(wd);
    }
}

/* the AVX2 activation quantizer against the reference bytes: random rows and exact ties (amax
 * 127 makes d = 1, so k + 0.5 is a tie roundf takes away from zero), zeros, tails */
static void test_quantize_q8_0_exact(void **state) {
    (void)state;
    if (!slm_cpu_has_avx2()) skip();
    slm_rng r;
    slm_rng_seed(&r, 5, 3);
    enum { N = 32 * 37 };
    float x[N];
    char a[N / 32 * 34], b[N / 32 * 34];
    for (int mode = 0; mode < 3; mode++) {
        for (int i = 0; i < N; i++) {
            if (mode == 0) x[i] = slm_rng_normal(&r) * (i % 64 < 32 ? 1e-3f : 30.0f);
            else if (mode == 1) x[i] = i % 32 == 0 ? 127.0f : (float)((int)(slm_rng_u32(&r) % 253) - 126) + 0.5f * (float)(i % 2);
            else x[i] = (i / 32) % 2 ? 0.0f : -1.0f * (float)(i % 32) / 31.0f;
        }
        for (int n = 32; n <= N; n += 32 * 9) {
            slm_q8_0_from_float(x, a, n);
            slm_quantize_q8_0_avx2(x, b, n);
            if (memcmp(a, b, (size_t)n / 32 * 34) != 0) fail_msg("mode %d n %d: quantizer bytes differ", mode, n);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_simd_vs_ref),
        cmocka_unit_test(test_qmatmul_threads),
        cmocka_unit_test(test_quantize_q8_0_exact),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
