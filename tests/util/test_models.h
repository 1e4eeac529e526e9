/* test_models.h: model helpers the model tests share (random weights; SentencePiece piece text). */
#ifndef SLM_TESTS_TEST_MODELS_H
#define SLM_TESTS_TEST_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* A model of shape cfg with seeded normal weights: norms 1 + 0.2 z, the token embedding (tensor
 * 0) z, every other matrix weight_scale * z. Fails the test when allocation fails. */
slm_model *tu_rand_model(const slm_model_config *cfg, uint64_t seed, float weight_scale);

/* Appends the text of one SentencePiece piece to out[0..len) (cap bytes, one kept for a NUL):
 * U+2581 is a space, <0xNN> a byte. Returns the new length. */
size_t tu_append_spm_piece(char *out, size_t len, size_t cap, const char *p, size_t n);

#endif
