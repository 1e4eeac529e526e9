/* test_models.h: model helpers the model tests share (random weights; SentencePiece piece text). */
#ifndef SLM_TESTS_TEST_MODELS_H
#define SLM_TESTS_TEST_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "model/model.h"

/* A model of shape cfg with seeded normal weights: norms 1 + 0.2 z, the token embedding (tensor
 * 0) z, every other matrix weight_scale * z. Fails the test when allocation fails. */
slm_model *tu_rand_model(const slm_model_config *cfg, uint64_t seed, float weight_scale);

/* Appends the text of one SentencePiece piece to out[0..len) (cap bytes, one kept for a NUL):
 * U+2581 is a space, <0xNN> a byte. Returns the new length. */
size_t tu_append_spm_piece(char *out, size_t len, size_t cap, const char *p, size_t n);

/* The classify-path gradient checks' batch: three examples of 4, 2 and 5 random tokens (ids below
 * 24) back to back, each its own sequence, labels (e + 1) % 3. Returns the tokens (11). */
int tu_three_examples(slm_rng *r, int32_t *tok, int32_t *pos, int32_t *seq, int32_t *start, int32_t *len,
                      int32_t *y);

#endif
