/* q8_0.c: Q8_0 — blocks of 32 int8 with one f16 scale — reference quantizer, dequantizer and
 * Q8_0·Q8_0 dot product (Q8_0 is also the activation type Q4_0 weights are multiplied with).
 *
 * The quantizer is the format's specification and produces the bytes of ggml's
 * quantize_row_q8_0_ref: d = amax/127 in f32, q = roundf(x·(1/d)) (ties away from zero), and
 * d stored as f16 (so dequantization uses the rounded d).
 */
#include "quant/blocks.h"

void slm_q8_0_from_float(const float *x, void *vy, int64_t n) {
    slm_block_q8_0 *y = vy;
    int64_t nb = n / SLM_QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < SLM_QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = slm_q_fp32_to_fp16(d);
        for (int j = 0; j < SLM_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

void slm_q8_0_to_float(const void *vx, float *y, int64_t n) {
    const slm_block_q8_0 *x = vx;
    int64_t nb = n / SLM_QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_q_fp16_to_fp32(x[i].d);
        for (int j = 0; j < SLM_QK8_0; j++) y[i * SLM_QK8_0 + j] = x[i].qs[j] * d;
    }
}

/* Per block an exact integer sum, scaled by d_x·d_y and summed in f32 in block order. */
void slm_q8_0_vec_dot(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q8_0 *x = vx, *y = vy;
    int nb = n / SLM_QK8_0;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < SLM_QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sumf += (float)sumi * (slm_q_fp16_to_fp32(x[i].d) * slm_q_fp16_to_fp32(y[i].d));
    }
    *s = sumf;
}
