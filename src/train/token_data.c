/* token_data.c: corpus encoding, train/validation split, window sampling (see token_data.h). */
#include "train/token_data.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

slm_status slm_token_data_build(const slm_tokenizer *tok, const char *text, size_t len,
                                double val_frac, slm_token_data *d, slm_err *err) {
    memset(d, 0, sizeof *d);
    if (!(val_frac >= 0.0 && val_frac <= 0.5))
        return slm_err_set(err, SLM_ERR_ARG, "validation share %g is outside [0, 0.5]", val_frac);
    d->bos = slm_tokenizer_bos(tok);
    if (d->bos < 0) d->bos = slm_tokenizer_eos(tok);
    if (d->bos < 0)
        return slm_err_set(err, SLM_ERR_ARG,
                           "the tokenizer has neither a BOS nor an EOS token to start windows with");

    size_t cut = len;
    if (val_frac > 0) {
        cut = (size_t)((double)len * (1.0 - val_frac));
        while (cut > 0 && text[cut - 1] != '\n') cut--; /* validation starts at a line start */
        if (cut == 0) cut = (size_t)((double)len * (1.0 - val_frac));
    }
    slm_status s = slm_tokenizer_encode(tok, text, cut, 0, &d->train, &d->n_train, err);
    if (s != SLM_OK) return slm_err_prefix(err, "encoding the training text");
    s = slm_tokenizer_encode(tok, text + cut, len - cut, 0, &d->val, &d->n_val, err);
    if (s != SLM_OK) {
        slm_token_data_free(d);
        return slm_err_prefix(err, "encoding the validation text");
    }
    d->train_bytes = cut;
    d->val_bytes = len - cut;
    uint64_t h = slm_rng_hash(d->n_train, d->n_val, 0);
    for (size_t i = 0; i < d->n_train; i++) h = slm_rng_hash(h, (uint32_t)d->train[i], i);
    for (size_t i = 0; i < d->n_val; i++) h = slm_rng_hash(h, (uint32_t)d->val[i], ~i);
    d->fingerprint = h;
    return SLM_OK;
}

void slm_token_data_free(slm_token_data *d) {
    free(d->train);
    free(d->val);
    memset(d, 0, sizeof *d);
}

void slm_token_data_train_batch(const slm_token_data *d, uint64_t seed, int64_t step, int micro,
                                int B, int T, int32_t *inputs, int32_t *targets) {
    size_t n = d->n_train;
    for (int b = 0; b < B; b++) {
        int32_t *in = inputs + (size_t)b * T, *tg = targets + (size_t)b * T;
        size_t span = n > (size_t)T ? n - (size_t)T + 1 : 1;
        uint64_t h = slm_rng_hash(seed, (uint64_t)step, (uint64_t)micro * 1000003u + (uint64_t)b);
        size_t s = (size_t)(h % span);
        in[0] = d->bos;
        for (int t = 0; t < T; t++) {
            size_t i = s + (size_t)t;
            tg[t] = i < n ? d->train[i] : -1; /* only a corpus shorter than T runs out */
            if (t + 1 < T) in[t + 1] = i < n ? d->train[i] : d->bos;
        }
    }
}

size_t slm_token_data_val_windows(const slm_token_data *d, int T) {
    return (d->n_val + (size_t)T - 1) / (size_t)T;
}

int slm_token_data_val_window(const slm_token_data *d, size_t w, int T, int32_t *inputs,
                              int32_t *targets) {
    size_t s = w * (size_t)T;
    int counted = 0;
    inputs[0] = d->bos;
    for (int t = 0; t < T; t++) {
        size_t i = s + (size_t)t;
        targets[t] = i < d->n_val ? d->val[i] : -1;
        counted += i < d->n_val;
        if (t + 1 < T) inputs[t + 1] = i < d->n_val ? d->val[i] : d->bos;
    }
    return counted;
}
