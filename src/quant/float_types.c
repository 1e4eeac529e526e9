/* float_types.c: the unblocked element types — F32, F16 and BF16 — as quant.h's traits see them:
 * conversion to and from f32 and a dot product with an f32 row (their vec_dot_type).
 *
 * Scalar reference versions; dot_avx2.c has the fast ones. Sums run left to right in f32, the
 * order the SIMD versions are compared against with a rounding tolerance.
 */
#include "quant/blocks.h"

void slm_q_f32_to_float(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void slm_q_f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void slm_q_f32_vec_dot(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

void slm_q_f16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = slm_q_fp16_to_fp32(h[i]);
}

void slm_q_f16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = slm_q_fp32_to_fp16(src[i]);
}

void slm_q_f16_vec_dot(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += slm_q_fp16_to_fp32(x[i]) * y[i];
    *s = sum;
}

void slm_q_bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = slm_q_bf16_to_fp32(h[i]);
}

void slm_q_bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = slm_q_fp32_to_bf16(src[i]);
}

void slm_q_bf16_vec_dot(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += slm_q_bf16_to_fp32(x[i]) * y[i];
    *s = sum;
}
