/* spm.c: SentencePiece-style vocabularies (tokenizer.ggml.model = "llama") — building the
 * object from its stored form, and encoding exactly as llama.cpp's llm_tokenizer_spm does.
 *
 * Encoding: a space is put before non-empty text (add_space_prefix), every ' ' becomes U+2581
 * ("▁"), and the text is cut into UTF-8 characters (bytes that are not valid UTF-8 one by one;
 * see char_len for the one difference from llama.cpp, on invalid input only). Then, repeatedly,
 * the adjacent pair whose joined text is a token with the highest score merges (ties: the
 * leftmost), until no adjacent pair joins into a token. Each final piece is its token, or, when
 * the vocabulary lacks it (a character outside the vocabulary), its bytes as "<0xNN>" tokens.
 *
 * Which tokens merges may build: NORMAL and USER_DEFINED only. llama.cpp also lets text spell a
 * control, unknown, unused or byte token ("<s>", "<0x41>") when its pieces happen to exist;
 * slm keeps the promise of tokenizer.h that text never becomes a control token, and such a token
 * would not decode back to its text. No vector in data/tokenizer-vectors depends on it.
 *
 * Decoding (vocab.c reads the table built here): NORMAL tokens are their text with U+2581 as a
 * space, BYTE tokens their byte, USER_DEFINED tokens their text, the others nothing — llama.cpp's
 * token_to_piece without special tokens.
 *
 * The tokenizer is only read while encoding; each call owns its scratch space.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

#define SPM_SPACE "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* The id of the mergeable token whose stored text is s[0..n), or -1. */
static int32_t text_find(const slm_tokenizer *t, const char *s, size_t n) {
    size_t mask = t->text_cap - 1;
    for (size_t i = (size_t)slm_tok_hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int32_t id = t->text_slots[i];
        if (id < 0) return -1;
        if (t->text_off[id + 1] - t->text_off[id] == n && !memcmp(t->text + t->text_off[id], s, n))
            return id;
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte a "<0xNN>" text names, or -1. */
static int byte_token_value(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

slm_status slm_tok_build_spm(const slm_tok_str *tokens, size_t n_tokens, const int32_t *types,
                             const float *scores, const char *what, slm_tokenizer **out,
                             slm_err *err) {
    *out = NULL;
    if (n_tokens == 0)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tokenizer.ggml.tokens is empty", what);
    if (n_tokens > (size_t)INT32_MAX / 4)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tokenizer too large (%zu tokens)", what,
                           n_tokens);
    slm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory building the tokenizer", what);
    t->kind = SLM_TOK_KIND_SPM;
    t->bos = t->eos = t->pad = t->unk = -1;
    t->add_bos = true;
    t->add_space_prefix = true;
    snprintf(t->pre, sizeof t->pre, "default");
    size_t text_total = 0;
    for (size_t i = 0; i < n_tokens; i++) text_total += tokens[i].len;
    t->n_vocab = t->n_sym = (int32_t)n_tokens;
    t->text_cap = pow2_at_least(2 * n_tokens + 2);
    t->text = malloc(text_total + 1);
    t->text_off = malloc((n_tokens + 1) * sizeof *t->text_off);
    t->type = malloc(n_tokens * sizeof *t->type);
    t->dec = malloc(text_total + 1);
    t->dec_off = malloc((n_tokens + 1) * sizeof *t->dec_off);
    t->score = malloc(n_tokens * sizeof *t->score);
    t->text_slots = malloc(t->text_cap * sizeof *t->text_slots);
    /* every token, whatever its type, for the duplicate check (llama.cpp refuses duplicates) */
    size_t all_cap = t->text_cap;
    int32_t *all = malloc(all_cap * sizeof *all);
    slm_status st = SLM_OK;
    if (!t->text || !t->text_off || !t->type || !t->dec || !t->dec_off || !t->score ||
        !t->text_slots || !all) {
        st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory building the tokenizer", what);
        goto fail;
    }
    memset(t->text_slots, 0xff, t->text_cap * sizeof *t->text_slots);
    memset(all, 0xff, all_cap * sizeof *all);
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;

    uint64_t toff = 0, doff = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        const slm_tok_str s = tokens[i];
        int32_t ty = types ? types[i] : SLM_TOKEN_NORMAL;
        memcpy(t->text + toff, s.ptr, s.len);
        t->text_off[i] = toff;
        t->type[i] = ty;
        t->score[i] = scores[i];
        toff += s.len;
        t->text_off[i + 1] = toff;

        size_t mask = all_cap - 1, k = (size_t)slm_tok_hash_bytes(s.ptr, s.len) & mask;
        for (; all[k] >= 0; k = (k + 1) & mask) {
            int32_t j = all[k];
            if (t->text_off[j + 1] - t->text_off[j] == s.len &&
                !memcmp(t->text + t->text_off[j], s.ptr, s.len)) {
                st = slm_err_set(err, SLM_ERR_FORMAT,
                                 "%s: tokenizer.ggml.tokens: tokens %d and %zu are the same "
                                 "('%.*s')", what, j, i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
                goto fail;
            }
        }
        all[k] = (int32_t)i;

        /* what it decodes to */
        t->dec_off[i] = doff;
        int bv = byte_token_value(s.ptr, s.len);
        if (bv >= 0 && t->byte_tok[bv] < 0) t->byte_tok[bv] = (int32_t)i; /* llama.cpp: by text */
        if (ty == SLM_TOKEN_BYTE && bv >= 0) {
            t->dec[doff++] = (char)bv;
        } else if (ty == SLM_TOKEN_USER_DEFINED || (ty == SLM_TOKEN_BYTE && bv < 0)) {
            memcpy(t->dec + doff, s.ptr, s.len);
            doff += s.len;
        } else if (ty == SLM_TOKEN_NORMAL) {
            for (size_t k2 = 0; k2 < s.len;) {
                if (k2 + 3 <= s.len && !memcmp(s.ptr + k2, SPM_SPACE, 3)) {
                    t->dec[doff++] = ' ';
                    k2 += 3;
                } else {
                    t->dec[doff++] = s.ptr[k2++];
                }
            }
        } /* CONTROL, UNKNOWN, UNUSED and unknown types: nothing */

        if ((ty == SLM_TOKEN_NORMAL || ty == SLM_TOKEN_USER_DEFINED) && s.len) {
            size_t m2 = t->text_cap - 1, k3 = (size_t)slm_tok_hash_bytes(s.ptr, s.len) & m2;
            while (t->text_slots[k3] >= 0) k3 = (k3 + 1) & m2;
            t->text_slots[k3] = (int32_t)i;
        }
    }
    t->dec_off[n_tokens] = doff;
    /* bytes without a "<0xNN>" token: a token spelling the byte itself, as llama.cpp falls back */
    for (int b = 0; b < 256; b++)
        if (t->byte_tok[b] < 0) {
            char c = (char)b;
            t->byte_tok[b] = text_find(t, &c, 1);
        }
    free(all);
    *out = t;
    return SLM_OK;
fail:
    free(all);
    slm_tokenizer_free(t);
    return st;
}

/* ---- encoding ---- */

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of the joined text when pushed: a later mismatch means stale */
} bigram;

typedef struct {
    const char *text;               /* the escaped text */
    int32_t *off, *n, *prev, *next; /* [n_chars] per symbol */
    bigram *heap;
    size_t heap_n, heap_cap;
} spm_work;

/* a goes before b: higher score, then further left (llama.cpp's llm_bigram_spm::comparator) */
static int better(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(spm_work *w, bigram c) {
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        bigram *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return -1;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
    return 0;
}

static bigram heap_pop(spm_work *w) {
    bigram top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(&w->heap[c + 1], &w->heap[c])) c++;
        if (!better(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Queues the pair (l, r) when their joined text is a token (llama.cpp's try_add_bigram). */
static int try_add(const slm_tokenizer *t, spm_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return 0;
    size_t size = (size_t)w->n[l] + (size_t)w->n[r];
    int32_t id = text_find(t, w->text + w->off[l], size);
    if (id < 0) return 0;
    return heap_push(w, (bigram){t->score[id], l, r, (uint32_t)size});
}

/* Length of the character at p[0..n): the lead byte's length as llama.cpp's unicode_len_utf8
 * reads it, but 1 when the bytes after it are not all continuation bytes (invalid UTF-8), where
 * llama.cpp would swallow the next bytes, "▁" included, and decode them back as raw bytes. */
static size_t char_len(const unsigned char *p, size_t n) {
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    size_t cl = len[p[0] >> 4];
    if (cl > n) return 1;
    for (size_t i = 1; i < cl; i++)
        if ((p[i] & 0xC0) != 0x80) return 1;
    return cl;
}

slm_status slm_tok_spm_encode(const slm_tokenizer *t, const char *text, size_t len, int add_bos,
                              int32_t **ids, size_t *n_ids, slm_err *err) {
    return slm_tok_spm_encode_ex(t, text, len, add_bos, t->add_space_prefix, ids, n_ids, err);
}

slm_status slm_tok_spm_encode_ex(const slm_tokenizer *t, const char *text, size_t len, int add_bos,
                                 int prefix, int32_t **ids, size_t *n_ids, slm_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return slm_err_set(err, SLM_ERR_ARG, "tokenizer: encode of NULL text");
    if (len > (size_t)INT32_MAX / 4)
        return slm_err_set(err, SLM_ERR_RANGE, "tokenizer: text of %zu bytes is too long to encode",
                           len);
    slm_tok_ids out = {0};
    spm_work w = {0};
    char *esc = NULL;
    if (add_bos && t->bos >= 0 && slm_tok_ids_push(&out, t->bos) != SLM_OK) goto nomem;
    if (len == 0) goto done; /* llama.cpp: no space prefix for empty text */

    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t elen = len + 2 * spaces + (prefix ? 3 : 0), k = 0;
    esc = malloc(elen);
    if (!esc) goto nomem;
    if (prefix) memcpy(esc, SPM_SPACE, 3), k = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(esc + k, SPM_SPACE, 3);
            k += 3;
        } else {
            esc[k++] = text[i];
        }
    }
    w.text = esc;
    w.off = malloc(elen * sizeof *w.off);
    w.n = malloc(elen * sizeof *w.n);
    w.prev = malloc(elen * sizeof *w.prev);
    w.next = malloc(elen * sizeof *w.next);
    if (!w.off || !w.n || !w.prev || !w.next) goto nomem;
    int32_t n_sym = 0;
    for (size_t o = 0; o < elen;) {
        size_t cl = char_len((const unsigned char *)esc + o, elen - o);
        w.off[n_sym] = (int32_t)o;
        w.n[n_sym] = (int32_t)cl;
        w.prev[n_sym] = n_sym - 1;
        o += cl;
        w.next[n_sym] = o == elen ? -1 : n_sym + 1;
        n_sym++;
    }
    for (int32_t i = 1; i < n_sym; i++)
        if (try_add(t, &w, i - 1, i)) goto nomem;
    while (w.heap_n) {
        bigram b = heap_pop(&w);
        if (w.n[b.left] == 0 || w.n[b.right] == 0 ||
            (uint32_t)(w.n[b.left] + w.n[b.right]) != b.size)
            continue; /* one side already merged elsewhere */
        w.n[b.left] += w.n[b.right];
        w.n[b.right] = 0;
        w.next[b.left] = w.next[b.right];
        if (w.next[b.right] >= 0) w.prev[w.next[b.right]] = b.left;
        if (try_add(t, &w, w.prev[b.left], b.left) || try_add(t, &w, b.left, w.next[b.left]))
            goto nomem;
    }
    for (int32_t i = 0; i >= 0; i = w.next[i]) {
        int32_t id = text_find(t, esc + w.off[i], (size_t)w.n[i]);
        if (id >= 0) {
            if (slm_tok_ids_push(&out, id) != SLM_OK) goto nomem;
            continue;
        }
        for (int32_t j = 0; j < w.n[i]; j++) { /* not in the vocabulary: its bytes */
            int32_t bt = t->byte_tok[(unsigned char)esc[w.off[i] + j]];
            if (bt < 0) bt = t->unk;
            if (bt >= 0 && slm_tok_ids_push(&out, bt) != SLM_OK) goto nomem;
        }
    }
done:
    free(esc);
    free(w.off);
    free(w.n);
    free(w.prev);
    free(w.next);
    free(w.heap);
    if (!out.v) { /* nothing to return: still a valid (freeable) array */
        out.v = malloc(sizeof *out.v);
        if (!out.v) return slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory");
    }
    *ids = out.v;
    *n_ids = out.n;
    return SLM_OK;
nomem:
    free(esc);
    free(w.off);
    free(w.n);
    free(w.prev);
    free(w.next);
    free(w.heap);
    free(out.v);
    return slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory encoding %zu bytes", len);
}
