/* dot_avx2.c: AVX2+FMA(+F16C) dot products for every weight type, against the scalar
 * references in float_types.c, q8_0.c, q4_0.c, q4_k.c and q6_k.c.
 *
 * Each function carries its own target attribute, so this file builds with the Makefile's
 * generic flags and the kernels run only when traits.c has checked the CPU. Integer parts are
 * exact (no saturating instruction sees a value that could saturate: Q8_0 widens to int16
 * before multiplying, so even -128·-128 is exact; Q4_0 subtracts 8·Σy as a second product).
 *   - K-quants: the per-super-block integers and the f32 expression are the scalar ones, so
 *     results are bit-identical to the reference.
 *   - F32/F16/BF16, Q8_0, Q4_0: partial sums sit in 8 f32 lanes (several accumulators), so
 *     the f32 rounding differs from the left-to-right reference; tests bound the difference.
 */
#include "quant/blocks.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

AVX2 static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

AVX2 void slm_q_f32_vec_dot_avx2(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

AVX2 static inline __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

AVX2 void slm_q_f16_vec_dot_avx2(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_f16(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(load_f16(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += h2f(x[i]) * y[i];
    *s = sum;
}

AVX2 static inline __m256 load_bf16(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

AVX2 void slm_q_bf16_vec_dot_avx2(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_bf16(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_bf16(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_bf16(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_bf16(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += slm_q_bf16_to_fp32(x[i]) * y[i];
    *s = sum;
}

/* 8 int32 partial sums of one Q8_0·Q8_0 block, exact for every int8 value. */
AVX2 static inline __m256i q8_0_block(const slm_block_q8_0 *x, const slm_block_q8_0 *y) {
    __m256i xv = _mm256_loadu_si256((const __m256i *)x->qs);
    __m256i yv = _mm256_loadu_si256((const __m256i *)y->qs);
    __m256i xl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(xv));
    __m256i xh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(xv, 1));
    __m256i yl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(yv));
    __m256i yh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(yv, 1));
    return _mm256_add_epi32(_mm256_madd_epi16(xl, yl), _mm256_madd_epi16(xh, yh));
}

AVX2 void slm_q8_0_vec_dot_avx2(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q8_0 *x = vx, *y = vy;
    int nb = n / SLM_QK8_0, i = 0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (; i + 2 <= nb; i += 2) {
        __m256 d0 = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        __m256 d1 = _mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d));
        a0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(q8_0_block(&x[i], &y[i])), a0);
        a1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(q8_0_block(&x[i + 1], &y[i + 1])), a1);
    }
    for (; i < nb; i++) {
        __m256 d0 = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        a0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(q8_0_block(&x[i], &y[i])), a0);
    }
    *s = hsum_ps(_mm256_add_ps(a0, a1));
}

/* 8 int32 partial sums of one Q4_0·Q8_0 block: Σ q·y - 8·Σ y, both through maddubs (|q| <= 15,
 * 8: no int16 saturation for any int8 y). */
AVX2 static inline __m256i q4_0_block(const slm_block_q4_0 *x, const slm_block_q8_0 *y) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    __m128i qb = _mm_loadu_si128((const __m128i *)x->qs);
    __m128i lo = _mm_and_si128(qb, _mm256_castsi256_si128(m4));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(qb, 4), _mm256_castsi256_si128(m4));
    __m256i q = _mm256_set_m128i(hi, lo);
    __m256i yv = _mm256_loadu_si256((const __m256i *)y->qs);
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, yv), _mm256_maddubs_epi16(eight, yv));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

AVX2 void slm_q4_0_vec_dot_avx2(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q4_0 *x = vx;
    const slm_block_q8_0 *y = vy;
    int nb = n / SLM_QK4_0, i = 0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (; i + 2 <= nb; i += 2) {
        __m256 d0 = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        __m256 d1 = _mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d));
        a0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(q4_0_block(&x[i], &y[i])), a0);
        a1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(q4_0_block(&x[i + 1], &y[i + 1])), a1);
    }
    for (; i < nb; i++) {
        __m256 d0 = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        a0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(q4_0_block(&x[i], &y[i])), a0);
    }
    *s = hsum_ps(_mm256_add_ps(a0, a1));
}

AVX2 void slm_q4_K_vec_dot_avx2(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q4_K *x = vx;
    const slm_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    int nb = n / SLM_QK_K;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i++) {
        /* unpack the 12 bytes into 8 scales (bytes 0-7) and 8 mins (bytes 8-15) with word
         * masks: the same values slm_q4k_scale_min gives */
        uint32_t u[4];
        memcpy(u, x[i].scales, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
        const uint32_t mins_lo = u[1] & 0x3f3f3f3fu;
        u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
        u[2] = mins_lo;
        u[0] &= 0x3f3f3f3fu;
        uint8_t sc[16];
        memcpy(sc, u, 16);
        /* Σ_j m_j·(bsums[2j] + bsums[2j+1]): pair sums (|.| <= 4096) times mins, exact */
        __m128i bs_lo = _mm_loadu_si128((const __m128i *)y[i].bsums);
        __m128i bs_hi = _mm_loadu_si128((const __m128i *)(y[i].bsums + 8));
        __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sc + 8)));
        __m128i pm = _mm_madd_epi16(mins, _mm_hadd_epi16(bs_lo, bs_hi));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 0x4E));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 0xB1));
        int imin = _mm_cvtsi128_si32(pm);
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            __m256i lo = _mm256_and_si256(q4, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(sc[2 * j]));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(sc[2 * j + 1]));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
        }
        int isum = hsum_epi32(acc);
        const float dy = y[i].d;
        sumf += h2f(x[i].d) * dy * (float)isum - h2f(x[i].dmin) * dy * (float)imin;
    }
    *s = sumf;
}

AVX2 void slm_q6_K_vec_dot_avx2(int n, float *s, const void *vx, const void *vy) {
    const slm_block_q6_K *x = vx;
    const slm_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    int nb = n / SLM_QK_K;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i++) {
        const int8_t *sc = x[i].scales;
        int ioff = 0;
        for (int g = 0; g < 16; g++) ioff += sc[g] * y[i].bsums[g];
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *q8 = y[i].qs + 128 * h;
            __m256i qa = _mm256_loadu_si256((const __m256i *)ql);
            __m256i qb = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hv = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(qa, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(hv, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(qb, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                int g = 8 * h + 2 * k;
                __m256i yv = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yv), scv));
            }
        }
        int isum = hsum_epi32(acc) - 32 * ioff;
        sumf += h2f(x[i].d) * y[i].d * (float)isum;
    }
    *s = sumf;
}

#else /* no x86-64: never selected (slm_cpu_has_avx2 is 0); the references stand in */

void slm_q_f32_vec_dot_avx2(int n, float *s, const void *x, const void *y) { slm_q_f32_vec_dot(n, s, x, y); }
void slm_q_f16_vec_dot_avx2(int n, float *s, const void *x, const void *y) { slm_q_f16_vec_dot(n, s, x, y); }
void slm_q_bf16_vec_dot_avx2(int n, float *s, const void *x, const void *y) { slm_q_bf16_vec_dot(n, s, x, y); }
void slm_q8_0_vec_dot_avx2(int n, float *s, const void *x, const void *y) { slm_q8_0_vec_dot(n, s, x, y); }
void slm_q4_0_vec_dot_avx2(int n, float *s, const void *x, const void *y) { slm_q4_0_vec_dot(n, s, x, y); }
void slm_q4_K_vec_dot_avx2(int n, float *s, const void *x, const void *y) { slm_q4_K_vec_dot(n, s, x, y); }
void slm_q6_K_vec_dot_avx2(int n, float *s, const void *x, const void *y) { slm_q6_K_vec_dot(n, s, x, y); }

#endif
