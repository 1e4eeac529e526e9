/* vocab.c: the tokenizer object — built from its stored form (token texts, types, merges), the
 * lookup tables BPE needs, the accessors, decoding, and freeing.
 *
 * Both ways to get a tokenizer end here: loading from GGUF passes the file's arrays, training
 * passes the vocabulary it learned written out in the same form. So a trained tokenizer and the
 * same tokenizer saved and loaded again are built by identical code and encode identically.
 *
 * Merges are keyed by the raw bytes of their two sides (see tokenizer_internal.h), exactly as
 * llama.cpp keys them by text: its BPE merges strings, so a merge fires whenever its two strings
 * are adjacent, whichever merges built them. Interning every string as a symbol id gives the same
 * behaviour with integer pairs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

uint64_t slm_tok_hash_bytes(const void *p, size_t n) {
    /* FNV-1a, then a final mix so the low bits are usable for power-of-two tables */
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return slm_tok_hash_u64(h);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* ---- symbols: raw byte strings interned as ids ---- */

static int32_t str_find(const slm_tokenizer *t, const char *raw, size_t n, size_t *slot) {
    size_t mask = t->str_cap - 1;
    size_t i = (size_t)slm_tok_hash_bytes(raw, n) & mask;
    for (;; i = (i + 1) & mask) {
        int32_t id = t->str_slots[i];
        if (id < 0) break;
        if (t->raw_n[id] == n && !memcmp(t->raw + t->raw_off[id], raw, n)) {
            *slot = i;
            return id;
        }
    }
    *slot = i;
    return -1;
}

int32_t slm_tok_sym_find(const slm_tokenizer *t, const char *raw, size_t n) {
    size_t slot;
    return t->str_slots ? str_find(t, raw, n, &slot) : -1;
}

static slm_status raw_append(slm_tokenizer *t, const char *raw, size_t n, uint64_t *off) {
    if (t->raw_len + n > t->raw_cap) {
        size_t cap = t->raw_cap ? t->raw_cap : 4096;
        while (cap < t->raw_len + n) cap *= 2;
        char *p = realloc(t->raw, cap);
        if (!p) return SLM_ERR_NOMEM;
        t->raw = p;
        t->raw_cap = cap;
    }
    memcpy(t->raw + t->raw_len, raw, n);
    *off = t->raw_len;
    t->raw_len += n;
    return SLM_OK;
}

/* The symbol for raw[0..n), created (as a virtual symbol) when absent. -1 on out of memory. */
static int32_t sym_intern(slm_tokenizer *t, const char *raw, size_t n) {
    size_t slot;
    int32_t id = str_find(t, raw, n, &slot);
    if (id >= 0) return id;
    if (t->n_sym == INT32_MAX || t->str_used + 1 > t->str_cap / 2) return -1; /* sized ahead */
    if (t->n_sym == t->sym_cap) {
        int32_t cap = t->sym_cap > INT32_MAX / 2 ? INT32_MAX : t->sym_cap * 2;
        uint64_t *o = realloc(t->raw_off, (size_t)cap * sizeof *o);
        if (!o) return -1;
        t->raw_off = o;
        uint32_t *nn = realloc(t->raw_n, (size_t)cap * sizeof *nn);
        if (!nn) return -1;
        t->raw_n = nn;
        t->sym_cap = cap;
    }
    id = t->n_sym;
    if (raw_append(t, raw, n, &t->raw_off[id]) != SLM_OK) return -1;
    t->raw_n[id] = (uint32_t)n;
    t->n_sym++;
    t->str_slots[slot] = id;
    t->str_used++;
    return id;
}

static void pair_insert(slm_tokenizer *t, int32_t l, int32_t r, int32_t rank, int32_t res) {
    uint64_t key = slm_tok_pair_key(l, r);
    size_t mask = t->pair_cap - 1;
    for (size_t i = (size_t)slm_tok_hash_u64(key) & mask;; i = (i + 1) & mask) {
        slm_tok_pair *p = &t->pairs[i];
        if (p->key == key) return; /* the first (lowest rank) wins, as in llama.cpp */
        if (p->key == SLM_TOK_PAIR_EMPTY) {
            *p = (slm_tok_pair){key, rank, res};
            t->pair_used++;
            return;
        }
    }
}

/* ---- build ---- */

#define NOMEM(what) slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory building the tokenizer", what)

slm_status slm_tok_build(const slm_tok_str *tokens, size_t n_tokens, const int32_t *types,
                         const slm_tok_str *merges, size_t n_merges, const char *what,
                         slm_tokenizer **out, slm_err *err) {
    *out = NULL;
    if (n_tokens == 0)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tokenizer.ggml.tokens is empty", what);
    if (n_tokens > (size_t)INT32_MAX / 4 || n_merges > (size_t)INT32_MAX / 4)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tokenizer too large (%zu tokens, %zu merges)",
                           what, n_tokens, n_merges);
    slm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NOMEM(what);
    t->bos = t->eos = t->pad = t->unk = -1;
    snprintf(t->pre, sizeof t->pre, "gpt-2");

    size_t text_total = 0, merge_total = 0, longest = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        text_total += tokens[i].len;
        if (tokens[i].len > longest) longest = tokens[i].len;
    }
    for (size_t i = 0; i < n_merges; i++) {
        merge_total += merges[i].len;
        if (merges[i].len > longest) longest = merges[i].len;
    }
    t->n_vocab = (int32_t)n_tokens;
    t->sym_cap = (int32_t)n_tokens + 512;
    t->str_cap = pow2_at_least(2 * (n_tokens + 3 * n_merges + 256) + 2);
    t->pair_cap = pow2_at_least(2 * n_merges + 2);
    t->text = malloc(text_total + 1);
    t->text_off = malloc((n_tokens + 1) * sizeof *t->text_off);
    t->type = malloc(n_tokens * sizeof *t->type);
    t->dec = malloc(text_total + 1);
    t->dec_off = malloc((n_tokens + 1) * sizeof *t->dec_off);
    t->raw_off = malloc((size_t)t->sym_cap * sizeof *t->raw_off);
    t->raw_n = malloc((size_t)t->sym_cap * sizeof *t->raw_n);
    t->str_slots = malloc(t->str_cap * sizeof *t->str_slots);
    t->pairs = malloc(t->pair_cap * sizeof *t->pairs);
    t->merge_text = malloc(merge_total + 1);
    t->merge_off = malloc((n_merges + 1) * sizeof *t->merge_off);
    char *buf = malloc(2 * longest + 1);
    slm_status st = SLM_OK;
    if (!t->text || !t->text_off || !t->type || !t->dec || !t->dec_off || !t->raw_off ||
        !t->raw_n || !t->str_slots || !t->pairs ||
        !t->merge_text || !t->merge_off || !buf) {
        st = NOMEM(what);
        goto fail;
    }
    memset(t->str_slots, 0xff, t->str_cap * sizeof *t->str_slots);
    for (size_t i = 0; i < t->pair_cap; i++) t->pairs[i].key = SLM_TOK_PAIR_EMPTY;

    /* tokens: stored text, type, what each decodes to, and (when BPE can build it) its bytes */
    uint64_t toff = 0, doff = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        const slm_tok_str s = tokens[i];
        int32_t ty = types ? types[i] : SLM_TOKEN_NORMAL;
        memcpy(t->text + toff, s.ptr, s.len);
        t->text_off[i] = toff;
        t->type[i] = ty;
        long rn = ty == SLM_TOKEN_CONTROL ? -1 : slm_bu_decode(s.ptr, s.len, buf);
        const char *d = NULL;
        size_t dn = 0;
        if (ty == SLM_TOKEN_CONTROL || ty == SLM_TOKEN_UNUSED) {
            dn = 0;                       /* decode to nothing */
        } else if (ty == SLM_TOKEN_USER_DEFINED || rn < 0) {
            d = s.ptr;                    /* text as written */
            dn = s.len;
        } else {
            d = buf;                      /* the bytes the mapped text stands for */
            dn = (size_t)rn;
        }
        if (dn) memcpy(t->dec + doff, d, dn);
        t->dec_off[i] = doff;
        doff += dn;
        toff += s.len;
        /* the symbol: interned only when BPE can build it (mappable, not control, non-empty) */
        t->raw_n[i] = 0;
        t->raw_off[i] = 0;
        if (rn > 0) {
            size_t slot;
            int32_t prev = str_find(t, buf, (size_t)rn, &slot);
            if (prev >= 0) {
                st = slm_err_set(err, SLM_ERR_FORMAT,
                                 "%s: tokenizer.ggml.tokens: tokens %d and %zu are the same "
                                 "('%.*s')", what, prev, i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
                goto fail;
            }
            if (raw_append(t, buf, (size_t)rn, &t->raw_off[i]) != SLM_OK) {
                st = NOMEM(what);
                goto fail;
            }
            t->raw_n[i] = (uint32_t)rn;
            t->str_slots[slot] = (int32_t)i;
            t->str_used++;
        }
    }
    t->text_off[n_tokens] = toff;
    t->dec_off[n_tokens] = doff;
    t->n_sym = (int32_t)n_tokens;

    /* every byte starts as a symbol; its token is what it outputs as when nothing merges */
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t s = sym_intern(t, &c, 1);
        if (s < 0) {
            st = NOMEM(what);
            goto fail;
        }
        t->byte_sym[b] = s;
        t->byte_tok[b] = s < t->n_vocab ? s : -1;
    }

    /* merges "left right": split at the first space after the first byte, as llama.cpp does */
    uint64_t moff = 0;
    for (size_t k = 0; k < n_merges; k++) {
        const slm_tok_str m = merges[k];
        const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
        if (!sp) {
            st = slm_err_set(err, SLM_ERR_FORMAT,
                             "%s: tokenizer.ggml.merges[%zu] = '%.*s' is not two tokens "
                             "separated by a space", what, k, (int)(m.len > 64 ? 64 : m.len), m.ptr);
            goto fail;
        }
        memcpy(t->merge_text + moff, m.ptr, m.len);
        t->merge_off[k] = moff;
        moff += m.len;
        size_t ln = (size_t)(sp - m.ptr), rn_len = m.len - ln - 1;
        long l = slm_bu_decode(m.ptr, ln, buf);
        long r = l < 0 ? -1 : slm_bu_decode(sp + 1, rn_len, buf + l);
        if (l <= 0 || r <= 0) continue; /* names bytes no input can produce: can never fire */
        int32_t sl = sym_intern(t, buf, (size_t)l);
        int32_t sr = sl < 0 ? -1 : sym_intern(t, buf + l, (size_t)r);
        int32_t sres = sr < 0 ? -1 : sym_intern(t, buf, (size_t)(l + r));
        if (sres < 0) {
            st = NOMEM(what);
            goto fail;
        }
        pair_insert(t, sl, sr, (int32_t)k, sres);
    }
    t->merge_off[n_merges] = moff;
    t->n_merges = (int32_t)n_merges;

    t->pretok = slm_pretok_new(err);
    if (!t->pretok) {
        st = err ? err->code : SLM_ERR_NOMEM;
        goto fail;
    }
    free(buf);
    *out = t;
    return SLM_OK;
fail:
    free(buf);
    slm_tokenizer_free(t);
    return st;
}

void slm_tokenizer_free(slm_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->type);
    free(t->dec);
    free(t->dec_off);
    free(t->raw);
    free(t->raw_off);
    free(t->raw_n);
    free(t->str_slots);
    free(t->pairs);
    free(t->merge_text);
    free(t->merge_off);
    slm_pretok_free(t->pretok);
    free(t->score);
    free(t->text_slots);
    free(t);
}

/* ---- accessors ---- */

int slm_tokenizer_n_vocab(const slm_tokenizer *t) { return t->n_vocab; }
int32_t slm_tokenizer_bos(const slm_tokenizer *t) { return t->bos; }
int32_t slm_tokenizer_eos(const slm_tokenizer *t) { return t->eos; }
int32_t slm_tokenizer_pad(const slm_tokenizer *t) { return t->pad; }
int32_t slm_tokenizer_unk(const slm_tokenizer *t) { return t->unk; }
int slm_tokenizer_n_merges(const slm_tokenizer *t) { return t->n_merges; }
int slm_tokenizer_add_bos_default(const slm_tokenizer *t) { return t->add_bos; }
int slm_tokenizer_add_space_prefix(const slm_tokenizer *t) {
    return t->kind == SLM_TOK_KIND_SPM && t->add_space_prefix;
}
const char *slm_tokenizer_model_name(const slm_tokenizer *t) {
    return t->kind == SLM_TOK_KIND_SPM ? "llama" : "gpt2";
}
const char *slm_tokenizer_pre_name(const slm_tokenizer *t) { return t->pre; }

int slm_tokenizer_token_type(const slm_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->type[id] : 0;
}

const char *slm_tokenizer_token_text(const slm_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    *len = (size_t)(t->text_off[id + 1] - t->text_off[id]);
    return t->text + t->text_off[id];
}

const char *slm_tokenizer_token_bytes(const slm_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    *len = (size_t)(t->dec_off[id + 1] - t->dec_off[id]);
    return t->dec + t->dec_off[id];
}

slm_status slm_tokenizer_decode(const slm_tokenizer *t, const int32_t *ids, size_t n_ids, char **out,
                                size_t *len, slm_err *err) {
    *out = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return slm_err_set(err, SLM_ERR_RANGE,
                               "tokenizer: id %d at position %zu is outside the vocabulary "
                               "[0, %d)", ids[i], i, t->n_vocab);
        total += (size_t)(t->dec_off[ids[i] + 1] - t->dec_off[ids[i]]);
    }
    char *s = malloc(total + 1);
    if (!s) return slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory decoding %zu ids", n_ids);
    /* SentencePiece with add_space_prefix: encode put a space before the text, so the first
     * token that decodes to anything gives up one leading space (see tokenizer.h) */
    int strip = t->kind == SLM_TOK_KIND_SPM && t->add_space_prefix;
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const char *p = t->dec + t->dec_off[ids[i]];
        size_t n = (size_t)(t->dec_off[ids[i] + 1] - t->dec_off[ids[i]]);
        if (strip && n) {
            if (p[0] == ' ') p++, n--;
            strip = 0;
        }
        memcpy(s + k, p, n);
        k += n;
    }
    s[k] = 0;
    *out = s;
    *len = k;
    return SLM_OK;
}
