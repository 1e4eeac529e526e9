/* rng.c: PCG32 (O'Neill 2014) and splitmix64 hashing (see rng.h). */
#include "core/rng.h"

#include <math.h>

void slm_rng_seed(slm_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1u) | 1u;
    slm_rng_u32(r);
    r->state += seed;
    slm_rng_u32(r);
}

uint32_t slm_rng_u32(slm_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

uint32_t slm_rng_below(slm_rng *r, uint32_t n) {
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t x = slm_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

float slm_rng_float(slm_rng *r) { return (float)(slm_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float slm_rng_normal(slm_rng *r) {
    float u1 = slm_rng_float(r), u2 = slm_rng_float(r);
    if (u1 < 1e-12f) u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864f * u2);
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t slm_rng_hash(uint64_t a, uint64_t b, uint64_t c) {
    return splitmix64(splitmix64(splitmix64(a) ^ b) ^ c);
}

void slm_rng_permutation(slm_rng *r, uint32_t *perm, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n; i-- > 1;) {
        uint32_t j = slm_rng_below(r, i + 1);
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}
