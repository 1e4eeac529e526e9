/* q6_k.c: Q6_K — super-blocks of 256 in 16 sub-blocks of 16, each with an int8 scale, quants
 * of 6 bits (x = d·sc·(q-32), q in 0..63) — reference quantizer, dequantizer, Q6_K·Q8_K dot.
 *
 * The quantizer follows ggml's quantize_row_q6_K_ref (llama-quantize's path without an
 * importance matrix), so the bytes match:
 *  1. per sub-block make_qx (ggml's make_qx_quants, rmse_type 1: weights x²) fits a signed
 *     scale: it starts from -32/max and tries 18 more inverse scales -(32 + 0.1·k)/max,
 *     k = ±1..±9, keeping the best weighted least-squares fit;
 *  2. the scale of largest magnitude sets d = 1/iscale with iscale = -128/max_scale (f16), and
 *     the scales become int8 min(127, nearest(iscale·scale));
 *  3. each sub-block is requantized with d·sc: q = nearest(x/(d·sc)) in -32..31, +32; a
 *     sub-block whose d·sc is 0 keeps step 1's quants. A block of all |scale| < 1e-15 is zeros.
 * Packing per 128 elements (l = 0..31): ql[l] = q[l] low | q[l+64] low << 4, ql[l+32] = q[l+32]
 * low | q[l+96] low << 4; qh[l] = the four high 2-bit pairs of q[l], q[l+32], q[l+64], q[l+96].
 */
#include "quant/blocks.h"

#define GROUP_MAX_EPS 1e-15f

/* ggml's make_qx_quants with rmse_type = 1 and no importance weights. L gets q + nmax. */
static float make_qx(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = slm_q_nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = slm_q_nearest_int(iscale * x[i]);
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = slm_q_nearest_int(iscale * x[i]);
                l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
                L[i] = (int8_t)(l + nmax);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void slm_q6_K_from_float(const float *x, void *vy, int64_t n) {
    slm_block_q6_K *y = vy;
    int64_t nb = n / SLM_QK_K;
    int8_t L[SLM_QK_K];
    float scales[SLM_QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += SLM_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < SLM_QK_K / 16; ib++) {
            const float scale = make_qx(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = slm_q_fp32_to_fp16(0.f);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = slm_q_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < SLM_QK_K / 16; ib++) {
            int v = slm_q_nearest_int(iscale * scales[ib]);
            y[i].scales[ib] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < SLM_QK_K / 16; j++) {
            float d = slm_q_fp16_to_fp32(y[i].d) * y[i].scales[j];
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = slm_q_nearest_int(x[16 * j + ii] / d);
                l = l < -32 ? -32 : l > 31 ? 31 : l;
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < SLM_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

/* The 6-bit quant (0..63) of element e (0..255) of a block. */
static inline int q6_at(const slm_block_q6_K *b, int e) {
    int half = e / 128, r = e % 128, l = r % 32, part = r / 32;
    const uint8_t *ql = b->ql + 64 * half, *qh = b->qh + 32 * half;
    int lo = part & 1 ? ql[l + 32] : ql[l];
    lo = part >= 2 ? lo >> 4 : lo & 0xF;
    return lo | (((qh[l] >> (2 * part)) & 3) << 4);
}

void slm_q6_K_to_float(const void *vx, float *y, int64_t n) {
    const slm_block_q6_K *x = vx;
    int64_t nb = n / SLM_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_q_fp16_to_fp32(x[i].d);
        for (int e = 0; e < SLM_QK_K; e++)
            y[i * SLM_QK_K + e] = d * x[i].scales[e / 16] * (q6_at(&x[i], e) - 32);
    }
}

/* y is Q8_K. Per super-block one exact integer Σ_g sc_g·Σ (q-32)·q8 over the 16 groups, then
 * sumf += d·dy·isum in f32 (the AVX2 version computes the same, bit for bit). */
void slm_q6_K_vec_dot(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q6_K *x = vx;
    const slm_block_q8_K *y = vy;
    int nb = n / SLM_QK_K;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i++) {
        int isum = 0;
        for (int g = 0; g < SLM_QK_K / 16; g++) {
            int sg = 0;
            for (int l = 0; l < 16; l++) sg += (q6_at(&x[i], 16 * g + l) - 32) * y[i].qs[16 * g + l];
            isum += x[i].scales[g] * sg;
        }
        sumf += slm_q_fp16_to_fp32(x[i].d) * y[i].d * (float)isum;
    }
    *s = sumf;
}
