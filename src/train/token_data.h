/* token_data.h: a text corpus as token ids, split into training and validation parts, and the
 * deterministic choice of training windows.
 *
 * The text is split by bytes at a line boundary (the last val_frac of it is validation), then each
 * part is encoded on its own, so validation bits per byte are exact: tokens partition the bytes.
 * Every window starts with the document token (BOS) and predicts the T tokens that follow it, so
 * the model learns to continue from BOS, which is how generation starts.
 * Window starts come from a hash of (seed, step, index): a resumed run draws the very windows the
 * uninterrupted run would have drawn, with no sampler state to save.
 */
#ifndef SLM_TRAIN_TOKEN_DATA_H
#define SLM_TRAIN_TOKEN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int32_t *train;        /* (n_train) */
    size_t n_train;
    int32_t *val;          /* (n_val) */
    size_t n_val;
    size_t train_bytes, val_bytes;
    int32_t bos;           /* the token that starts every window */
    uint64_t fingerprint;  /* a hash of every token, to check a resume uses the same data */
} slm_token_data;

/* Encodes text[0..len) with tok. val_frac in [0, 0.5]: the last share of the text (cut at a line
 * start) is validation. Errors: the tokenizer has neither BOS nor EOS; too little text. */
slm_status slm_token_data_build(const slm_tokenizer *tok, const char *text, size_t len,
                                double val_frac, slm_token_data *d, slm_err *err);
void slm_token_data_free(slm_token_data *d);

/* Fills inputs and targets (both (B, T)) for micro-batch `micro` of optimizer step `step`:
 * inputs[b] = [bos, x_s .. x_{s+T-2}], targets[b] = [x_s .. x_{s+T-1}] with s hash-chosen. */
void slm_token_data_train_batch(const slm_token_data *d, uint64_t seed, int64_t step, int micro,
                                int B, int T, int32_t *inputs, int32_t *targets);

/* Number of validation windows of T targets (the last one may be partial). */
size_t slm_token_data_val_windows(const slm_token_data *d, int T);
/* Fills one validation window: inputs [bos, v...], targets v[w*T ..], -1 past the end.
 * Returns the number of counted targets. */
int slm_token_data_val_window(const slm_token_data *d, size_t w, int T, int32_t *inputs,
                              int32_t *targets);

#endif
