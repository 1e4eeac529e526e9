/* gemm_avx2.c: AVX2+FMA+F16C tile kernels of gemm.h for Q8_0 and Q4_0 weights times Q8_0
 * activations, bit-identical to the scalar references in gemm_ref.c.
 *
 * A tile is RM <= 4 weight rows x RN <= 3 tokens: RM·RN f32 accumulators of 8 lanes stay in
 * registers; per block each weight row is loaded and unpacked once (Q8_0: |w| for maddubs; Q4_0:
 * the nibbles) and each activation block once per row, so the unpacking is shared by RN tokens.
 * The integer part per block and lane is exact (see gemm.h: |w|·x pairs <= 2·128·127 for Q8_0,
 * Q4_0 as Σq·x - 8·Σx with q <= 15), then fma(d_w·d_x, partial, acc) per lane.
 * Edge tiles use the same code with smaller RM/RN (compile-time constants through a switch), so
 * each output is computed identically wherever it falls.
 */
#include "quant/gemm.h"

#include "quant/blocks.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

#define RM_MAX 4
#define RN_MAX 3

/* ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)), the order gemm_ref.c's hsum8 spells out */
AVX2_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE void store_tile(int RM, int RN, __m256 acc[RM_MAX][RN_MAX], float *y, size_t ldy,
                            int accumulate) {
    _Pragma("GCC unroll 4")
    for (int t = 0; t < RN; t++)
        _Pragma("GCC unroll 4")
        for (int r = 0; r < RM; r++) {
            float s = hsum8(acc[r][t]);
            float *o = y + (size_t)t * ldy + r;
            *o = accumulate ? *o + s : s;
        }
}

AVX2_INLINE void tile_q8_0(int RM, int RN, int nb, const char *w, size_t ws, const char *x, size_t xs,
                           float *y, size_t ldy, int accumulate) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[RM_MAX][RN_MAX];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < RM; r++)
        _Pragma("GCC unroll 4")
        for (int t = 0; t < RN; t++) acc[r][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256 dx[RN_MAX];
        _Pragma("GCC unroll 4")
        for (int t = 0; t < RN; t++)
            dx[t] = _mm256_set1_ps(_cvtsh_ss(((const slm_block_q8_0 *)(x + (size_t)t * xs))[b].d));
        _Pragma("GCC unroll 4")
        for (int r = 0; r < RM; r++) {
            const slm_block_q8_0 *wb = (const slm_block_q8_0 *)(w + (size_t)r * ws) + b;
            __m256i wv = _mm256_loadu_si256((const __m256i *)wb->qs);
            __m256i aw = _mm256_abs_epi8(wv);
            __m256 dw = _mm256_set1_ps(_cvtsh_ss(wb->d));
            _Pragma("GCC unroll 4")
            for (int t = 0; t < RN; t++) {
                const slm_block_q8_0 *xb = (const slm_block_q8_0 *)(x + (size_t)t * xs) + b;
                __m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv)), ones);
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[t]), _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
    store_tile(RM, RN, acc, y, ldy, accumulate);
}

AVX2_INLINE void tile_q4_0(int RM, int RN, int nb, const char *w, size_t ws, const char *x, size_t xs,
                           float *y, size_t ldy, int accumulate) {
    const __m256i ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m256 acc[RM_MAX][RN_MAX];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < RM; r++)
        _Pragma("GCC unroll 4")
        for (int t = 0; t < RN; t++) acc[r][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256 dx[RN_MAX];
        __m256i s8[RN_MAX]; /* 8·x pair sums (int16), shared by the rows */
        _Pragma("GCC unroll 4")
        for (int t = 0; t < RN; t++) {
            const slm_block_q8_0 *xb = (const slm_block_q8_0 *)(x + (size_t)t * xs) + b;
            dx[t] = _mm256_set1_ps(_cvtsh_ss(xb->d));
            s8[t] = _mm256_maddubs_epi16(eight, _mm256_loadu_si256((const __m256i *)xb->qs));
        }
        _Pragma("GCC unroll 4")
        for (int r = 0; r < RM; r++) {
            const slm_block_q4_0 *wb = (const slm_block_q4_0 *)(w + (size_t)r * ws) + b;
            __m128i qb = _mm_loadu_si128((const __m128i *)wb->qs);
            __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qb, 4), m4), _mm_and_si128(qb, m4));
            __m256 dw = _mm256_set1_ps(_cvtsh_ss(wb->d));
            _Pragma("GCC unroll 4")
            for (int t = 0; t < RN; t++) {
                const slm_block_q8_0 *xb = (const slm_block_q8_0 *)(x + (size_t)t * xs) + b;
                __m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);
                __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), s8[t]);
                __m256i p = _mm256_madd_epi16(p16, ones);
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[t]), _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
    store_tile(RM, RN, acc, y, ldy, accumulate);
}

/* One function per (type, RM, RN) so each tile is compiled with constant bounds. */
#define TILE_FN(kind, RM, RN)                                                                       \
    AVX2 static void kind##_##RM##x##RN(int nb, const char *w, size_t ws, const char *x, size_t xs, \
                                        float *y, size_t ldy, int accumulate) {                     \
        tile_##kind(RM, RN, nb, w, ws, x, xs, y, ldy, accumulate);                                  \
    }
#define TILE_FNS(kind)                                                                              \
    TILE_FN(kind, 1, 1) TILE_FN(kind, 1, 2) TILE_FN(kind, 1, 3) TILE_FN(kind, 2, 1)                 \
    TILE_FN(kind, 2, 2) TILE_FN(kind, 2, 3) TILE_FN(kind, 3, 1) TILE_FN(kind, 3, 2)                 \
    TILE_FN(kind, 3, 3) TILE_FN(kind, 4, 1) TILE_FN(kind, 4, 2) TILE_FN(kind, 4, 3)
TILE_FNS(q8_0)
TILE_FNS(q4_0)

typedef void (*tile_fn)(int nb, const char *w, size_t ws, const char *x, size_t xs, float *y,
                        size_t ldy, int accumulate);
static const tile_fn q8_0_tiles[RM_MAX][RN_MAX] = {
    {q8_0_1x1, q8_0_1x2, q8_0_1x3}, {q8_0_2x1, q8_0_2x2, q8_0_2x3},
    {q8_0_3x1, q8_0_3x2, q8_0_3x3}, {q8_0_4x1, q8_0_4x2, q8_0_4x3}};
static const tile_fn q4_0_tiles[RM_MAX][RN_MAX] = {
    {q4_0_1x1, q4_0_1x2, q4_0_1x3}, {q4_0_2x1, q4_0_2x2, q4_0_2x3},
    {q4_0_3x1, q4_0_3x2, q4_0_3x3}, {q4_0_4x1, q4_0_4x2, q4_0_4x3}};

/* Rows in blocks of 4 (outer: 4 weight rows stay in L1), tokens in blocks of 3 (inner). */
static void run_tiles(const tile_fn tiles[RM_MAX][RN_MAX], int cols, int nr, int nt, const void *w,
                      size_t ws, const void *x, size_t xs, float *y, size_t ldy, int accumulate) {
    int nb = cols / 32;
    for (int r0 = 0; r0 < nr; r0 += RM_MAX) {
        int rm = nr - r0 < RM_MAX ? nr - r0 : RM_MAX;
        for (int t0 = 0; t0 < nt; t0 += RN_MAX) {
            int rn = nt - t0 < RN_MAX ? nt - t0 : RN_MAX;
            tiles[rm - 1][rn - 1](nb, (const char *)w + (size_t)r0 * ws, ws,
                                  (const char *)x + (size_t)t0 * xs, xs, y + (size_t)t0 * ldy + r0, ldy,
                                  accumulate);
        }
    }
}

void slm_qgemm_q8_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate) {
    run_tiles(q8_0_tiles, cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
}

void slm_qgemm_q4_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate) {
    run_tiles(q4_0_tiles, cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
}

#else /* no x86-64: never selected (slm_cpu_has_avx2 is 0); the references stand in */

void slm_qgemm_q8_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate) {
    slm_qgemm_q8_0_ref(cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
}
void slm_qgemm_q4_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate) {
    slm_qgemm_q4_0_ref(cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
}

#endif
