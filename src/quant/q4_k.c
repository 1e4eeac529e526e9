/* q4_k.c: Q4_K — super-blocks of 256 in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit
 * min (x = d·sc·q - dmin·m, q in 0..15) — reference quantizer, dequantizer and Q4_K·Q8_K dot.
 *
 * The quantizer follows ggml's quantize_row_q4_K_ref step for step (it is what llama-quantize
 * writes without an importance matrix), so the bytes match:
 *  1. per sub-block, weights w = sqrt(mean(x²)) + |x|, and make_qkx2 (below) fits scale and min
 *     by trying 21 candidate inverse scales (nmax -1 + 0.1·k, k = 0..20) and keeping the one of
 *     least weighted squared error, the min clamped to <= 0;
 *  2. scales and mins are quantized to 6 bits against their maxima (d = max_scale/63,
 *     dmin = max_min/63, both f16) and packed (slm_q4k_scale_min reads them back);
 *  3. each sub-block is requantized with its decoded scale and min: q = nearest((x+dm)/d) in
 *     0..15 — except a sub-block whose decoded scale is 0 keeps step 1's quants (as ggml does).
 * Packing: per 64 elements, 32 bytes; element l in the low nibble of byte l, l+32 in the high.
 */
#include "quant/blocks.h"

/* ggml's make_qkx2_quants with use_mad = false: a scale and a min (returned as -min >= 0 in
 * *the_min) for n values x, quants in L (0..nmax). */
static float make_qkx2(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                       float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = slm_q_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = slm_q_nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

void slm_q4_K_from_float(const float *x, void *vy, int64_t n) {
    slm_block_q4_K *y = vy;
    int64_t nb = n / SLM_QK_K;
    uint8_t L[SLM_QK_K], Laux[32];
    float weights[32], mins[SLM_QK_K / 32], scales[SLM_QK_K / 32];
    for (int64_t i = 0; i < nb; i++, x += SLM_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < SLM_QK_K / 32; j++) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f,
                                  0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < SLM_QK_K / 32; j++) {
            uint8_t ls = (uint8_t)slm_q_nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)slm_q_nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[i].d = slm_q_fp32_to_fp16(max_scale / 63.f);
        y[i].dmin = slm_q_fp32_to_fp16(max_min / 63.f);
        for (int j = 0; j < SLM_QK_K / 32; j++) {
            uint8_t sc, m;
            slm_q4k_scale_min(j, y[i].scales, &sc, &m);
            const float d = slm_q_fp16_to_fp32(y[i].d) * sc;
            if (d == 0.0f) continue;
            const float dm = slm_q_fp16_to_fp32(y[i].dmin) * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = slm_q_nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
            }
        }
        uint8_t *q = y[i].qs;
        for (int j = 0; j < SLM_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void slm_q4_K_to_float(const void *vx, float *y, int64_t n) {
    const slm_block_q4_K *x = vx;
    int64_t nb = n / SLM_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = slm_q_fp16_to_fp32(x[i].d), min = slm_q_fp16_to_fp32(x[i].dmin);
        for (int j = 0, is = 0; j < SLM_QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            slm_q4k_scale_min(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            slm_q4k_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* y is Q8_K. Per super-block two exact integers — Σ_j sc_j·Σ q·q8 and Σ_j m_j·(q8 sum of
 * sub-block j, from bsums) — then sumf += d·dy·isum - dmin·dy·imin in f32. The AVX2 version
 * computes the same integers and the same f32 expression, so the two agree bit for bit. */
void slm_q4_K_vec_dot(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q4_K *x = vx;
    const slm_block_q8_K *y = vy;
    int nb = n / SLM_QK_K;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0, imin = 0;
        for (int j = 0; j < SLM_QK_K / 64; j++, q4 += 32, q8 += 64) {
            uint8_t sc1, m1, sc2, m2;
            slm_q4k_scale_min(2 * j, x[i].scales, &sc1, &m1);
            slm_q4k_scale_min(2 * j + 1, x[i].scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += (q4[l] & 0xF) * q8[l];
                s2 += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc1 * s1 + sc2 * s2;
            imin += m1 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) +
                    m2 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
        }
        const float dy = y[i].d;
        sumf += slm_q_fp16_to_fp32(x[i].d) * dy * (float)isum -
                slm_q_fp16_to_fp32(x[i].dmin) * dy * (float)imin;
    }
    *s = sumf;
}
