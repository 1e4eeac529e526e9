/* blocks.h: private to src/quant — GGUF's block structs (exact byte layouts of llama.cpp's
 * ggml-common.h, each with a size assert), the scalar conversions the quantizers share, and the
 * per-type functions that traits.c puts in its tables.
 *
 * Not the interface: other layers use quant.h (the traits table). The structs are here so the
 * scalar reference files and the AVX2 file read blocks the same way.
 *
 * Layouts (little-endian, no padding):
 *   Q8_0  32 elems, 34 bytes:  f16 d; int8 qs[32]                          x = d*q
 *   Q4_0  32 elems, 18 bytes:  f16 d; u8 qs[16] (low nibble j, high j+16)  x = d*(q-8)
 *   Q4_K 256 elems, 144 bytes: f16 d, dmin; u8 scales[12] (8 6-bit scales, 8 6-bit mins);
 *                              u8 qs[128] (per 64 elems: 32 bytes, low nibbles = first 32)
 *                              x = d*sc_j*q - dmin*m_j, j = sub-block of 32
 *   Q6_K 256 elems, 210 bytes: u8 ql[128] (low 4 bits); u8 qh[64] (high 2 bits);
 *                              int8 scales[16]; f16 d                     x = d*sc_j*(q-32)
 *   Q8_K 256 elems, 292 bytes: float d; int8 qs[256]; int16 bsums[16] (sums of 16 qs)
 */
#ifndef SLM_QUANT_BLOCKS_H
#define SLM_QUANT_BLOCKS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

#define SLM_QK8_0 32
#define SLM_QK4_0 32
#define SLM_QK_K 256
#define SLM_K_SCALE_SIZE 12

typedef struct {
    uint16_t d;                /* f16 scale */
    int8_t qs[SLM_QK8_0];
} slm_block_q8_0;
_Static_assert(sizeof(slm_block_q8_0) == 34, "block_q8_0 is 34 bytes");

typedef struct {
    uint16_t d;                /* f16 scale */
    uint8_t qs[SLM_QK4_0 / 2]; /* element j in the low nibble of qs[j], j+16 in the high one */
} slm_block_q4_0;
_Static_assert(sizeof(slm_block_q4_0) == 18, "block_q4_0 is 18 bytes");

typedef struct {
    uint16_t d;                         /* f16 super-block scale of the scales */
    uint16_t dmin;                      /* f16 super-block scale of the mins */
    uint8_t scales[SLM_K_SCALE_SIZE];   /* 6-bit scales and mins, packed (get_scale_min) */
    uint8_t qs[SLM_QK_K / 2];           /* 4-bit quants */
} slm_block_q4_K;
_Static_assert(sizeof(slm_block_q4_K) == 144, "block_q4_K is 144 bytes");

typedef struct {
    uint8_t ql[SLM_QK_K / 2];      /* low 4 bits */
    uint8_t qh[SLM_QK_K / 4];      /* high 2 bits */
    int8_t scales[SLM_QK_K / 16];  /* 8-bit sub-block scales */
    uint16_t d;                    /* f16 super-block scale */
} slm_block_q6_K;
_Static_assert(sizeof(slm_block_q6_K) == 210, "block_q6_K is 210 bytes");

typedef struct {
    float d;
    int8_t qs[SLM_QK_K];
    int16_t bsums[SLM_QK_K / 16];  /* sum of qs in each group of 16 */
} slm_block_q8_K;
_Static_assert(sizeof(slm_block_q8_K) == 292, "block_q8_K is 292 bytes");

/* f16 <-> f32 as ggml does it: round to nearest even; NaN becomes sign|0x7E00. */
static inline uint16_t slm_q_fp32_to_fp16(float f) {
    if (isnan(f)) return (uint16_t)((signbit(f) ? 0x8000u : 0u) | 0x7E00u);
    return slm_f32_to_f16(f);
}
static inline float slm_q_fp16_to_fp32(uint16_t h) { return slm_f16_to_f32(h); }

/* bf16: the top half of an f32, rounded to nearest even; NaN kept quiet (ggml's rule). */
static inline uint16_t slm_q_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64u);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}
static inline float slm_q_bf16_to_fp32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest, ties to even, by the 1.5·2^23 trick (ggml's nearest_int; |x| < 2^22). */
static inline int slm_q_nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Q4_K's 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void slm_q4k_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* ---- scalar reference functions (the specification) ---- */
void slm_q_f32_to_float(const void *src, float *dst, int64_t n);
void slm_q_f32_from_float(const float *src, void *dst, int64_t n);
void slm_q_f32_vec_dot(int n, float *s, const void *x, const void *y);
void slm_q_f16_to_float(const void *src, float *dst, int64_t n);
void slm_q_f16_from_float(const float *src, void *dst, int64_t n);
void slm_q_f16_vec_dot(int n, float *s, const void *x, const void *y);
void slm_q_bf16_to_float(const void *src, float *dst, int64_t n);
void slm_q_bf16_from_float(const float *src, void *dst, int64_t n);
void slm_q_bf16_vec_dot(int n, float *s, const void *x, const void *y);
void slm_q8_0_to_float(const void *src, float *dst, int64_t n);
void slm_q8_0_from_float(const float *src, void *dst, int64_t n);
void slm_q8_0_vec_dot(int n, float *s, const void *x, const void *y);
void slm_q4_0_to_float(const void *src, float *dst, int64_t n);
void slm_q4_0_from_float(const float *src, void *dst, int64_t n);
void slm_q4_0_vec_dot(int n, float *s, const void *x, const void *y);
void slm_q4_K_to_float(const void *src, float *dst, int64_t n);
void slm_q4_K_from_float(const float *src, void *dst, int64_t n);
void slm_q4_K_vec_dot(int n, float *s, const void *x, const void *y);
void slm_q6_K_to_float(const void *src, float *dst, int64_t n);
void slm_q6_K_from_float(const float *src, void *dst, int64_t n);
void slm_q6_K_vec_dot(int n, float *s, const void *x, const void *y);
void slm_q8_K_to_float(const void *src, float *dst, int64_t n);
void slm_q8_K_from_float(const float *src, void *dst, int64_t n);

/* ---- AVX2+FMA(+F16C) dot products (dot_avx2.c); only called when the CPU has them ---- */
void slm_q_f32_vec_dot_avx2(int n, float *s, const void *x, const void *y);
void slm_q_f16_vec_dot_avx2(int n, float *s, const void *x, const void *y);
void slm_q_bf16_vec_dot_avx2(int n, float *s, const void *x, const void *y);
void slm_q8_0_vec_dot_avx2(int n, float *s, const void *x, const void *y);
void slm_q4_0_vec_dot_avx2(int n, float *s, const void *x, const void *y);
void slm_q4_K_vec_dot_avx2(int n, float *s, const void *x, const void *y);
void slm_q6_K_vec_dot_avx2(int n, float *s, const void *x, const void *y);

#endif
