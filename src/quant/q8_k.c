/* q8_k.c: Q8_K — the activation type of the K-quant dot products: 256 int8 with an f32 scale
 * and the sums of each group of 16 (which the dot products use to apply Q4_K's mins and
 * Q6_K's -32 offset without touching the activations again).
 *
 * Produces ggml's quantize_row_q8_K_ref: max = the element of largest magnitude (first on
 * ties), iscale = -127/max, q = min(127, nearest_int(iscale·x)) — so max maps to -127 and the
 * opposite extreme may reach 127 (or -128 never: |iscale·x| <= 127). d = 1/iscale.
 * An all-zero block is d = 0, qs = 0 (and bsums = 0, which ggml leaves unwritten).
 */
#include "quant/blocks.h"

void slm_q8_K_from_float(const float *x, void *vy, int64_t n) {
    slm_block_q8_K *y = vy;
    int64_t nb = n / SLM_QK_K;
    for (int64_t i = 0; i < nb; i++, x += SLM_QK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < SLM_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < SLM_QK_K; j++) {
            int v = slm_q_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < SLM_QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[g * 16 + l];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void slm_q8_K_to_float(const void *vx, float *y, int64_t n) {
    const slm_block_q8_K *x = vx;
    int64_t nb = n / SLM_QK_K;
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < SLM_QK_K; j++) y[i * SLM_QK_K + j] = x[i].d * x[i].qs[j];
}
