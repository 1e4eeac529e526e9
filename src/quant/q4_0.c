/* q4_0.c: Q4_0 — blocks of 32 4-bit values with one f16 scale, x = d·(q-8) — reference
 * quantizer, dequantizer and Q4_0·Q8_0 dot product.
 *
 * Produces the bytes of ggml's quantize_row_q4_0_ref: the element of largest magnitude (the
 * first one on ties) is max, d = max/-8 (so max maps to q = 0, i.e. -8), q = min(15,
 * (int8)(x·(1/d) + 8.5)) — truncation, so halves round up; values of the opposite sign beyond
 * 7.5·|d| clamp to 7. Element j goes to the low nibble of byte j, element j+16 to its high one.
 */
#include "quant/blocks.h"

void slm_q4_0_from_float(const float *x, void *vy, int64_t n) {
    slm_block_q4_0 *y = vy;
    int64_t nb = n / SLM_QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * SLM_QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < SLM_QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = slm_q_fp32_to_fp16(d);
        for (int j = 0; j < SLM_QK4_0 / 2; j++) {
            const float x0 = xb[j] * id;
            const float x1 = xb[SLM_QK4_0 / 2 + j] * id;
            int8_t t0 = (int8_t)(x0 + 8.5f), t1 = (int8_t)(x1 + 8.5f);
            uint8_t q0 = (uint8_t)(t0 < 15 ? t0 : 15), q1 = (uint8_t)(t1 < 15 ? t1 : 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void slm_q4_0_to_float(const void *vx, float *y, int64_t n) {
    const slm_block_q4_0 *x = vx;
    int64_t nb = n / SLM_QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = slm_q_fp16_to_fp32(x[i].d);
        for (int j = 0; j < SLM_QK4_0 / 2; j++) {
            y[i * SLM_QK4_0 + j] = ((x[i].qs[j] & 0x0F) - 8) * d;
            y[i * SLM_QK4_0 + j + SLM_QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* y is Q8_0. Per block an exact integer sum, scaled by d_x·d_y, summed in f32 in block order. */
void slm_q4_0_vec_dot(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q4_0 *x = vx;
    const slm_block_q8_0 *y = vy;
    int nb = n / SLM_QK4_0;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < SLM_QK4_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + SLM_QK4_0 / 2];
        }
        sumf += (float)sumi * (slm_q_fp16_to_fp32(x[i].d) * slm_q_fp16_to_fp32(y[i].d));
    }
    *s = sumf;
}
