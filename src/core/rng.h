/* rng.h: a small, seedable, reproducible random number generator (PCG32).
 *
 * Every random choice in slm (weight init, data sampling, dropout, token sampling) draws from an
 * slm_rng that the caller owns, so runs are reproducible from --seed and two models in one process
 * never share state. slm_rng_hash derives independent streams from (seed, step, index) so that a
 * resumed training run draws exactly the samples the uninterrupted run would have drawn.
 */
#ifndef SLM_CORE_RNG_H
#define SLM_CORE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
    uint64_t inc;
} slm_rng;

void slm_rng_seed(slm_rng *r, uint64_t seed, uint64_t stream);
uint32_t slm_rng_u32(slm_rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint32_t slm_rng_below(slm_rng *r, uint32_t n);
/* Uniform in [0, 1). */
float slm_rng_float(slm_rng *r);
/* Standard normal (Box-Muller). */
float slm_rng_normal(slm_rng *r);
/* perm[0..n) = a uniformly random permutation of 0..n-1 (Fisher-Yates from the end). */
void slm_rng_permutation(slm_rng *r, uint32_t *perm, uint32_t n);
/* A well-mixed 64-bit hash of three integers (splitmix64 rounds). */
uint64_t slm_rng_hash(uint64_t a, uint64_t b, uint64_t c);

#endif
