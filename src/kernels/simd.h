/* simd.h: private to src/kernels — how the plain-C kernels become SIMD code, and a vectorisable exp.
 *
 * Kernel files include this first. On GCC for x86-64 it
 *  - lets the vectoriser work at -O2 (dynamic cost model; no-trapping-math so the comparisons of a
 *    clamp can become blends; neither changes any computed value: no reassociation, no fast-math,
 *    and ISO C mode keeps contraction off, so every variant rounds exactly like the scalar code);
 *  - defines SLM_SIMD_CLONES, which compiles a hot loop twice, for x86-64-v3 (AVX2) and for the
 *    baseline, and lets the loader pick by CPU (GCC target_clones, an ifunc): the scalar C is the
 *    specification and the AVX2 build of the same C is the fast variant, chosen at start-up.
 * Elsewhere both are no-ops and the code is simply scalar.
 */
#ifndef SLM_KERNELS_SIMD_H
#define SLM_KERNELS_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#pragma GCC optimize("no-trapping-math", "vect-cost-model=dynamic")
#define SLM_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SLM_SIMD_CLONES
#endif

/* Helpers called from a cloned function must be inlined into each clone to get its instruction
 * set (an out-of-line copy would be compiled for the baseline only). */
#if defined(__GNUC__)
#define SLM_INLINE static inline __attribute__((always_inline))
#else
#define SLM_INLINE static inline
#endif

/* exp(x) by range reduction x = k·ln2 + r, |r| <= ln2/2, and a degree-6 polynomial for exp(r)
 * (Cephes' coefficients); 2^k is put into the exponent bits. Max relative error ~1.2e-7 on
 * [-87, 88]; inputs outside are clamped (exp(-87) ~ 1.6e-38, exp(88) ~ 1.7e38). NaN in gives
 * an unspecified finite value: callers feed finite numbers. */
SLM_INLINE float slm_expf_poly(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    float kf = x * 1.44269504088896341f + magic;
    int32_t ki;
    memcpy(&ki, &kf, sizeof ki);
    ki -= 0x4B400000;
    kf -= magic;
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &p, sizeof bits);
    bits += (int32_t)((uint32_t)ki << 23);
    memcpy(&p, &bits, sizeof p);
    return p;
}

#endif
