/* gemm_avx2.c: AVX2+FMA+F16C tile kernels of gemm.h for Q8_0 and Q4_0 weights times Q8_0
 * activations, bit-identical to the scalar references in gemm_ref.c.
 *
 * A tile is RM <= 4 weight rows x RN <= 3 tokens (4 with AVX-512 VNNI, chosen at run time): RM·RN f32 accumulators of 8 lanes stay in
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
#define RN_MAX 4 /* array bound; AVX2 tiles use up to 3 tokens, AVX-512 ones 4 */

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

/* The tile bodies, instantiated once per instruction set: SFX names them, ATTR_INLINE carries
 * the target, DOT_U8S8(u, s) is the exact int32 lane sum of 4 u8·s8 products, */
#define TILE_BODIES(SFX) \
ATTR_INLINE void tile_q8_0_##SFX(int RM, int RN, int nb, const char *w, size_t ws, const char *x, size_t xs, \
                           float *y, size_t ldy, int accumulate) { \
    __m256 acc[RM_MAX][RN_MAX]; \
    _Pragma("GCC unroll 4") \
    for (int r = 0; r < RM; r++) \
        _Pragma("GCC unroll 4") \
        for (int t = 0; t < RN; t++) acc[r][t] = _mm256_setzero_ps(); \
    for (int b = 0; b < nb; b++) { \
        __m256 dx[RN_MAX]; \
        _Pragma("GCC unroll 4") \
        for (int t = 0; t < RN; t++) \
            dx[t] = _mm256_set1_ps(_cvtsh_ss(((const slm_block_q8_0 *)(x + (size_t)t * xs))[b].d)); \
        _Pragma("GCC unroll 4") \
        for (int r = 0; r < RM; r++) { \
            const slm_block_q8_0 *wb = (const slm_block_q8_0 *)(w + (size_t)r * ws) + b; \
            __m256i wv = _mm256_loadu_si256((const __m256i *)wb->qs); \
            __m256i aw = _mm256_abs_epi8(wv); \
            __m256 dw = _mm256_set1_ps(_cvtsh_ss(wb->d)); \
            _Pragma("GCC unroll 4") \
            for (int t = 0; t < RN; t++) { \
                const slm_block_q8_0 *xb = (const slm_block_q8_0 *)(x + (size_t)t * xs) + b; \
                __m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs); \
                __m256i p = DOT_U8S8(aw, _mm256_sign_epi8(xv, wv)); \
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[t]), _mm256_cvtepi32_ps(p), acc[r][t]); \
            } \
        } \
    } \
    store_tile(RM, RN, acc, y, ldy, accumulate); \
} \
ATTR_INLINE void tile_q4_0_##SFX(int RM, int RN, int nb, const char *w, size_t ws, const char *x, size_t xs, \
                           float *y, size_t ldy, int accumulate) { \
    const __m256i eight = _mm256_set1_epi8(8); \
    const __m128i m4 = _mm_set1_epi8(0x0F); \
    __m256 acc[RM_MAX][RN_MAX]; \
    _Pragma("GCC unroll 4") \
    for (int r = 0; r < RM; r++) \
        _Pragma("GCC unroll 4") \
        for (int t = 0; t < RN; t++) acc[r][t] = _mm256_setzero_ps(); \
    for (int b = 0; b < nb; b++) { \
        __m256 dx[RN_MAX]; \
        __m256i s8[RN_MAX]; /* 8·Σx per lane (int32), shared by the rows */ \
        _Pragma("GCC unroll 4") \
        for (int t = 0; t < RN; t++) { \
            const slm_block_q8_0 *xb = (const slm_block_q8_0 *)(x + (size_t)t * xs) + b; \
            dx[t] = _mm256_set1_ps(_cvtsh_ss(xb->d)); \
            s8[t] = DOT_U8S8(eight, _mm256_loadu_si256((const __m256i *)xb->qs)); \
        } \
        _Pragma("GCC unroll 4") \
        for (int r = 0; r < RM; r++) { \
            const slm_block_q4_0 *wb = (const slm_block_q4_0 *)(w + (size_t)r * ws) + b; \
            __m128i qb = _mm_loadu_si128((const __m128i *)wb->qs); \
            __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qb, 4), m4), _mm_and_si128(qb, m4)); \
            __m256 dw = _mm256_set1_ps(_cvtsh_ss(wb->d)); \
            _Pragma("GCC unroll 4") \
            for (int t = 0; t < RN; t++) { \
                const slm_block_q8_0 *xb = (const slm_block_q8_0 *)(x + (size_t)t * xs) + b; \
                __m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs); \
                __m256i p = _mm256_sub_epi32(DOT_U8S8(q, xv), s8[t]); \
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[t]), _mm256_cvtepi32_ps(p), acc[r][t]); \
            } \
        } \
    } \
    store_tile(RM, RN, acc, y, ldy, accumulate); \
}

#define ATTR_INLINE AVX2_INLINE
#define DOT_U8S8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
TILE_BODIES(avx2)
#undef ATTR_INLINE
#undef DOT_U8S8

/* AVX-512 VL + VNNI: 32 vector registers (4x4 tiles) and vpdpbusd (u8·s8 summed by 4 into
 * int32, no saturation): the same exact lane sums in one instruction. */
#define V512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define ATTR_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
TILE_BODIES(vnni)
#undef ATTR_INLINE
#undef DOT_U8S8

/* One function per (type, RM, RN) so each tile is compiled with constant bounds. */
#define TILE_FN(kind, isa, ATTR, RM, RN)                                                          \
    ATTR static void kind##_##isa##_##RM##x##RN(int nb, const char *w, size_t ws, const char *x,     \
                                                size_t xs, float *y, size_t ldy, int accumulate) {   \
        tile_##kind##_##isa(RM, RN, nb, w, ws, x, xs, y, ldy, accumulate);                           \
    }
#define TILE_ROW(kind, isa, ATTR, RM)                                                               \
    TILE_FN(kind, isa, ATTR, RM, 1) TILE_FN(kind, isa, ATTR, RM, 2) TILE_FN(kind, isa, ATTR, RM, 3) \
    TILE_FN(kind, isa, ATTR, RM, 4)
#define TILE_FNS(kind, isa, ATTR)                                                                   \
    TILE_ROW(kind, isa, ATTR, 1) TILE_ROW(kind, isa, ATTR, 2) TILE_ROW(kind, isa, ATTR, 3)          \
    TILE_ROW(kind, isa, ATTR, 4)
TILE_FNS(q8_0, avx2, AVX2)
TILE_FNS(q4_0, avx2, AVX2)
TILE_FNS(q8_0, vnni, V512)
TILE_FNS(q4_0, vnni, V512)

typedef void (*tile_fn)(int nb, const char *w, size_t ws, const char *x, size_t xs, float *y,
                        size_t ldy, int accumulate);
#define TILE_TABLE(kind, isa)                                                                       \
    static const tile_fn kind##_##isa##_tiles[RM_MAX][RN_MAX] = {                                   \
        {kind##_##isa##_1x1, kind##_##isa##_1x2, kind##_##isa##_1x3, kind##_##isa##_1x4},           \
        {kind##_##isa##_2x1, kind##_##isa##_2x2, kind##_##isa##_2x3, kind##_##isa##_2x4},           \
        {kind##_##isa##_3x1, kind##_##isa##_3x2, kind##_##isa##_3x3, kind##_##isa##_3x4},           \
        {kind##_##isa##_4x1, kind##_##isa##_4x2, kind##_##isa##_4x3, kind##_##isa##_4x4}};
TILE_TABLE(q8_0, avx2)
TILE_TABLE(q4_0, avx2)
TILE_TABLE(q8_0, vnni)
TILE_TABLE(q4_0, vnni)

static int has_vnni512(void) {
    return __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}

/* Rows in blocks of 4 (outer: 4 weight rows stay in L1), tokens in blocks of 3 (inner). */
static void run_tiles(const tile_fn tiles[RM_MAX][RN_MAX], int rn_max, int cols, int nr, int nt,
                      const void *w, size_t ws, const void *x, size_t xs, float *y, size_t ldy,
                      int accumulate) {
    int nb = cols / 32;
    for (int r0 = 0; r0 < nr; r0 += RM_MAX) {
        int rm = nr - r0 < RM_MAX ? nr - r0 : RM_MAX;
        for (int t0 = 0; t0 < nt; t0 += rn_max) {
            int rn = nt - t0 < rn_max ? nt - t0 : rn_max;
            tiles[rm - 1][rn - 1](nb, (const char *)w + (size_t)r0 * ws, ws,
                                  (const char *)x + (size_t)t0 * xs, xs, y + (size_t)t0 * ldy + r0, ldy,
                                  accumulate);
        }
    }
}

void slm_qgemm_q8_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate) {
    if (has_vnni512())
        run_tiles(q8_0_vnni_tiles, 4, cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
    else
        run_tiles(q8_0_avx2_tiles, 3, cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
}

void slm_qgemm_q4_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate) {
    if (has_vnni512())
        run_tiles(q4_0_vnni_tiles, 4, cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
    else
        run_tiles(q4_0_avx2_tiles, 3, cols, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
}

/* Q8_0 quantization of activations, the bytes of slm_q8_0_from_float (q8_0.c) for finite input:
 * amax by max (order-free), d = amax/127 and id = 1/d as there, x·id rounded half away from zero
 * as roundf does (trunc, then +1 when the remainder is >= 0.5: exact for |v| < 2^23). */
AVX2 void slm_quantize_q8_0_avx2(const float *x, void *vy, int64_t n) {
    slm_block_q8_0 *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n / SLM_QK8_0; i++) {
        const float *xb = x + i * SLM_QK8_0;
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = slm_q_fp32_to_fp16(d);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 s = _mm256_mul_ps(v[k], _mm256_set1_ps(id));
            __m256 a = _mm256_andnot_ps(sign, s);
            __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            t = _mm256_add_ps(t, _mm256_and_ps(one, _mm256_cmp_ps(_mm256_sub_ps(a, t), half, _CMP_GE_OQ)));
            t = _mm256_or_ps(t, _mm256_and_ps(sign, s));
            q[k] = _mm256_cvttps_epi32(t);
        }
        __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i b = _mm256_packs_epi16(p01, p23);
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[i].qs, b);
    }
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

void slm_quantize_q8_0_avx2(const float *x, void *y, int64_t n) { slm_q8_0_from_float(x, y, n); }

#endif
