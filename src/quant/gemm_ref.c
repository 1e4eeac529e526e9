/* gemm_ref.c: scalar references of the tile kernels of gemm.h (the specification the SIMD kernels
 * of gemm_avx2.c are tested against bit for bit), and the table that picks the fast one.
 *
 * The lane structure of gemm.h is spelled out here in plain C: 8 f32 accumulators per output,
 * each fed by an exact integer partial sum of 4 elements per block through fmaf.
 */
#include "quant/gemm.h"

#include <math.h>

#include "gguf/gguf.h"
#include "quant/blocks.h"
#include "quant/quant.h"

static float hsum8(const float a[8]) {
    float b0 = a[0] + a[4], b1 = a[1] + a[5], b2 = a[2] + a[6], b3 = a[3] + a[7];
    return (b0 + b2) + (b1 + b3);
}

static void store(float *y, float s, int accumulate) { *y = accumulate ? *y + s : s; }

void slm_qgemm_q8_0_ref(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                        size_t x_stride, float *y, size_t ldy, int accumulate) {
    int nb = cols / SLM_QK8_0;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const slm_block_q8_0 *wr = (const void *)((const char *)w + (size_t)r * w_stride);
            const slm_block_q8_0 *xt = (const void *)((const char *)x + (size_t)t * x_stride);
            float acc[8] = {0};
            for (int b = 0; b < nb; b++) {
                float d = slm_q_fp16_to_fp32(wr[b].d) * slm_q_fp16_to_fp32(xt[b].d);
                for (int l = 0; l < 8; l++) {
                    int p = 0;
                    for (int k = 4 * l; k < 4 * l + 4; k++) p += wr[b].qs[k] * xt[b].qs[k];
                    acc[l] = fmaf(d, (float)p, acc[l]);
                }
            }
            store(y + (size_t)t * ldy + r, hsum8(acc), accumulate);
        }
}

void slm_qgemm_q4_0_ref(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                        size_t x_stride, float *y, size_t ldy, int accumulate) {
    int nb = cols / SLM_QK4_0;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const slm_block_q4_0 *wr = (const void *)((const char *)w + (size_t)r * w_stride);
            const slm_block_q8_0 *xt = (const void *)((const char *)x + (size_t)t * x_stride);
            float acc[8] = {0};
            for (int b = 0; b < nb; b++) {
                float d = slm_q_fp16_to_fp32(wr[b].d) * slm_q_fp16_to_fp32(xt[b].d);
                for (int l = 0; l < 8; l++) {
                    int p = 0;
                    for (int k = 4 * l; k < 4 * l + 4; k++) {
                        int q = k < 16 ? (wr[b].qs[k] & 0x0F) : (wr[b].qs[k - 16] >> 4);
                        p += (q - 8) * xt[b].qs[k];
                    }
                    acc[l] = fmaf(d, (float)p, acc[l]);
                }
            }
            store(y + (size_t)t * ldy + r, hsum8(acc), accumulate);
        }
}

slm_qgemm_fn slm_qgemm_get_ref(uint32_t type) {
    switch (type) {
    case SLM_GGML_Q8_0: return slm_qgemm_q8_0_ref;
    case SLM_GGML_Q4_0: return slm_qgemm_q4_0_ref;
    default: return NULL;
    }
}

slm_qgemm_fn slm_qgemm_get(uint32_t type) {
    if (!slm_cpu_has_avx2()) return NULL; /* the per-element reference is slower than vec_dot */
    switch (type) {
    case SLM_GGML_Q8_0: return slm_qgemm_q8_0_avx2;
    case SLM_GGML_Q4_0: return slm_qgemm_q4_0_avx2;
    default: return NULL;
    }
}
