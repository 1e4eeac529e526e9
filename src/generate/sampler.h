/* sampler.h: choosing the next token from logits — greedy, temperature, top-k, top-p (nucleus),
 * repetition penalty — reproducibly from a seed.
 *
 * Order of operations (as llama.cpp's default chain): repetition penalty on the last
 * repeat_last_n tokens (positive logits divided, negative multiplied), then temperature 0 means
 * greedy (argmax, ties to the lowest id); otherwise top-k, softmax at the temperature, top-p, and
 * a draw from the renormalised distribution.
 */
#ifndef SLM_GENERATE_SAMPLER_H
#define SLM_GENERATE_SAMPLER_H

#include <stdint.h>

#include "core/error.h"

typedef struct {
    float temperature;    /* 0: greedy */
    int top_k;            /* 0: all tokens */
    float top_p;          /* 1: all tokens */
    float repeat_penalty; /* 1: none */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;
} slm_sampler_params;

/* temperature 0.8, top_k 40, top_p 0.95, repeat_penalty 1.0 (off), last 64, seed 1. */
void slm_sampler_params_default(slm_sampler_params *p);

typedef struct slm_sampler slm_sampler;

slm_sampler *slm_sampler_new(const slm_sampler_params *p, int n_vocab, slm_err *err);
void slm_sampler_free(slm_sampler *s);
/* Picks a token from logits (n_vocab floats; not modified). */
int32_t slm_sampler_sample(slm_sampler *s, const float *logits);
/* Records a token as generated or prompted (for the repetition penalty). */
void slm_sampler_accept(slm_sampler *s, int32_t token);

#endif
