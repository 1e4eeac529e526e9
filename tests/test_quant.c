/* test_quant.c: the block formats of src/quant — layouts, reference quantizers (round-trip
 * bounds, exact bytes at rounding boundaries, idempotence), and every vec_dot: the AVX2 kernels
 * against the scalar references, and the references against a double-precision dot product of
 * the dequantized rows.
 *
 * Tolerances (u = FLT_EPSILON/2, the f32 unit roundoff):
 *  - K-quant SIMD vs scalar: exact. Both compute the same per-super-block integers and the
 *    same f32 expression in the same order.
 *  - F32/F16/BF16/Q8_0/Q4_0 SIMD vs scalar: the integer per-block parts are exact; what differs
 *    is the order of the f32 sums of m terms (m = elements or blocks). Recursive summation of m
 *    terms errs by at most (m-1)·u·Σ|terms| (Higham's γ bound), so two orders differ by at most
 *    2(m+8)·u·Σ|x_i·y_i| (the +8 covers the lane reduction and the per-block scale product).
 *  - vec_dot vs double dot of the dequantized rows: the same summation bound, plus the rounding
 *    of each dequantized value (one rounding of at most u·3·max|x|·|y_i| per element, which
 *    covers Q4_K's d·sc·q - dmin·m and Q6_K's d·sc·q).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "util/testutil.h"

static const uint32_t WEIGHT_TYPES[] = {SLM_GGML_F32, SLM_GGML_F16, SLM_GGML_BF16, SLM_GGML_Q8_0,
                                        SLM_GGML_Q4_0, SLM_GGML_Q4_K, SLM_GGML_Q6_K};
enum { N_WEIGHT_TYPES = sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0] };

static float *randn(slm_rng *r, int64_t n, float scale) {
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++) x[i] = scale * slm_rng_normal(r);
    return x;
}

static void *quantize(uint32_t type, const float *x, int64_t n) {
    const slm_quant_traits *t = slm_quant_get_ref(type);
    assert_non_null(t);
    size_t bytes = slm_quant_row_bytes(type, n);
    assert_true(bytes > 0);
    void *q = malloc(bytes);
    assert_non_null(q);
    t->from_float(x, q, n);
    return q;
}

static float *dequantize(uint32_t type, const void *q, int64_t n) {
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(x);
    slm_quant_get_ref(type)->to_float(q, x, n);
    return x;
}

static void test_traits_match_gguf_sizes(void **state) {
    (void)state;
    const uint32_t all[] = {SLM_GGML_F32, SLM_GGML_F16, SLM_GGML_BF16, SLM_GGML_Q8_0,
                            SLM_GGML_Q4_0, SLM_GGML_Q4_K, SLM_GGML_Q6_K, SLM_GGML_Q8_K};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const slm_quant_traits *r = slm_quant_get_ref(all[i]), *f = slm_quant_get(all[i]);
        assert_non_null(r);
        assert_non_null(f);
        assert_int_equal(r->type, all[i]);
        assert_int_equal(r->block_size, slm_ggml_block_size(all[i]));
        assert_int_equal(r->block_bytes, slm_ggml_block_bytes(all[i]));
        assert_string_equal(r->name, slm_ggml_type_name(all[i]));
        assert_int_equal(f->block_bytes, r->block_bytes);
        assert_int_equal(f->vec_dot_type, r->vec_dot_type);
        assert_true(r->to_float && r->from_float);
        if (all[i] != SLM_GGML_Q8_K) assert_non_null(r->vec_dot);
    }
    assert_null(slm_quant_get(SLM_GGML_Q5_0));
    assert_null(slm_quant_get_ref(9999));
    assert_int_equal(slm_quant_row_bytes(SLM_GGML_Q4_K, 4096), 16 * 144);
    assert_int_equal(slm_quant_row_bytes(SLM_GGML_Q6_K, 512), 2 * 210);
    assert_int_equal(slm_quant_row_bytes(SLM_GGML_Q8_0, 64), 68);
    assert_int_equal(slm_quant_row_bytes(SLM_GGML_Q4_0, 100), 0);
    assert_int_equal(slm_quant_row_bytes(SLM_GGML_Q4_K, 64), 0);
    assert_int_equal(slm_quant_row_bytes(SLM_GGML_F16, 3), 6);
    assert_int_equal(slm_quant_get_ref(SLM_GGML_Q4_0)->vec_dot_type, SLM_GGML_Q8_0);
    assert_int_equal(slm_quant_get_ref(SLM_GGML_Q6_K)->vec_dot_type, SLM_GGML_Q8_K);
    assert_int_equal(slm_quant_get_ref(SLM_GGML_F16)->vec_dot_type, SLM_GGML_F32);
}

/* Q8_0: per element |x - x̂| <= d/2 (rounding to the grid of step d = amax/127) plus the
 * rounding of d to f16, at most 127·|d - f16(d)|. */
static void test_q8_0_round_trip_bound(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 11, 0);
    const int64_t n = 32 * 200;
    float *x = randn(&r, n, 3.0f);
    for (int i = 0; i < 32; i++) x[i] = (i % 2 ? 1e-3f : -1e-3f) * (float)(i + 1); /* small block */
    slm_block_q8_0 *q = quantize(SLM_GGML_Q8_0, x, n);
    float *y = dequantize(SLM_GGML_Q8_0, q, n);
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        double d = amax / 127.0f, d16 = slm_q_fp16_to_fp32(q[b].d);
        double bound = d / 2 * (1 + 1e-6) + 127 * fabs(d - d16);
        for (int j = 0; j < 32; j++) assert_true(fabs((double)x[b * 32 + j] - y[b * 32 + j]) <= bound);
    }
    free(x), free(q), free(y);
}

/* Q4_0: d = max/-8 for the element max of largest magnitude; elements with |x/d| < 7.5 err by
 * at most |d|/2, the rest (opposite sign to max, clamped to 7) by at most |d|; plus 8·|Δd|. */
static void test_q4_0_round_trip_bound(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 12, 0);
    const int64_t n = 32 * 200;
    float *x = randn(&r, n, 0.02f);
    slm_block_q4_0 *q = quantize(SLM_GGML_Q4_0, x, n);
    float *y = dequantize(SLM_GGML_Q4_0, q, n);
    int clamped = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[b * 32 + j])) amax = fabsf(x[b * 32 + j]), max = x[b * 32 + j];
        double d = fabs(max / -8.0f), d16 = fabs(slm_q_fp16_to_fp32(q[b].d));
        for (int j = 0; j < 32; j++) {
            double v = x[b * 32 + j], e = fabs(v - y[b * 32 + j]);
            int inside = fabs(v) / d < 7.5 - 1e-4 || (v > 0) == (max > 0);
            clamped += !inside;
            assert_true(e <= (inside ? d / 2 : d) * (1 + 1e-5) + 8 * fabs(d - d16));
        }
    }
    assert_true(clamped > 0); /* the clamp region was exercised */
    free(x), free(q), free(y);
}

/* quantize(dequantize(q)) == q: the dequantized block's max element maps back to the same d
 * (127·d16/127 and -8·d16/-8 are exact), and every other value back onto its grid point. */
static void test_q8_0_q4_0_idempotent(void **state) {
    (void)state;
    const uint32_t types[] = {SLM_GGML_Q8_0, SLM_GGML_Q4_0};
    for (int t = 0; t < 2; t++) {
        slm_rng r;
        slm_rng_seed(&r, 13, (uint64_t)t);
        const int64_t n = 32 * 300;
        float *x = randn(&r, n, 1.0f);
        void *q = quantize(types[t], x, n);
        float *y = dequantize(types[t], q, n);
        void *q2 = quantize(types[t], y, n);
        assert_memory_equal(q, q2, slm_quant_row_bytes(types[t], n));
        free(x), free(q), free(y), free(q2);
    }
}

static void test_zero_blocks_quantize_to_zero(void **state) {
    (void)state;
    const uint32_t types[] = {SLM_GGML_F16, SLM_GGML_BF16, SLM_GGML_Q8_0, SLM_GGML_Q4_0,
                              SLM_GGML_Q4_K, SLM_GGML_Q6_K, SLM_GGML_Q8_K};
    float x[512] = {0};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        void *q = quantize(types[t], x, 512);
        float *y = dequantize(types[t], q, 512);
        for (int i = 0; i < 512; i++) assert_true(y[i] == 0.0f);
        free(q), free(y);
    }
    /* exact bytes of ggml's all-zero blocks: Q4_0 d = 0/-8 = -0 (f16 0x8000) with every nibble
     * 8; Q6_K all zero */
    slm_block_q4_0 *q4 = quantize(SLM_GGML_Q4_0, x, 32);
    assert_int_equal(q4->d, 0x8000);
    for (int j = 0; j < 16; j++) assert_int_equal(q4->qs[j], 0x88);
    slm_block_q6_K *q6 = quantize(SLM_GGML_Q6_K, x, 256);
    static const slm_block_q6_K zero6;
    assert_memory_equal(q6, &zero6, sizeof zero6);
    free(q4), free(q6);
}

/* Q4_0 with max = -8 (d = 1, 1/d = 1): values at the ±7.5 and ±0.5 boundaries. Truncating
 * x + 8.5 rounds halves up: 7.5 -> 16 -> clamped 15 (7); -7.5 -> 1 (-7); 0.5 -> 9; -0.5 -> 8. */
static void test_q4_0_boundaries_exact(void **state) {
    (void)state;
    float x[32] = {0};
    x[0] = -8.0f, x[1] = 7.5f, x[2] = -7.5f, x[3] = 0.5f, x[4] = -0.5f, x[5] = 6.5f;
    x[6] = 8.0f - 1e-6f, x[16] = 7.49f, x[17] = -8.0f, x[18] = 1.5f;
    slm_block_q4_0 *q = quantize(SLM_GGML_Q4_0, x, 32);
    assert_int_equal(q->d, 0x3C00); /* 1.0 */
    const int lo[7] = {0, 15, 1, 9, 8, 15, 15};
    for (int j = 0; j < 7; j++) assert_int_equal(q->qs[j] & 0xF, lo[j]);
    assert_int_equal(q->qs[0] >> 4, 15); /* 7.49 + 8.5 = 15.99 -> 15 */
    assert_int_equal(q->qs[1] >> 4, 0);  /* -8 */
    assert_int_equal(q->qs[2] >> 4, 10); /* 1.5 -> 10 (half up) */
    assert_int_equal(q->qs[7], 0x88);
    /* the first element of largest magnitude sets the sign of d: +8 first gives d = -1 */
    float z[32] = {0};
    z[3] = 8.0f, z[9] = -8.0f;
    slm_block_q4_0 *q2 = quantize(SLM_GGML_Q4_0, z, 32);
    assert_int_equal(q2->d, 0xBC00); /* -1.0 */
    assert_int_equal(q2->qs[3] & 0xF, 0);  /* 8 / -1 = -8 -> 0 */
    assert_int_equal(q2->qs[9] & 0xF, 15); /* -8 / -1 = 8 -> 16.5 -> clamped 15 */
    free(q), free(q2);
}

/* Q8_0 with amax = 127 (d = 1): roundf rounds halves away from zero. */
static void test_q8_0_ties_exact(void **state) {
    (void)state;
    float x[32] = {0};
    x[0] = 127.0f, x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f, x[4] = -0.5f, x[5] = -127.0f;
    x[6] = 126.5f;
    slm_block_q8_0 *q = quantize(SLM_GGML_Q8_0, x, 32);
    assert_int_equal(q->d, 0x3C00);
    const int want[7] = {127, 3, -3, 1, -1, -127, 127};
    for (int j = 0; j < 7; j++) assert_int_equal(q->qs[j], want[j]);
    free(q);
}

static void test_f16_bf16_rounding(void **state) {
    (void)state;
    /* bf16: 1 + 2^-8 is a tie -> even (1.0); 1 + 3·2^-8 -> up; NaN stays NaN */
    assert_int_equal(slm_q_fp32_to_bf16(1.0f + 0x1p-8f), 0x3F80);
    assert_int_equal(slm_q_fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);
    assert_true(isnan(slm_q_bf16_to_fp32(slm_q_fp32_to_bf16(NAN))));
    /* f16: 1 + 2^-11 tie -> 1.0; 65520 rounds to inf; 2^-24 is the smallest subnormal */
    assert_int_equal(slm_q_fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);
    assert_int_equal(slm_q_fp32_to_fp16(65520.0f), 0x7C00);
    assert_int_equal(slm_q_fp32_to_fp16(0x1p-24f), 0x0001);
    assert_int_equal(slm_q_fp32_to_fp16(NAN) & 0x7FFF, 0x7E00);
    float x[3] = {1.5f, -2.0f, 1e-3f}, y[3];
    uint16_t h[3];
    slm_quant_get_ref(SLM_GGML_BF16)->from_float(x, h, 3);
    slm_quant_get_ref(SLM_GGML_BF16)->to_float(h, y, 3);
    assert_true(y[0] == 1.5f && y[1] == -2.0f && fabsf(y[2] - 1e-3f) < 1e-5f);
}

/* ggml's fp32 -> fp16 (the FP16 library's branch-free rounding, which ggml-quants.c uses to
 * store every block scale), re-expressed here as the outside truth for slm's conversion. */
static uint16_t ggml_style_fp16(float f) {
    const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    uint32_t w, bits;
    memcpy(&w, &f, 4);
    const uint32_t shl1_w = w + w, sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    uint32_t bb = (bias >> 1) + 0x07800000u;
    float fb;
    memcpy(&fb, &bb, 4);
    base = fb + base;
    memcpy(&bits, &base, 4);
    const uint32_t nonsign = ((bits >> 13) & 0x7C00u) + (bits & 0x0FFFu);
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static void test_fp16_matches_ggml_rounding(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 16, 0);
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = slm_rng_u32(&r);
        if (i % 2) u = (u & 0x80000000u) | ((0x60u + (u >> 23) % 0x40u) << 23) | (u & 0x7FFFFFu);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        uint16_t a = slm_q_fp32_to_fp16(f), b = ggml_style_fp16(f);
        if (a != b) fail_msg("fp16(%a): slm 0x%04x, ggml 0x%04x", (double)f, a, b);
    }
}

/* K-quants and Q8_K: relative RMS error on Gaussian rows, and a per-element bound for Q8_K
 * (|x - x̂| <= |d|/2: one rounding to a grid of step d = max/-127 held in f32). */
static void test_kquant_round_trip_error(void **state) {
    (void)state;
    const struct { uint32_t type; double max_rel_rmse; } cases[] = {
        {SLM_GGML_Q4_K, 0.12}, {SLM_GGML_Q6_K, 0.03}, {SLM_GGML_Q8_K, 0.01},
        {SLM_GGML_Q8_0, 0.01}, {SLM_GGML_Q4_0, 0.15},
    };
    slm_rng r;
    slm_rng_seed(&r, 14, 0);
    const int64_t n = 256 * 64;
    float *x = randn(&r, n, 0.05f);
    for (int64_t i = 0; i < 256; i++) x[i] = fabsf(x[i]) + 0.01f; /* an all-positive block */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        void *q = quantize(cases[c].type, x, n);
        float *y = dequantize(cases[c].type, q, n);
        double se = 0, sx = 0;
        for (int64_t i = 0; i < n; i++) se += (x[i] - y[i]) * (double)(x[i] - y[i]), sx += x[i] * (double)x[i];
        double rel = sqrt(se / sx);
        if (rel > cases[c].max_rel_rmse)
            fail_msg("%s: relative RMS error %.4f > %.4f", slm_ggml_type_name(cases[c].type), rel,
                     cases[c].max_rel_rmse);
        if (cases[c].type == SLM_GGML_Q8_K) {
            const slm_block_q8_K *b = q;
            for (int64_t i = 0; i < n; i++) {
                assert_true(fabs((double)x[i] - y[i]) <= fabsf(b[i / 256].d) * 0.5 * (1 + 1e-5));
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += b[i / 256].qs[(i % 256) / 16 * 16 + l];
                assert_int_equal(sum, b[i / 256].bsums[(i % 256) / 16]);
            }
        }
        free(q), free(y);
    }
    free(x);
}

/* Q4_K on one constant sub-block pattern whose fit is exact: values 0..15 times 0.25 in every
 * sub-block give scale 0.25 and min 0, so every value comes back exactly. */
static void test_q4_K_exact_grid(void **state) {
    (void)state;
    float x[256], y[256];
    for (int i = 0; i < 256; i++) x[i] = 0.25f * (float)(i % 16);
    slm_block_q4_K *q = quantize(SLM_GGML_Q4_K, x, 256);
    slm_quant_get_ref(SLM_GGML_Q4_K)->to_float(q, y, 256);
    for (int i = 0; i < 256; i++) assert_true(fabsf(x[i] - y[i]) < 1e-3f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        slm_q4k_scale_min(j, q->scales, &sc, &m);
        assert_int_equal(sc, 63);
        assert_int_equal(m, 0);
    }
    free(q);
}

/* Fill the scale fields of raw blocks with finite values (and Q8_K's bsums with the true sums,
 * which the kernels rely on, as ggml's do). */
static void fix_scales(uint32_t type, void *row, int64_t n, slm_rng *r, int big) {
    const slm_quant_traits *t = slm_quant_get_ref(type);
    int64_t nb = n / t->block_size;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = (uint8_t *)row + b * t->block_bytes;
        float d1 = big ? 1000.0f : 0.5f + slm_rng_float(r), d2 = big ? 7.0f : 0.1f + slm_rng_float(r);
        if (!big && slm_rng_below(r, 2)) d1 = -d1;
        uint16_t h1 = slm_q_fp32_to_fp16(d1), h2 = slm_q_fp32_to_fp16(d2);
        switch (type) {
        case SLM_GGML_Q8_0: case SLM_GGML_Q4_0: memcpy(blk, &h1, 2); break;
        case SLM_GGML_Q4_K: memcpy(blk, &h1, 2), memcpy(blk + 2, &h2, 2); break;
        case SLM_GGML_Q6_K: memcpy(blk + 208, &h1, 2); break;
        case SLM_GGML_Q8_K: {
            slm_block_q8_K *k = (slm_block_q8_K *)blk;
            k->d = d1;
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += k->qs[16 * g + l];
                k->bsums[g] = (int16_t)s;
            }
            break;
        }
        default: break;
        }
    }
}

/* A row of type with n elements: mode 0 = quantized Gaussian floats; 1 = random bytes;
 * 2 = all 0x00; 3 = all 0xFF; 4 = all 0x80 (int8 -128); 5 = alternating 0x0F/0xF0 — the last
 * four with finite scales. Float types get floats in every mode (extremes scaled to ±1e3). */
static void *make_row(uint32_t type, int64_t n, int mode, slm_rng *r) {
    const slm_quant_traits *t = slm_quant_get_ref(type);
    size_t bytes = slm_quant_row_bytes(type, n);
    if (mode == 0 || t->block_size == 1) {
        float *x = randn(r, n, 1.0f);
        if (mode >= 2)
            for (int64_t i = 0; i < n; i++) x[i] = mode == 2 ? 0.0f : (i % 2 ? 1e3f : -1e3f) * (mode - 2);
        void *q = quantize(type, x, n);
        free(x);
        return q;
    }
    uint8_t *q = malloc(bytes);
    assert_non_null(q);
    for (size_t i = 0; i < bytes; i++)
        q[i] = mode == 1 ? (uint8_t)slm_rng_u32(r)
             : mode == 2 ? 0x00 : mode == 3 ? 0xFF : mode == 4 ? 0x80 : (i % 2 ? 0x0F : 0xF0);
    fix_scales(type, q, n, r, mode >= 3);
    return q;
}

/* Σ|x_i·y_i| and max|x| of the dequantized rows, and their double-precision dot. */
static void dequant_stats(uint32_t type, const void *x, const void *y, int64_t n, double *dot,
                          double *abs_sum, double *xmax, double *yabs) {
    const slm_quant_traits *t = slm_quant_get_ref(type);
    float *fx = dequantize(type, x, n), *fy = dequantize(t->vec_dot_type, y, n);
    *dot = *abs_sum = *xmax = *yabs = 0;
    for (int64_t i = 0; i < n; i++) {
        *dot += (double)fx[i] * fy[i];
        *abs_sum += fabs((double)fx[i] * fy[i]);
        *xmax = fmax(*xmax, fabs(fx[i]));
        *yabs += fabs(fy[i]);
    }
    free(fx), free(fy);
}

static void check_type(uint32_t type, int64_t n, int mode, slm_rng *r) {
    const slm_quant_traits *ref = slm_quant_get_ref(type), *fast = slm_quant_get(type);
    void *x = make_row(type, n, mode, r), *y = make_row(ref->vec_dot_type, n, mode, r);
    float s_ref = NAN, s_fast = NAN;
    ref->vec_dot((int)n, &s_ref, x, y);
    fast->vec_dot((int)n, &s_fast, x, y);
    double dot, abs_sum, xmax, yabs;
    dequant_stats(type, x, y, n, &dot, &abs_sum, &xmax, &yabs);
    const double u = FLT_EPSILON / 2;
    double m = (double)(n / ref->block_size);
    assert_true(isfinite(s_ref) && isfinite(s_fast));
    if (type == SLM_GGML_Q4_K || type == SLM_GGML_Q6_K) {
        if (s_ref != s_fast)
            fail_msg("%s n=%lld mode %d: SIMD %.9g != scalar %.9g (must be bit-identical)",
                     ref->name, (long long)n, mode, s_fast, s_ref);
    } else {
        double tol = 2 * (m + 8) * u * abs_sum;
        if (fabs((double)s_ref - s_fast) > tol)
            fail_msg("%s n=%lld mode %d: SIMD %.9g vs scalar %.9g, |diff| > %.3g", ref->name,
                     (long long)n, mode, s_fast, s_ref, tol);
    }
    double tol_d = 2 * (m + 8) * u * abs_sum + 3 * u * xmax * yabs;
    if (fabs((double)s_ref - dot) > tol_d)
        fail_msg("%s n=%lld mode %d: vec_dot %.9g vs double dot of dequantized %.9g, tol %.3g",
                 ref->name, (long long)n, mode, s_ref, dot, tol_d);
    free(x), free(y);
}

static void test_vec_dot_simd_vs_scalar_vs_double(void **state) {
    (void)state;
    if (!slm_cpu_has_avx2()) print_message("no AVX2 on this CPU: fast == reference\n");
    slm_rng r;
    slm_rng_seed(&r, 15, 0);
    const int blocks[] = {1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 64};
    for (int t = 0; t < N_WEIGHT_TYPES; t++) {
        int bs = slm_quant_get_ref(WEIGHT_TYPES[t])->block_size;
        for (int mode = 0; mode <= 5; mode++) {
            for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
                int64_t n = (int64_t)blocks[b] * (bs == 1 ? 32 : bs);
                if (bs == 1 && mode == 0) n += blocks[b] % 8; /* tails after the 8-wide loop */
                check_type(WEIGHT_TYPES[t], n, mode, &r);
            }
            check_type(WEIGHT_TYPES[t], 4096, mode, &r);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits_match_gguf_sizes),
        cmocka_unit_test(test_q8_0_round_trip_bound),
        cmocka_unit_test(test_q4_0_round_trip_bound),
        cmocka_unit_test(test_q8_0_q4_0_idempotent),
        cmocka_unit_test(test_zero_blocks_quantize_to_zero),
        cmocka_unit_test(test_q4_0_boundaries_exact),
        cmocka_unit_test(test_q8_0_ties_exact),
        cmocka_unit_test(test_f16_bf16_rounding),
        cmocka_unit_test(test_fp16_matches_ggml_rounding),
        cmocka_unit_test(test_kquant_round_trip_error),
        cmocka_unit_test(test_q4_K_exact_grid),
        cmocka_unit_test(test_vec_dot_simd_vs_scalar_vs_double),
    };
    return cmocka_run_group_tests_name("quant", tests, NULL, NULL);
}
