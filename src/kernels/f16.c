/* f16.c: IEEE 754 half precision <-> single precision: the bit-by-bit scalar reference, and row
 * conversions with an AVX2+F16C variant (vcvtph2ps / vcvtps2ph) chosen at run time by CPU.
 *
 * Used when loading F16 GGUF tensors (converted once at load), by the F16 KV cache (rows written
 * as halves, read back a tile at a time by model/attention.c) and by tests. The scalar functions
 * are the specification: both conversions round to nearest even and keep subnormals, inf and NaN
 * (made quiet, payload kept or truncated), exactly as F16C does under the default MXCSR, so the two
 * variants agree bit for bit (tests/test_kv_cache.c checks every half and many floats).
 */
#include "kernels/kernels.h"

#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define SLM_F16C 1
#endif

float slm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
        }
    } else if (exp == 0x1F) {
        /* inf, or NaN made quiet with its payload kept (as vcvtph2ps does) */
        bits = sign | 0x7F800000u | (man << 13) | (man ? 0x400000u : 0);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t slm_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xFFu;
    uint32_t man = x & 0x7FFFFFu;
    if (exp == 0xFF) return sign | 0x7C00u | (man ? 0x200u | (uint16_t)(man >> 13) : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 0x1F) return sign | 0x7C00u; /* overflow: inf */
    if (e <= 0) {                          /* subnormal half or zero */
        if (e < -10) return sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1))) h++;
        return sign | (uint16_t)h;
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into exp: correct */
    return sign | (uint16_t)h;
}

void slm_f16_to_f32_row_ref(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = slm_f16_to_f32(src[i]);
}

void slm_f32_to_f16_row_ref(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = slm_f32_to_f16(src[i]);
}

#ifdef SLM_F16C
__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = slm_f16_to_f32(src[i]);
}

__attribute__((target("avx2,f16c"))) static void f32_to_f16_f16c(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = slm_f32_to_f16(src[i]);
}

__attribute__((target("avx2,f16c"))) static void f16_to_f32_rows_f16c(float *dst, size_t ldd, const uint16_t *src,
                                                                       size_t lds, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) f16_to_f32_f16c(dst + r * ldd, src + r * lds, cols);
}

int slm_f16_simd_available(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
}
#else
int slm_f16_simd_available(void) { return 0; }
#endif

void slm_f16_to_f32_row(float *dst, const uint16_t *src, size_t n) {
#ifdef SLM_F16C
    if (slm_f16_simd_available()) {
        f16_to_f32_f16c(dst, src, n);
        return;
    }
#endif
    slm_f16_to_f32_row_ref(dst, src, n);
}

void slm_f32_to_f16_row(uint16_t *dst, const float *src, size_t n) {
#ifdef SLM_F16C
    if (slm_f16_simd_available()) {
        f32_to_f16_f16c(dst, src, n);
        return;
    }
#endif
    slm_f32_to_f16_row_ref(dst, src, n);
}

void slm_f16_to_f32_rows(float *dst, size_t ldd, const uint16_t *src, size_t lds, size_t rows, size_t cols) {
#ifdef SLM_F16C
    if (slm_f16_simd_available()) {
        f16_to_f32_rows_f16c(dst, ldd, src, lds, rows, cols);
        return;
    }
#endif
    for (size_t r = 0; r < rows; r++) slm_f16_to_f32_row_ref(dst + r * ldd, src + r * lds, cols);
}
