/* special.c: encoding with special-token text parsed (slm_tokenizer_encode_special), for prompts
 * a chat template rendered: "<|im_start|>" must reach the model as its control token.
 *
 * As llama.cpp's tokenizer_st_partition with parse_special: the text is cut at every occurrence
 * of a CONTROL or USER_DEFINED token's text (at each place the longest one that matches, scanning
 * left to right); those become their tokens, the text between is encoded as usual. A
 * SentencePiece fragment gets the "▁" prefix when it starts the text or follows a special token
 * (llama.cpp's is_prev_special). Kept apart from the ordinary encoder so that ordinary text can
 * never turn into a control token.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static int is_special(const slm_tokenizer *t, int32_t id) {
    int ty = t->type[id];
    return (ty == SLM_TOKEN_CONTROL || ty == SLM_TOKEN_USER_DEFINED) &&
           t->text_off[id + 1] > t->text_off[id];
}

/* The special token whose text is longest at text[pos..len), or -1. */
static int32_t match_at(const slm_tokenizer *t, const int32_t *sp, size_t n_sp, const char *text,
                        size_t pos, size_t len, size_t *mlen) {
    int32_t best = -1;
    size_t best_n = 0;
    for (size_t i = 0; i < n_sp; i++) {
        const char *s = t->text + t->text_off[sp[i]];
        size_t n = (size_t)(t->text_off[sp[i] + 1] - t->text_off[sp[i]]);
        if (n > best_n && n <= len - pos && s[0] == text[pos] && !memcmp(s, text + pos, n)) {
            best = sp[i];
            best_n = n;
        }
    }
    *mlen = best_n;
    return best;
}

/* Encodes one fragment of ordinary text and appends its ids. */
static slm_status encode_fragment(const slm_tokenizer *t, const char *text, size_t len, int prefix,
                                  slm_tok_ids *out, slm_err *err) {
    int32_t *ids;
    size_t n;
    slm_status st = t->kind == SLM_TOK_KIND_SPM
                        ? slm_tok_spm_encode_ex(t, text, len, 0, prefix && t->add_space_prefix, &ids,
                                                &n, err)
                        : slm_tokenizer_encode(t, text, len, 0, &ids, &n, err);
    if (st != SLM_OK) return st;
    for (size_t i = 0; i < n && st == SLM_OK; i++) st = slm_tok_ids_push(out, ids[i]);
    free(ids);
    if (st != SLM_OK) return slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory");
    return SLM_OK;
}

slm_status slm_tokenizer_encode_special(const slm_tokenizer *t, const char *text, size_t len,
                                        int add_bos, int32_t **ids, size_t *n_ids, slm_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return slm_err_set(err, SLM_ERR_ARG, "tokenizer: encode of NULL text");
    size_t n_sp = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) n_sp += (size_t)is_special(t, i);
    int32_t *sp = malloc((n_sp ? n_sp : 1) * sizeof *sp);
    slm_tok_ids out = {0};
    slm_status st = SLM_OK;
    if (!sp) return slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory");
    n_sp = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (is_special(t, i)) sp[n_sp++] = i;
    if (add_bos && t->bos >= 0) st = slm_tok_ids_push(&out, t->bos);
    size_t start = 0, pos = 0;
    int prev_special = 1;
    while (st == SLM_OK && pos < len) {
        size_t mlen;
        int32_t id = match_at(t, sp, n_sp, text, pos, len, &mlen);
        if (id < 0) {
            pos++;
            continue;
        }
        if (pos > start) st = encode_fragment(t, text + start, pos - start, prev_special, &out, err);
        if (st == SLM_OK) st = slm_tok_ids_push(&out, id);
        prev_special = 1;
        pos += mlen;
        start = pos;
    }
    if (st == SLM_OK && len > start)
        st = encode_fragment(t, text + start, len - start, prev_special, &out, err);
    free(sp);
    if (st == SLM_OK && !out.v) {
        out.v = malloc(sizeof *out.v);
        if (!out.v) st = SLM_ERR_NOMEM;
    }
    if (st != SLM_OK) {
        free(out.v);
        if (st == SLM_ERR_NOMEM) slm_err_set(err, st, "tokenizer: out of memory encoding %zu bytes", len);
        return st;
    }
    *ids = out.v;
    *n_ids = out.n;
    return SLM_OK;
}
